"""Checkpoints that survive interruption, and that stop a run loudly when something is wrong.

* :class:`LastCheckpoint` writes ``last.ckpt`` after every epoch (and every ``every_n_train_steps`` optimiser
  steps when set), atomically: the file is written beside its target and moved over it with ``os.replace``,
  so a run killed while writing leaves the previous ``last.ckpt`` intact. It refuses to write weights that are
  not finite.
* :class:`StopOnNonFiniteLoss` stops training at the first step whose loss is NaN or infinite, before any
  checkpoint can hold the broken weights.
* :func:`read_checkpoint` loads a checkpoint file with an error that says what to do when the file is missing,
  truncated or not a checkpoint.

All three are used unchanged by every paper through :mod:`shared.cli`.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from weakref import proxy

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from shared.errors import UserFacingError


class CorruptCheckpointError(UserFacingError, ValueError):
    """A checkpoint file exists but cannot be read (truncated, or not a PyTorch file)."""


class NonFiniteLossError(UserFacingError, FloatingPointError):
    """Training produced a NaN or infinite loss (or weights)."""


def read_checkpoint(path: str | Path, what: str = "checkpoint", *, weights_only: bool = False,
                    hint: str = "") -> dict:
    """The checkpoint dict stored at ``path`` (on the CPU). ``what`` names the file in the error (e.g.
    ``"--ckpt_path"``, ``"model.init_args.teacher_ckpt"``); ``hint`` says how to get a good one."""
    path = Path(path)
    hint = f" {hint}" if hint else ""
    if not path.is_file():
        raise UserFacingError(f"{what} {path} not found.{hint}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            raise  # a readable file holding objects a weights-only load refuses: not the user's mistake
        raise _corrupt(path, what, hint, err) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError, KeyError) as err:
        raise _corrupt(path, what, hint, err) from None
    if not isinstance(checkpoint, Mapping):
        raise CorruptCheckpointError(f"{what} {path} holds a {type(checkpoint).__name__}, not a Lightning checkpoint "
                                     f"(a dict with 'state_dict').{hint}")
    return dict(checkpoint)


def _corrupt(path: Path, what: str, hint: str, err: BaseException) -> CorruptCheckpointError:
    reason = " ".join(str(err).split())[:200] or type(err).__name__
    return CorruptCheckpointError(
        f"{what} {path} is not a readable checkpoint ({path.stat().st_size} bytes; torch.load says: {reason}). The "
        f"file is truncated (a copy or download that did not finish, a full disk) or is not a PyTorch file: copy it "
        f"again, or use an earlier checkpoint.{hint}")


def nonfinite_parameters(module: torch.nn.Module) -> list[str]:
    """Names of the parameters of ``module`` holding a NaN or an infinity."""
    return [name for name, p in module.named_parameters() if not torch.isfinite(p.detach()).all()]


def _advice(checkpoint: str | None) -> str:
    kept = (f"The last good checkpoint, {checkpoint}, is kept: resume from it with --ckpt_path {checkpoint} once "
            "the setting is changed." if checkpoint else "No checkpoint had been written yet.")
    return (f"{kept} Try a smaller learning rate (model.lr or optimizer.init_args.lr), gradient clipping "
            "(--trainer.gradient_clip_val 1.0; automatic optimisation only), 32-bit precision "
            "(--trainer.precision 32-true), or check the data for NaN or extreme values.")


def _last_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "last_model_path", "") if callback is not None else ""
    return path if path and os.path.isfile(path) else None


class StopOnNonFiniteLoss(Callback):
    """Stop at the first training step whose loss is NaN or infinite, with one paragraph that names the step,
    the loss and what to try.

    The loss is what ``training_step`` returns; with manual optimisation (GANs, which return nothing) it is every
    ``train...`` value the step logged. The check runs before :class:`LastCheckpoint` can save, so the last
    checkpoint on disk keeps the last good weights. Under DDP all processes stop together.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        losses = {}
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            losses["the loss returned by training_step"] = loss
        if not losses or not pl_module.automatic_optimization:
            logged = trainer.callback_metrics
            for key, value in logged.items():  # a value logged per step and per epoch: its _step copy is enough
                if (key.startswith("train") and not key.endswith("_epoch") and f"{key}_step" not in logged
                        and isinstance(value, torch.Tensor)):
                    losses[key] = value
        bad = {k: v for k, v in losses.items() if v.is_floating_point() and not torch.isfinite(v.detach()).all()}
        if not trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            return
        found = ", ".join(f"{k} = {v.detach().float().mean().item()}" for k, v in bad.items()) or \
            "the loss on another process"
        raise NonFiniteLossError(
            f"training stopped: the loss is not finite at epoch {trainer.current_epoch}, batch {batch_idx} "
            f"(optimiser step {trainer.global_step}): {found}. {_advice(_last_checkpoint(trainer))}")


class LastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is a real resume point.

    Lightning's own callback, with ``save_top_k=0``, writes ``last.ckpt`` only when training ends normally, so an
    interrupted run left nothing. Here, when ``save_last`` is set:

    * ``last.ckpt`` is refreshed after every epoch (whatever the other triggers), and every
      ``every_n_train_steps`` optimiser steps when that is set (for long epochs);
    * every file is written to ``.<name>.partial`` in the same folder and moved over the target with
      ``os.replace`` (atomic on a local file system), so a kill during the write keeps the previous file;
    * weights holding NaN or infinity are never written (the run stops with :class:`NonFiniteLossError`);
    * ``fast_dev_run`` writes nothing (Lightning's ``on_train_end`` would otherwise drop ``checkpoints/last.ckpt``
      into the current folder).

    Resuming from a checkpoint written at the end of an epoch reproduces the uninterrupted run exactly (see
    :class:`shared.cli.ReseedEveryEpoch`); one written mid-epoch resumes from that step but restarts the data
    loader's epoch order.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self._last_only():  # last.ckpt after every epoch, also when every_n_train_steps is set
            self._every_n_epochs = max(self._every_n_epochs, 1)

    def _last_only(self) -> bool:
        return bool(self.save_last) and self.save_top_k == 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._last_only():
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        steps = self._every_n_train_steps
        if steps >= 1 and trainer.global_step % steps == 0 and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.fast_dev_run:
            return
        if self._last_only():  # the finished state once more: its loop counters mark the last epoch completed
            ModelCheckpoint._save_last_checkpoint(self, trainer, self._monitor_candidates(trainer))
        else:
            super().on_train_end(trainer, pl_module)

    def _save_topk_checkpoint(self, trainer, monitor_candidates) -> None:
        if self._last_only():  # the periodic checkpoint is last.ckpt itself
            self._save_last_checkpoint(trainer, monitor_candidates)
        else:
            super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        if (self.last_model_path and self._last_checkpoint_saved == self.last_model_path
                and self._last_global_step_saved == trainer.global_step):
            return  # already written at this step (epoch end calls this after _save_topk_checkpoint)
        super()._save_last_checkpoint(trainer, monitor_candidates)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        broken = nonfinite_parameters(trainer.lightning_module)
        if broken:
            shown = ", ".join(broken[:3]) + (f" and {len(broken) - 3} more" if len(broken) > 3 else "")
            raise NonFiniteLossError(
                f"training stopped: the weights hold NaN or infinity after optimiser step {trainer.global_step} "
                f"(epoch {trainer.current_epoch}; {shown}), so they were not saved to {filepath}. "
                f"{_advice(_last_checkpoint(trainer))}")
        if not _is_local_file_protocol(filepath):
            return super()._save_checkpoint(trainer, filepath)
        partial = os.path.join(os.path.dirname(filepath), f".{os.path.basename(filepath)}.partial")
        trainer.save_checkpoint(partial, self.save_weights_only)
        if trainer.is_global_zero and os.path.isfile(partial):
            with open(partial, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(partial, filepath)
        trainer.strategy.barrier("LastCheckpoint.replace")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
