"""LightningModules: MoCo-v2 (teacher pretraining and the student baseline), SEED distillation, and
the linear probe on frozen features."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from projects.seed.losses import info_nce_loss, seed_loss
from projects.seed.nets import Encoder, build_encoder, projection_head, resolved_width
from shared.checkpoints import read_checkpoint
from shared.errors import UserFacingError
from shared.schedules import per_step_scheduler, scaled_lr


class EmbeddingQueue(nn.Module):
    """A FIFO of the last K embeddings (rows), initialised with random unit vectors as in MoCo/SEED."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("embeddings", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Overwrite the oldest rows with ``keys`` (wrapping around the end)."""
        size = len(self.embeddings)
        keys = keys.detach()[-size:]
        index = (self.pointer + torch.arange(len(keys), device=keys.device)) % size
        self.embeddings[index] = keys.to(self.embeddings.dtype)
        self.pointer.fill_(int((self.pointer + len(keys)) % size))


def weighted_knn(features: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, num_classes: int,
                 k: int = 200, temperature: float = 0.1) -> torch.Tensor:
    """Weighted kNN (Wu et al. 2018): each of the k most cosine-similar bank features votes for its label
    with weight ``exp(similarity / temperature)``; returns the predicted classes."""
    similarity, index = (F.normalize(features, dim=1) @ bank.T).topk(min(k, len(bank)), dim=1)
    votes = torch.zeros(len(features), num_classes, device=features.device)
    votes.scatter_add_(1, bank_labels[index], (similarity / temperature).exp())
    return votes.argmax(1)


class SelfSupervised(L.LightningModule):
    """Shared by MoCo-v2 and SEED: SGD with warm-up + cosine, lr scaled to the global batch, and a
    weighted-kNN monitor (validation loader 0 fills the bank from training images, loader 1 queries it).

    Subclasses save ``lr``, ``lr_base_batch_size``, ``momentum``, ``weight_decay``, ``warmup_epochs``,
    ``num_classes``, ``knn_k`` and ``knn_temperature`` as hyper-parameters; this class reads them.
    """

    def __init__(self):
        super().__init__()
        self._bank: list[torch.Tensor] = []
        self._bank_labels: list[torch.Tensor] = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the linear probe and the kNN monitor read: the encoder's pooled features."""
        return self.encoder(x)

    # -- kNN monitor --------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._bank, self._bank_labels, self._bank_ready = [], [], None

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        feats = F.normalize(self.features(x), dim=1)
        if dataloader_idx == 0:
            self._bank.append(feats)
            self._bank_labels.append(y)
            return
        if self._bank_ready is None:
            bank, labels = torch.cat(self._bank), torch.cat(self._bank_labels)
            if self.trainer.world_size > 1:
                bank, labels = self.all_gather(bank).flatten(0, 1), self.all_gather(labels).flatten(0, 1)
            self._bank_ready = (bank, labels)
        hp = self.hparams
        predicted = weighted_knn(feats, *self._bank_ready, hp.num_classes, hp.knn_k, hp.knn_temperature)
        self.log("val/knn_acc1", (predicted == y).float().mean(), sync_dist=True, batch_size=len(y),
                 add_dataloader_idx=False)

    # -- optimisation -------------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        lr = scaled_lr(self, hp.lr, hp.lr_base_batch_size)
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        return {"optimizer": optimizer, "lr_scheduler": per_step_scheduler(self, optimizer, hp.warmup_epochs)}

    def _gather(self, keys: torch.Tensor) -> torch.Tensor:
        """Keys of every process (the official code's ``concat_all_gather``), for the queue."""
        return self.all_gather(keys).flatten(0, 1) if self.trainer.world_size > 1 else keys


class MoCoV2(SelfSupervised):
    """MoCo-v2 (Chen et al. 2020): a query encoder trained with InfoNCE against a momentum key encoder
    and a queue of K keys; MLP head, temperature 0.2, the v2 augmentations (in the datamodule).

    The key encoder is ``theta_k <- m theta_k + (1 - m) theta_q`` before the keys are computed.
    BatchNorm shuffling (MoCo's guard against a query and its key sharing batch statistics) is emulated
    on each device as MoCo's single-GPU SplitBatchNorm does: queries are computed in ``bn_splits`` chunks
    of the batch, keys in ``bn_splits`` chunks of a shuffled copy, each chunk with its own statistics.
    """

    def __init__(self, arch: str = "resnet_small", in_channels: int = 1, width: int | None = None, dim: int = 128,
                 mlp: bool = True, queue_size: int = 65536, key_momentum: float = 0.999, temperature: float = 0.2,
                 bn_splits: int = 4, lr: float = 0.03, lr_base_batch_size: int | None = 256, momentum: float = 0.9,
                 weight_decay: float = 1e-4, warmup_epochs: float = 0.0, num_classes: int = 10, knn_k: int = 200,
                 knn_temperature: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = build_encoder(arch, in_channels, width)
        self.head = projection_head(self.encoder.feature_dim, dim, mlp)
        self.key_encoder, self.key_head = copy.deepcopy(self.encoder), copy.deepcopy(self.head)
        for p in [*self.key_encoder.parameters(), *self.key_head.parameters()]:
            p.requires_grad = False
        self.queue = EmbeddingQueue(queue_size, dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.encoder(x)), dim=1)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """Query embeddings computed in ``bn_splits`` chunks of the batch in its own order, so that their
        BatchNorm statistics come from other sample groups than those of the shuffled keys."""
        return F.normalize(torch.cat([self.head(self.encoder(c)) for c in x.chunk(self.hparams.bn_splits)]), dim=1)

    @torch.no_grad()
    def _momentum_update(self) -> None:
        m = self.hparams.key_momentum
        for online, key in zip([*self.encoder.parameters(), *self.head.parameters()],
                               [*self.key_encoder.parameters(), *self.key_head.parameters()], strict=True):
            key.mul_(m).add_(online.detach(), alpha=1 - m)

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Key embeddings, the batch shuffled and split so that BatchNorm statistics are not shared
        between a query and its own key."""
        order = torch.randperm(len(x), device=x.device)
        chunks = [self.key_head(self.key_encoder(c)) for c in x[order].chunk(self.hparams.bn_splits)]
        keys = torch.empty_like(torch.cat(chunks))
        keys[order] = torch.cat(chunks)
        return F.normalize(keys, dim=1)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        (view_q, view_k), _ = batch  # labels are never used for training
        query = self.queries(view_q)
        self._momentum_update()
        key = self.keys(view_k)
        loss = info_nce_loss(query, key, self.queue.embeddings.clone(), self.hparams.temperature)
        self.queue.push(self._gather(key))
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(key))
        return loss


RANDOM = "random"  # the explicit choice of an untrained network in place of a checkpoint

TEACHER_HINT = ("Pretrain a teacher with `python -m projects.seed fit -c projects/seed/configs/demo.yaml --version "
                "teacher` (it writes logs/seed/teacher/checkpoints/last.ckpt), or point model.init_args.teacher_ckpt "
                "at a MoCo-v2 checkpoint of this package.")


def load_teacher(path: str | Path) -> dict:
    """The checkpoint dict of a MoCo-v2 teacher (this package's), with a clear error when it is missing or
    unreadable."""
    return read_checkpoint(path, "Teacher checkpoint (model.init_args.teacher_ckpt)", hint=TEACHER_HINT)


def _restore(cls, checkpoint: dict, **overrides):
    """``cls`` built from a checkpoint's hyper-parameters (those its ``__init__`` takes) and loaded with its
    weights. Done by hand rather than with ``load_from_checkpoint``, which would route through the CLI's
    instantiator recorded in the checkpoint."""
    accepted = inspect.signature(cls.__init__).parameters
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if k in accepted}
    model = cls(**{**hparams, **overrides})
    model.load_state_dict(checkpoint["state_dict"])
    return model


TEACHER_PARTS = ("encoder.", "head.")  # what SEED keeps of a MoCo-v2 checkpoint: the query encoder and its head


def teacher_network(checkpoint: dict) -> nn.Sequential:
    """``encoder -> head`` of a MoCo-v2 checkpoint: a full Lightning checkpoint, or a slim one holding only the
    ``encoder.*`` and ``head.*`` weights (:func:`slim_teacher`, e.g. the claim's cached teacher)."""
    accepted = inspect.signature(MoCoV2.__init__).parameters
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if k in accepted}
    moco = MoCoV2(**{**hparams, "queue_size": 1})
    state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(TEACHER_PARTS)}
    expected = {k for k in moco.state_dict() if k.startswith(TEACHER_PARTS)}
    if set(state) != expected:
        raise UserFacingError(f"The teacher checkpoint's encoder/head weights do not match a MoCo-v2 "
                              f"{hparams.get('arch')} w{hparams.get('width')}: "
                              f"missing {sorted(expected - set(state))[:3]}, unexpected "
                              f"{sorted(set(state) - expected)[:3]}.")
    moco.load_state_dict(state, strict=False)  # key encoder, key head and queue are not needed by a teacher
    return nn.Sequential(moco.encoder, moco.head)


def slim_teacher(checkpoint: dict, dtype: torch.dtype = torch.float16) -> dict:
    """A MoCo-v2 checkpoint reduced to what a SEED teacher needs (hyper-parameters and the query encoder and head
    weights, floating tensors stored as ``dtype``): about a quarter of the full file at half precision."""
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in checkpoint["state_dict"].items()
             if k.startswith(TEACHER_PARTS)}
    return {"hyper_parameters": dict(checkpoint.get("hyper_parameters", {})), "state_dict": state}


class SEED(SelfSupervised):
    """SEED (Fang et al. 2021): a student mimics a frozen self-supervised teacher's similarity distribution
    over ``[its own embedding, a queue of teacher embeddings]`` (:func:`projects.seed.losses.seed_loss`).

    As the official code: the teacher is the MoCo-v2 query encoder with its MLP head, frozen and kept in
    eval mode; student and teacher see the same augmented view; the student has an MLP head; the queue
    is filled with teacher embeddings after the loss; t_S = 0.2, t_T = 1e-4, K = 65,536, dim 128.

    Args:
        teacher_ckpt: a :class:`MoCoV2` checkpoint; required to run through the CLI. ``"random"`` (or None from
            Python: tests, benchmarks, or loading a SEED checkpoint, whose state holds the teacher's weights)
            builds an untrained teacher of ``teacher_arch``.
    """

    cli_required = {"teacher_ckpt": "SEED distils a trained MoCo-v2 teacher; without one it would distil random "
                                    f"features. {TEACHER_HINT} To distil an untrained teacher on purpose, set it to "
                                    f"'{RANDOM}'."}

    def __init__(self, student_arch: str = "conv4", student_width: int | None = None, in_channels: int = 1,
                 teacher_ckpt: str | None = None, teacher_arch: str = "resnet_small", teacher_width: int | None = None,
                 teacher_mlp: bool = True, dim: int = 128, student_mlp: bool = True, queue_size: int = 65536,
                 student_temp: float = 0.2, teacher_temp: float = 1e-4, lr: float = 0.03,
                 lr_base_batch_size: int | None = 256, momentum: float = 0.9, weight_decay: float = 1e-4,
                 warmup_epochs: float = 0.0, num_classes: int = 10, knn_k: int = 200, knn_temperature: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = build_encoder(student_arch, in_channels, student_width)
        self.head = projection_head(self.encoder.feature_dim, dim, student_mlp)
        if teacher_ckpt and teacher_ckpt != RANDOM:
            checkpoint = load_teacher(teacher_ckpt)
            expected = {"arch": teacher_arch, "width": resolved_width(teacher_arch, teacher_width), "dim": dim,
                        "in_channels": in_channels, "mlp": teacher_mlp}
            saved = checkpoint.get("hyper_parameters", {})
            found = {k: saved.get(k, True if k == "mlp" else None) for k in expected}
            found["width"] = resolved_width(found["arch"], found["width"])
            if found != expected:
                raise UserFacingError(
                    f"Teacher checkpoint {teacher_ckpt} holds {found}, but the SEED config expects {expected}: set "
                    f"model.init_args.teacher_arch / teacher_width / teacher_mlp / dim to match.")
            self.teacher = teacher_network(checkpoint)
        else:
            teacher = build_encoder(teacher_arch, in_channels, teacher_width)
            self.teacher = nn.Sequential(teacher, projection_head(teacher.feature_dim, dim, teacher_mlp))
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.teacher.eval()
        self.queue = EmbeddingQueue(queue_size, dim)

    def train(self, mode: bool = True):
        """The teacher stays in eval mode (frozen BatchNorm statistics) whatever Lightning asks."""
        super().train(mode)
        self.teacher.eval()
        return self

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Lightning restores each submodule's own mode after validation, which can flip the teacher back.
        self.teacher.eval()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.encoder(x)), dim=1)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        (view, *_), _ = batch  # one augmented view, shown to both networks; labels unused
        student = self.embed(view)
        with torch.no_grad():
            teacher = F.normalize(self.teacher(view), dim=1)
        hp = self.hparams
        loss = seed_loss(student, teacher, self.queue.embeddings.clone(), hp.student_temp, hp.teacher_temp)
        self.queue.push(self._gather(teacher))
        self.log_dict({"train/loss": loss, "train/teacher_cosine": (student * teacher).sum(1).mean()},
                      prog_bar=True, on_step=True, on_epoch=True, batch_size=len(view))
        return loss


ENCODER_HINT = ("Train one with the MoCo-v2 or SEED configs of projects/seed/configs first (README: the three CPU "
                "stages), e.g. logs/seed/student/checkpoints/last.ckpt.")


def load_encoder(path: str | Path) -> Encoder:
    """The encoder of a MoCo-v2 checkpoint, or the student of a SEED checkpoint."""
    checkpoint = read_checkpoint(path, "Encoder checkpoint (model.init_args.encoder_ckpt)", hint=ENCODER_HINT)
    hparams = checkpoint.get("hyper_parameters", {})
    if "student_arch" in hparams:  # the teacher's weights are in the SEED checkpoint itself
        return _restore(SEED, checkpoint, teacher_ckpt=None).encoder
    if "arch" in hparams:  # a full MoCo-v2 checkpoint, or a slim teacher (encoder and head only)
        return teacher_network(checkpoint)[0]
    raise UserFacingError(f"{path} is neither a MoCo-v2 nor a SEED checkpoint of projects.seed.")


class LinearProbe(L.LightningModule):
    """The linear evaluation protocol: a frozen encoder (eval mode) and a linear classifier on its pooled
    features, trained with cross-entropy and SGD (MoCo's protocol: no weight decay, large lr)."""

    cli_required = {"encoder_ckpt": "the linear probe measures the features of a trained encoder; without one it "
                                    f"would probe random features. {ENCODER_HINT} To probe an untrained encoder of "
                                    f"model.init_args.arch on purpose (a baseline), set it to '{RANDOM}'."}

    def __init__(self, encoder_ckpt: str | None = None, arch: str = "conv4", in_channels: int = 1,
                 width: int | None = None, num_classes: int = 10, lr: float = 30.0,
                 lr_base_batch_size: int | None = None, milestones: tuple[int, ...] = (60, 80),
                 weight_decay: float = 0.0):
        """``encoder_ckpt``: a MoCo-v2 or SEED checkpoint; required to run through the CLI. ``"random"`` (or None
        from Python) builds an untrained encoder of ``arch``."""
        super().__init__()
        self.save_hyperparameters()
        trained = encoder_ckpt and encoder_ckpt != RANDOM
        self.encoder = load_encoder(encoder_ckpt) if trained else build_encoder(arch, in_channels, width)
        for p in self.encoder.parameters():
            p.requires_grad = False
        self.classifier = nn.Linear(self.encoder.feature_dim, num_classes)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)  # as the official main_lincls.py
        nn.init.zeros_(self.classifier.bias)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()
        return self

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        self.encoder.eval()  # see SEED.on_train_batch_start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.encoder(x)
        return self.classifier(feats)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log_dict({"train/loss": loss, "train/acc1": (logits.argmax(1) == y).float().mean()}, prog_bar=True,
                      on_step=True, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log_dict({"val/loss": F.cross_entropy(logits, y), "val/acc1": (logits.argmax(1) == y).float().mean()},
                      prog_bar=True, sync_dist=True, batch_size=len(y))

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.SGD(self.classifier.parameters(), lr=scaled_lr(self, hp.lr, hp.lr_base_batch_size),
                                    momentum=0.9, weight_decay=hp.weight_decay)
        return {"optimizer": optimizer,
                "lr_scheduler": torch.optim.lr_scheduler.MultiStepLR(optimizer, list(self.hparams.milestones), 0.1)}
