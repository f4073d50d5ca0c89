"""Test helpers: run a config through the real CLI in-process, and check resuming from a checkpoint."""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
import yaml

CliMain = Callable[..., object]  # a paper's ``__main__.main(args=..., run=...)``


def run_cli(main: CliMain, configs: Sequence[str | Path], root: str | Path, *overrides: str,
            subcommand: str = "fit"):
    """Run ``python -m projects.<paper> <subcommand> -c <configs...> <overrides...>`` in this process.

    Logs, checkpoints and the saved config go under ``root``. Returns the LightningCLI object.
    """
    args = [subcommand, *(f"--config={c}" for c in configs), f"--trainer.default_root_dir={root}",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", *overrides]
    return main(args=args)


def resolved_config(main: CliMain, configs: Sequence[str | Path], *overrides: str) -> dict:
    """The configuration ``fit --print_config`` resolves for ``configs`` and ``overrides``: parsed and validated
    by the real CLI, which stops before building anything (so GPU trainer files resolve on a CPU)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(args=["fit", *(f"--config={c}" for c in configs), *overrides, "--print_config"])
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
    return yaml.safe_load(out.getvalue())


def final_metrics(cli) -> dict[str, float]:
    """The trainer's last logged epoch-level metrics, as floats."""
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if not k.endswith("_step")}


class InterruptAfter(L.Callback):
    """Stop training at the end of epoch ``epochs`` (counted from 1), as a killed job would, but with
    the schedule of the full run (so ``max_epochs`` and everything derived from it stay unchanged)."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class CrashAt(L.Callback):
    """Interrupt training in the middle of epoch ``epoch`` (counted from 0), before batch ``batch`` runs: with
    ``signal`` ("SIGINT", "SIGKILL", ...) the process sends itself that signal, otherwise it raises
    :class:`SimulatedCrash` (as a crash in a data loader or a layer would)."""

    def __init__(self, epoch: int = 1, batch: int = 1, signal: str | None = None):
        self.epoch, self.batch, self.signal = epoch, batch, signal

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            if self.signal:
                import os
                import signal

                os.kill(os.getpid(), getattr(signal, self.signal))
            raise SimulatedCrash(f"simulated crash in epoch {self.epoch}, batch {self.batch}")


class SimulatedCrash(RuntimeError):
    """Raised by :class:`CrashAt`."""


class ScaleLearningRate(L.Callback):
    """Multiply every optimiser's learning rate by ``factor`` when epoch ``epoch`` starts (a setting that makes a
    healthy run diverge part-way, for the NaN stop's tests)."""

    def __init__(self, epoch: int = 1, factor: float = 1e30):
        self.epoch, self.factor = epoch, factor

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] *= self.factor


def last_checkpoint(root: str | Path) -> Path:
    """The one ``last.ckpt`` under ``root`` (asserted)."""
    found = sorted(Path(root).rglob("last.ckpt"))
    assert len(found) == 1, f"expected one last.ckpt under {root}, found {found}"
    return found[0]


def check_resume(main: CliMain, configs: Sequence[str | Path], tmp_path: Path, *overrides: str,
                 epochs: int = 2, stop_after: int = 1, rtol: float = 1e-5, crash: bool = False) -> dict[str, float]:
    """Train ``epochs`` epochs straight, and again interrupted and resumed from the ``last.ckpt`` on disk; assert
    both runs end with the same metrics (and the same weights). Returns them.

    The interruption is a clean stop after ``stop_after`` epochs, or with ``crash`` an exception raised in the
    middle of epoch ``stop_after`` (:class:`CrashAt`: nothing runs at the end of that epoch or of training, so only
    the checkpoints written during training are there to resume from)."""
    full = (*overrides, f"--trainer.max_epochs={epochs}")
    straight = run_cli(main, configs, tmp_path / "straight", *full)
    if crash:
        try:
            run_cli(main, configs, tmp_path / "interrupted", *full, "--trainer.callbacks+=shared.testing.CrashAt",
                    f"--trainer.callbacks.epoch={stop_after}", "--trainer.callbacks.batch=1")
        except SimulatedCrash:
            pass
        else:
            raise AssertionError("the run was not interrupted")
    else:
        first = run_cli(main, configs, tmp_path / "interrupted", *full, "--trainer.callbacks+=shared.testing"
                        ".InterruptAfter", f"--trainer.callbacks.epochs={stop_after}")
        assert first.trainer.current_epoch == stop_after, "the interrupted run did not stop where asked"
    last = last_checkpoint(tmp_path / "interrupted")
    saved = torch.load(last, map_location="cpu", weights_only=False)
    # a crash leaves the checkpoint of the last epoch that finished; a clean stop the final state (epoch counter
    # already advanced)
    assert saved["epoch"] == (stop_after - 1 if crash else stop_after), ("last.ckpt is not from the last epoch "
                                                                          "that finished", saved["epoch"])
    resumed = run_cli(main, configs, tmp_path / "resumed", *full, f"--ckpt_path={last}")
    expected, got = final_metrics(straight), final_metrics(resumed)
    assert expected.keys() == got.keys(), (expected.keys(), got.keys())
    for key in expected:
        assert math.isclose(expected[key], got[key], rel_tol=rtol, abs_tol=1e-6), (key, expected[key], got[key])
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=rtol, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
    return got


def check_nan_stop(main: CliMain, configs: Sequence[str | Path], root: Path, *overrides: str) -> str:
    """Run a setting that makes the loss NaN from the first steps (e.g. ``--model.lr=1e30``) and assert that it
    stops with exit status 1 and one ``error:`` paragraph naming the non-finite loss, and writes no checkpoint.
    Returns that paragraph."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            run_cli(main, configs, root, "--trainer.max_epochs=2", *overrides)
        except SystemExit as exit_:
            code = exit_.code
        else:
            code = 0
    lines = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
    assert code == 1 and len(lines) == 1, (code, err.getvalue()[-3000:])
    assert lines[0].startswith("error: training stopped: the loss is not finite at epoch 0"), lines[0]
    assert "No checkpoint had been written yet" in lines[0] and "learning rate" in lines[0], lines[0]
    assert not list(Path(root).rglob("*.ckpt")), "a checkpoint with non-finite weights was written"
    return lines[0]


def fit_in_subprocess(paper: str, configs: Sequence[str | Path], root: Path, *overrides: str,
                      timeout: int = 600) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``python -m projects.<paper> fit -c <configs...> <overrides...>`` in a fresh process (how a DDP
    run must start), assert it exits 0, and return the finished process and its ``last.ckpt`` (loaded)."""
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", f"projects.{paper}", "fit", *(f"--config={c}" for c in configs), *overrides,
         f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false"],
        capture_output=True, text=True, timeout=timeout, cwd=repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(next(Path(root).glob(f"logs/{paper}/version_*/checkpoints/last.ckpt")), weights_only=False)
    return proc, ckpt
