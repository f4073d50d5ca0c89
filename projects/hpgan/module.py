"""LightningModules: HP-GAN (generator, critic and motion-quality network trained together) and the action
classifier that starts from the critic's weights or from scratch.

One training step of :class:`HPGAN` is the official code's minibatch schedule: ``critic_steps`` critic updates
(9), one quality-network update, then ``generator_steps`` generator updates (2), all on the same batch and the
same z. Poses are normalised per joint and coordinate as the official code does, x ↦ (x − μ) / (2σ), with μ
and σ of the training frames (kept as buffers, so a checkpoint carries them); metrics are in millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch.nn import functional as F

from projects.hpgan import losses, metrics
from projects.hpgan.data import BONES
from projects.hpgan.nets import ActionClassifier, Seq2SeqGenerator, SequenceCritic, sample_z
from shared.errors import UserFacingError


def _decayed_and_plain(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Parameter groups: weight matrices with ``weight_decay`` (the official code's 0.001 · Σ ‖W‖²/2), biases
    without."""
    weights = [p for n, p in module.named_parameters() if p.dim() > 1]
    biases = [p for n, p in module.named_parameters() if p.dim() <= 1]
    return [{"params": weights, "weight_decay": weight_decay}, {"params": biases, "weight_decay": 0.0}]


class HPGAN(L.LightningModule):
    """HP-GAN: a noise-conditioned sequence-to-sequence generator trained against a WGAN-GP critic with bone and
    consistency losses, and a motion-quality network trained beside it with cross-entropy.

    ``use_z=False`` trains the deterministic variant (same losses, no noise). Validation draws
    ``num_samples`` futures per observed sequence and logs best-of-K ADE/FDE, APD and MPJPE at
    ``horizons_ms``, the same for the zero-velocity baseline, and the quality network's "looks real" rate of
    real, generated and time-shuffled sequences."""

    def __init__(self, num_joints: int = 15, n_obs: int = 10, n_pred: int = 20, hidden: int = 1024, layers: int = 2,
                 embed: int = 128, z_dim: int = 128, z_scale: float = 0.1, use_z: bool = True, residual: bool = False,
                 critic_embed: int = 128, critic_hidden: int = 512, critic_layers: int = 3, critic_steps: int = 9,
                 generator_steps: int = 2, gp_weight: float = 10.0, consistency_weight: float = 0.001,
                 bone_weight: float = 0.01, lr: float = 5e-5, quality_lr: float = 2.5e-5, weight_decay: float = 0.001,
                 betas: Sequence[float] = (0.9, 0.999), num_samples: int = 10, fps: float = 25.0,
                 horizons_ms: Sequence[float] = (80, 160, 320, 400, 560, 800)):
        super().__init__()
        if critic_steps < 1 or generator_steps < 1:
            raise ValueError(f"critic_steps and generator_steps must be at least 1, got {critic_steps} and "
                             f"{generator_steps}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        frames = n_obs + n_pred
        self.generator = Seq2SeqGenerator(num_joints, hidden, layers, embed, z_dim, use_z, residual)
        self.critic = SequenceCritic(num_joints, frames, critic_embed, critic_hidden, critic_layers)
        self.quality = SequenceCritic(num_joints, frames, critic_embed, critic_hidden, critic_layers)
        self.register_buffer("mean", torch.zeros(num_joints, 3))
        self.register_buffer("std", torch.ones(num_joints, 3))
        self.horizons = metrics.horizon_frames(horizons_ms, fps, n_pred)

    # ------------------------------------------------------------------------------------------ data

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        hp = self.hparams
        data_fps = getattr(datamodule, "hparams", {}).get("fps")
        if data_fps is not None and data_fps != hp.fps:
            raise UserFacingError(f"the data runs at {data_fps} fps (data.init_args.fps) but model.fps is {hp.fps}: "
                                  "set model.fps to the same number (it places the MPJPE horizons).")
        given = {k: datamodule.hparams[k] for k in ("n_obs", "n_pred") if k in getattr(datamodule, "hparams", {})}
        if given and given != {"n_obs": hp.n_obs, "n_pred": hp.n_pred}:
            raise UserFacingError(
                f"the model predicts {hp.n_pred} frames from {hp.n_obs} (model.n_obs, model.n_pred) but the data cuts "
                f"windows of {given.get('n_obs')} + {given.get('n_pred')} (data.init_args.n_obs, n_pred): set both "
                "pairs to the same numbers (the critic's input size depends on them).")
        if datamodule is not None and hasattr(datamodule, "mean"):
            self.mean.copy_(datamodule.mean)
            self.std.copy_(datamodule.std)

    def normalise(self, poses: torch.Tensor) -> torch.Tensor:
        return (poses - self.mean) / (2 * self.std.clamp(min=1.0))

    def denormalise(self, poses: torch.Tensor) -> torch.Tensor:
        return poses * (2 * self.std.clamp(min=1.0)) + self.mean

    def predict_futures(self, observed_mm: torch.Tensor, num_samples: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
        """K futures (B, K, T_pred, J, 3) in mm for observed poses (B, T_obs, J, 3) in mm."""
        hp = self.hparams
        batch = observed_mm.shape[0]
        observed = self.normalise(observed_mm).repeat_interleave(num_samples, dim=0)
        z = sample_z(batch * num_samples, hp.z_dim, hp.z_scale, generator, observed.device)
        future = self.generator(observed, z, hp.n_pred)
        return self.denormalise(future).view(batch, num_samples, hp.n_pred, hp.num_joints, 3)

    # ------------------------------------------------------------------------------------------ training

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d, opt_q = self.optimizers()
        real = self.normalise(batch["poses"])
        observed, last = real[:, :hp.n_obs], real[:, hp.n_obs - 1]
        z = sample_z(len(real), hp.z_dim, hp.z_scale, device=real.device)

        # The generator does not change during the critic steps, so its output is computed once.
        with torch.no_grad():
            fake = torch.cat([observed, self.generator(observed, z, hp.n_pred)], dim=1)
        for _ in range(hp.critic_steps):
            wasserstein = losses.critic_loss(self.critic(real), self.critic(fake))
            penalty = losses.gradient_penalty(self.critic, real, fake)
            opt_d.zero_grad()
            self.manual_backward(wasserstein + hp.gp_weight * penalty)
            opt_d.step()

        quality = losses.quality_loss(self.quality(real), self.quality(fake))
        opt_q.zero_grad()
        self.manual_backward(quality)
        opt_q.step()

        self.critic.requires_grad_(False)  # the critic's weights need no gradient while the generator learns
        for _ in range(hp.generator_steps):
            predicted = self.generator(observed, z, hp.n_pred)
            scores = self.critic(torch.cat([observed, predicted], dim=1))
            parts = losses.generator_loss(scores, predicted, last, BONES, hp.consistency_weight, hp.bone_weight)
            opt_g.zero_grad()
            self.manual_backward(parts["loss"])
            opt_g.step()
        self.critic.requires_grad_(True)

        self.log_dict({"train/critic": wasserstein.detach(), "train/gp": penalty.detach(),
                       "train/generator": parts["loss"].detach(), "train/bone": parts["bone"].detach(),
                       "train/consistency": parts["consistency"].detach(), "train/quality": quality.detach()},
                      on_step=True, on_epoch=True, batch_size=len(real))

    def configure_optimizers(self):
        hp = self.hparams
        return [torch.optim.Adam(self.generator.parameters(), lr=hp.lr, betas=tuple(hp.betas)),
                torch.optim.Adam(_decayed_and_plain(self.critic, hp.weight_decay), lr=hp.lr, betas=tuple(hp.betas)),
                torch.optim.Adam(_decayed_and_plain(self.quality, hp.weight_decay), lr=hp.quality_lr,
                                 betas=tuple(hp.betas))]

    # ------------------------------------------------------------------------------------------ evaluation

    def evaluate(self, poses_mm: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        """Per-window metrics (each (B,)) of K sampled futures and of the zero-velocity baseline; joints other
        than the pelvis (which is the origin in every frame)."""
        hp = self.hparams
        observed, gt = poses_mm[:, :hp.n_obs], poses_mm[:, hp.n_obs:]
        samples = self.predict_futures(observed, hp.num_samples, torch.Generator().manual_seed(seed))
        still = metrics.zero_velocity(observed, hp.n_pred)[:, None]
        out = {}
        for name, futures in (("", samples), ("zv_", still)):
            body, target = futures[..., 1:, :], gt[..., 1:, :]
            out[f"{name}ade"] = metrics.best_of_k_ade(body, target)
            out[f"{name}fde"] = metrics.best_of_k_fde(body, target)
            per_frame = metrics.best_of_k_mpjpe(body, target)
            for ms, frame in self.horizons.items():
                out[f"{name}mpjpe_{ms}ms"] = per_frame[:, frame]
        out["apd"] = metrics.apd(samples[..., 1:, :])
        generated = torch.cat([observed[:, None].expand(-1, hp.num_samples, -1, -1, -1), samples], dim=2)
        order = torch.randperm(hp.n_pred, generator=torch.Generator().manual_seed(seed)) + hp.n_obs
        shuffled = torch.cat([poses_mm[:, :hp.n_obs], poses_mm[:, order.to(poses_mm.device)]], dim=1)
        for name, sequences in (("real", poses_mm), ("generated", generated.flatten(0, 1)), ("shuffled", shuffled)):
            probability = torch.sigmoid(self.quality(self.normalise(sequences)))
            out[f"looks_real_{name}"] = (probability >= 0.5).float().view(len(poses_mm), -1).mean(1)
        return out

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        values = self.evaluate(batch["poses"], seed=batch_idx)
        self.log_dict({f"val/{k}": v.mean() for k, v in values.items()}, batch_size=len(batch["poses"]))

    def test_step(self, batch: dict, batch_idx: int) -> None:
        values = self.evaluate(batch["poses"], seed=batch_idx)
        self.log_dict({f"test/{k}": v.mean() for k, v in values.items()}, batch_size=len(batch["poses"]))


class ActionRecognition(L.LightningModule):
    """An action classifier on whole windows (the critic's architecture with a new head), trained with
    cross-entropy; ``critic_checkpoint`` (an HPGAN checkpoint) gives the starting weights, otherwise it
    starts from random ones. Windows without a label (-1) are skipped."""

    def __init__(self, num_classes: int, num_joints: int = 15, frames: int = 30, critic_embed: int = 128,
                 critic_hidden: int = 512, critic_layers: int = 3, critic_checkpoint: str | None = None,
                 freeze: bool = False, lr: float = 1e-4):
        super().__init__()
        # The critic's weights end up in this module's state dict: a checkpoint of it must not need the GAN's.
        self.save_hyperparameters(ignore=["critic_checkpoint"])
        self.critic_checkpoint = critic_checkpoint
        gan = HPGAN.load_from_checkpoint(critic_checkpoint, map_location="cpu") if critic_checkpoint else None
        if gan is not None:  # the critic's sizes are the checkpoint's, whatever was passed
            g = gan.hparams
            self.hparams.update(num_joints=g.num_joints, frames=g.n_obs + g.n_pred, critic_embed=g.critic_embed,
                                critic_hidden=g.critic_hidden, critic_layers=g.critic_layers)
        hp = self.hparams
        self.register_buffer("mean", gan.mean.clone() if gan is not None else torch.zeros(hp.num_joints, 3))
        self.register_buffer("std", gan.std.clone() if gan is not None else torch.ones(hp.num_joints, 3))
        self.classifier = ActionClassifier(num_classes, hp.num_joints, hp.frames, hp.critic_embed, hp.critic_hidden,
                                           hp.critic_layers, critic=gan.critic if gan is not None else None,
                                           freeze=freeze)
        self.has_statistics = gan is not None

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if not self.has_statistics and datamodule is not None and hasattr(datamodule, "mean"):
            self.mean.copy_(datamodule.mean)
            self.std.copy_(datamodule.std)

    def forward(self, poses_mm: torch.Tensor) -> torch.Tensor:
        return self.classifier((poses_mm - self.mean) / (2 * self.std.clamp(min=1.0)))

    def _step(self, batch: dict, stage: str) -> torch.Tensor | None:
        keep = batch["label"] >= 0
        if not keep.any():
            return None
        logits = self(batch["poses"][keep])
        loss = F.cross_entropy(logits, batch["label"][keep])
        accuracy = (logits.argmax(1) == batch["label"][keep]).float().mean() * 100
        self.log_dict({f"{stage}/loss": loss, f"{stage}/acc": accuracy}, on_epoch=True, on_step=False,
                      batch_size=int(keep.sum()))
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.hparams.lr)
