"""Learning-rate helpers used unchanged by dcd and seed."""

from __future__ import annotations

import math

import lightning as L


def scaled_lr(module: L.LightningModule, lr: float, base_batch_size: int | None) -> float:
    """``lr`` given for ``base_batch_size`` images, scaled linearly to the global batch actually run
    (per-device batch x devices x accumulation; mmpretrain's ``auto_scale_lr``, SEED's ``lr_mult``).
    Unchanged when no base is given or the datamodule declares no ``batch_size``."""
    batch = getattr(module.trainer.datamodule, "hparams", {}).get("batch_size")
    if not base_batch_size or not batch:
        return lr
    trainer = module.trainer
    return lr * batch * trainer.world_size * trainer.accumulate_grad_batches / base_batch_size


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str = "cosine",
              milestone_steps: tuple[int, ...] = (), gamma: float = 0.1) -> float:
    """Multiplier of the base learning rate at optimiser step ``step``.

    Linear warm-up over ``warmup_steps``; then ``cosine``: ``0.5 (1 + cos(pi t))`` with t the fraction of
    the remaining steps done, or ``step``: ``gamma ** (number of milestones passed)``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        t = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
    if schedule == "step":
        return gamma ** sum(step >= m for m in milestone_steps)
    raise ValueError(f"schedule must be 'cosine' or 'step', got {schedule!r}")
