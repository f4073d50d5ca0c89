"""One LightningModule for every mixing policy, so AutoMix and the hand-crafted policies share a loop.

``policy``: ``none`` | ``mixup`` | ``cutmix`` | ``manifold`` | ``saliencymix`` | ``automix``.

AutoMix (Liu et al. 2022; openmixup ``AutoMixup``), per step, with two λ ~ Beta(α, α) and two
permutations (one pair for the Mix Block "mb", one for the backbone "bb"):

1. z = f_k(x)₃, stage-3 features of the momentum (EMA) encoder, no gradient;
2. mask_mb = MixBlock(z, λ_mb, idx_mb) (with gradient), mask_bb = MixBlock(z, λ_bb, idx_bb) detached;
   if λ_bb or 1 − λ_bb is below ``lam_margin`` the backbone gets plain mixup (mask ≡ λ_bb) instead;
3. online network: ℓ_one = CE(h_one(f_q(x)), y) on clean images plus
   ℓ_mix = λ_bb CE(h_mix(f_q(x̃_bb)), y) + (1 − λ_bb) CE(·, y[idx_bb]);
4. Mix Block, through the frozen EMA network: ℓ_mb = λ_mb CE(h_mix^k(f_k(x̃_mb)), y) + (1 − λ_mb) CE(·, y[idx_mb]),
   plus w_mask · max(|mean(mask_mb₀) − λ_mb| − margin, 0), w_mask constant or cosine-annealed to 0;
5. loss = ℓ_one + ℓ_mix + ℓ_mb + w_mask ℓ_mask; after the optimiser step θ_k ← m θ_k + (1 − m) θ_q
   for the backbone and both heads, m from 0.999 held for the first 10% of steps, then
   m = m_end − (m_end − m_0)(cos(π t/T) + 1)/2 (openmixup's cosine momentum hook).

``momentum=0`` gives the momentum-free variant: the Mix Block then reads and is trained through a copy
of the online network (parameters and BatchNorm statistics) taken at every step.
"""

from __future__ import annotations

import copy
import math
from typing import Literal, get_args

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from projects.automix import mixing
from projects.automix.losses import mask_lambda_loss, mixup_cross_entropy
from projects.automix.nets import MixBlock, build_backbone
from shared.errors import UserFacingError
from shared.schedules import per_step_scheduler, scaled_lr

Policy = Literal["none", "mixup", "cutmix", "manifold", "saliencymix", "automix"]
POLICIES: tuple[str, ...] = get_args(Policy)


def ema_update(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """θ_t ← m θ_t + (1 − m) θ_s for every parameter (buffers such as BN statistics are left alone)."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)


def momentum_at(step: int, total: int, base: float = 0.999, end: float = 0.999999, hold: float = 0.1) -> float:
    """openmixup's CosineScheduleHook for the EMA momentum: ``base`` for the first ``hold`` fraction of the
    steps, then end − (end − base)(cos(π step/total) + 1)/2 (step counted from the start of training)."""
    if base <= 0 or step < hold * total:
        return base
    return end - (end - base) * (math.cos(math.pi * step / max(total, 1)) + 1) / 2


class MixupClassifier(L.LightningModule):
    def __init__(self, backbone: str = "cifar_resnet18", num_classes: int = 100, in_channels: int = 3,
                 width: float = 1.0, policy: Policy = "automix", alpha: float = 2.0, lr: float = 0.1,
                 lr_base_batch_size: int | None = 100, momentum_sgd: float = 0.9, weight_decay: float = 1e-4,
                 min_lr_ratio: float = 0.5, manifold_layers: tuple[int, ...] = (0, 1, 2),
                 mix_stage: int = 3, reduction: int = 2, lam_concat: bool = False, momentum: float = 0.999,
                 momentum_end: float = 0.999999, momentum_hold: float = 0.1, mask_loss_weight: float = 0.1,
                 mask_loss_anneal: bool = False, mask_margin: float = 0.1, lam_margin: float = 0.08,
                 head_init_std: float | None = 0.01):
        super().__init__()
        if policy not in POLICIES:
            raise UserFacingError(f"model.policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if not 1 <= mix_stage <= 4:
            raise UserFacingError(f"model.mix_stage must be 1..4 (the Mix Block reads that stage's features), got "
                                  f"{mix_stage}")
        self.save_hyperparameters()
        self.backbone = build_backbone(backbone, in_channels, width)
        dim = self.backbone.feat_dim
        self.head = self._head(dim, num_classes)  # the online mix head (the only head of the baselines)
        if policy == "automix":
            self.head_one = self._head(dim, num_classes)  # the online one-hot head, trained on clean images
            self.mix_block = MixBlock(self.backbone.out_channels[mix_stage - 1], reduction, lam_concat)
            self.backbone_k = copy.deepcopy(self.backbone).requires_grad_(False)
            self.head_k = copy.deepcopy(self.head).requires_grad_(False)
            self.head_one_k = copy.deepcopy(self.head_one).requires_grad_(False)

    def _head(self, dim: int, num_classes: int) -> nn.Linear:
        """A linear classifier; weights ~ N(0, head_init_std²) and zero bias (openmixup's ``ClsHead``: 0.01), or
        PyTorch's default Linear init when ``head_init_std`` is None."""
        head = nn.Linear(dim, num_classes)
        if self.hparams.head_init_std is not None:
            nn.init.normal_(head.weight, std=self.hparams.head_init_std)
            nn.init.zeros_(head.bias)
        return head

    # ------------------------------------------------------------------ forward / evaluation
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def _rng(self) -> np.random.Generator:
        # drawn from torch's global generator, which the CLI reseeds every epoch: resumes are exact
        return np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx):
        x, y = batch
        policy = self.hparams.policy
        if policy == "automix":
            return self._automix_step(x, y)
        if policy == "none":
            loss = F.cross_entropy(self(x), y)
        else:
            rng = self._rng()
            lam = mixing.sample_lam(self.hparams.alpha, rng)
            index = torch.randperm(len(x), device=x.device)
            if policy == "manifold":
                layer = int(rng.choice(self.hparams.manifold_layers))
                logits = self.head(self.backbone(x, mix_at=layer, mix=lambda h: mixing.mixup(h, index, lam)[0]))
            else:
                if policy == "mixup":
                    mixed, lam = mixing.mixup(x, index, lam)
                elif policy == "cutmix":
                    mixed, lam = mixing.cutmix(x, index, lam, rng)
                else:
                    mixed, lam = mixing.saliencymix(x, index, lam, rng)
                logits = self(mixed)
            loss = mixup_cross_entropy(logits, y, index, lam)
            self.log("train/lam", lam)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def automix_masks(self, x: torch.Tensor, lam: float, index: torch.Tensor) -> torch.Tensor:
        """The Mix Block's mask for (x, x[index], λ) from the EMA encoder's features (with gradient to the block)."""
        with torch.no_grad():
            z = self.backbone_k.features(x, self.hparams.mix_stage)
        return self.mix_block(z, lam, index, x.shape[-2:])

    def automix_diagnostics(self, x: torch.Tensor, lam: float, index: torch.Tensor) -> dict:
        """:meth:`MixBlock.diagnostics` on (x, x[index], λ) read through the EMA encoder."""
        with torch.no_grad():
            z = self.backbone_k.features(x, self.hparams.mix_stage)
        return self.mix_block.diagnostics(z, lam, index, x.shape[-2:])

    def _automix_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        rng = self._rng()
        lam_mb, lam_bb = mixing.sample_lam(hp.alpha, rng), mixing.sample_lam(hp.alpha, rng)
        idx_mb, idx_bb = torch.randperm(len(x), device=x.device), torch.randperm(len(x), device=x.device)
        if hp.momentum == 0:  # momentum-free: the Mix Block sees the online network as it is now
            self._copy_online_to_k()
        with torch.no_grad():  # the whole EMA network runs on the clean batch, as openmixup's backbone_k(img)
            z, _ = self.backbone_k.features_and_pooled(x, hp.mix_stage)
        mask_mb = self.mix_block(z, lam_mb, idx_mb, x.shape[-2:])
        if min(lam_bb, 1 - lam_bb) <= hp.lam_margin:  # extreme λ: plain mixup for the backbone
            mask_bb = torch.tensor([lam_bb, 1 - lam_bb], device=x.device, dtype=x.dtype).view(1, 2, 1, 1)
        else:
            with torch.no_grad():
                mask_bb = self.mix_block(z, lam_bb, idx_bb, x.shape[-2:])
        mixed_bb = x * mask_bb[:, :1] + x[idx_bb] * mask_bb[:, 1:]
        mixed_mb = x * mask_mb[:, :1] + x[idx_mb] * mask_mb[:, 1:]

        loss_one = F.cross_entropy(self.head_one(self.backbone(x)), y)
        loss_mix = mixup_cross_entropy(self.head(self.backbone(mixed_bb)), y, idx_bb, lam_bb)
        loss_mb = mixup_cross_entropy(self.head_k(self.backbone_k(mixed_mb)), y, idx_mb, lam_mb)
        loss_mask = mask_lambda_loss(mask_mb, lam_mb, hp.mask_margin)
        loss = loss_one + loss_mix + loss_mb + self.mask_loss_weight() * loss_mask
        self.log_dict({"train/loss_one": loss_one, "train/loss_mix": loss_mix,
                       "train/loss_mixblock": loss_mb, "train/loss_mask": loss_mask,
                       "train/mask_mean_minus_lam": mask_mb[:, 0].mean() - lam_mb,
                       "train/mask_spatial_std": mask_mb[:, 1].flatten(1).std(1).mean()}, prog_bar=False)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def mask_loss_weight(self) -> float:
        """w_mask: constant (openmixup's CIFAR recipes) or, with ``mask_loss_anneal``, cosine-annealed from w to 0
        over training (its ImageNet recipe): w · (1 + cos(π t/T)) / 2."""
        w = self.hparams.mask_loss_weight
        if not self.hparams.mask_loss_anneal or self._trainer is None:
            return w
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        return w * 0.5 * (1 + math.cos(math.pi * min(self.global_step / total, 1.0)))

    def _pairs(self) -> tuple[tuple[nn.Module, nn.Module], ...]:
        return (self.backbone_k, self.backbone), (self.head_k, self.head), (self.head_one_k, self.head_one)

    def _copy_online_to_k(self) -> None:
        """The momentum-free variant: parameters and BatchNorm statistics copied from the online network."""
        for k, q in self._pairs():
            k.load_state_dict(q.state_dict())

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        hp = self.hparams
        if hp.policy != "automix" or hp.momentum == 0 or self.global_step == getattr(self, "_ema_step", -1):
            return  # once per optimiser step (gradient accumulation calls this on every batch)
        self._ema_step = self.global_step
        m = momentum_at(self.global_step, int(self.trainer.estimated_stepping_batches), hp.momentum,
                        hp.momentum_end, hp.momentum_hold)
        for k, q in self._pairs():
            ema_update(k, q, m)
        self.log("train/ema_momentum", m)

    def on_fit_start(self) -> None:
        classes = getattr(self.trainer.datamodule, "classes", None)
        if classes is not None and len(classes) != self.hparams.num_classes:
            raise UserFacingError(f"model.num_classes is {self.hparams.num_classes} but the data has {len(classes)} "
                                  "classes; set --model.num_classes to match.")

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, batch, prefix: str) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{prefix}/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log(f"{prefix}/acc", (logits.argmax(1) == y).float().mean() * 100, prog_bar=True, sync_dist=True)
        if self.hparams.policy == "automix":
            ema_features = self.backbone_k(x)
            heads = {"acc_one": self.head_one(self.backbone(x)), "acc_ema": self.head_k(ema_features),
                     "acc_ema_one": self.head_one_k(ema_features)}
            for name, out in heads.items():
                self.log(f"{prefix}/{name}", (out.argmax(1) == y).float().mean() * 100, sync_dist=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        """SGD on the online network and the Mix Block (one group, as openmixup's CIFAR configs), cosine from
        lr to ``min_lr_ratio``·lr (openmixup's CIFAR AutoMix: 0.1 → 0.05; its baselines and ImageNet: → 0)."""
        hp = self.hparams
        lr = scaled_lr(self, hp.lr, hp.lr_base_batch_size)
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=lr, momentum=hp.momentum_sgd, weight_decay=hp.weight_decay)
        return {"optimizer": optimizer, "lr_scheduler": per_step_scheduler(self, optimizer, floor=hp.min_lr_ratio)}


class MedianOfLastEpochs(L.Callback):
    """openmixup's evaluation: the median top-1 over the last ``epochs`` validation epochs.

    Logs ``val/acc_median`` (online network) and, for AutoMix, ``val/acc_ema_median`` (EMA network) and the
    one-hot heads' medians; the history is saved in checkpoints, so a resumed run reports the same medians.
    """

    KEYS = ("val/acc", "val/acc_one", "val/acc_ema", "val/acc_ema_one")

    def __init__(self, epochs: int = 10):
        self.epochs = epochs
        self.history: dict[str, list[float]] = {}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        for key in self.KEYS:
            if key in trainer.callback_metrics:
                self.history.setdefault(key, []).append(float(trainer.callback_metrics[key]))
                pl_module.log(f"{key}_median", float(np.median(self.history[key][-self.epochs:])))

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {k: list(v) for k, v in state_dict["history"].items()}
