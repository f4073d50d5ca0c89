"""Benchmark helpers: one training step timed under Lightning and under a plain PyTorch loop.

Both sides train the same freshly built model with the same SGD optimiser on the same batch, so the
ratio isolates what Lightning's loop (hooks, logging, loop bookkeeping) adds per step. The last section serves
``make gpu-check``: each paper's paper-scale optimisation step as a closure (:class:`GpuStep`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Batch = tuple[torch.Tensor, torch.Tensor]


def plain_step_seconds(model: nn.Module, batch: Batch, steps: int = 10, warmup: int = 2, lr: float = 0.01) -> float:
    """Median seconds per step of ``forward -> cross-entropy -> backward -> SGD step`` in a bare loop."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, y = batch
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class _Classifier(L.LightningModule):
    def __init__(self, model: nn.Module, lr: float):
        super().__init__()
        self.model, self.lr = model, lr

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def sync() -> None:
    """Wait for queued CUDA work (no-op on the CPU), so that a timer measures finished work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class _StepTimer(L.Callback):
    def __init__(self):
        self.starts: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        sync()
        self.starts.append(time.perf_counter())

    def on_train_end(self, *args) -> None:
        sync()
        self.starts.append(time.perf_counter())


def fit_step_seconds(module: L.LightningModule, batch, steps: int = 10, warmup: int = 2,
                     accelerator: str = "cpu") -> float:
    """Median seconds between consecutive training steps of ``module`` under ``Trainer.fit`` on the same
    ``batch`` repeated (no logger, checkpoints or validation): one epoch over ``warmup + steps`` batches, so
    that a module stepping several optimisers a batch (manual optimisation) is timed per batch too."""
    loader = torch.utils.data.DataLoader([batch] * (warmup + steps), batch_size=None)
    timer = _StepTimer()
    trainer = L.Trainer(max_epochs=1, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer], num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, loader)
    gaps = [b - a for a, b in zip(timer.starts, timer.starts[1:], strict=False)]
    return statistics.median(gaps[warmup:])


def lightning_step_seconds(model: nn.Module, batch: Batch, steps: int = 10, warmup: int = 2,
                           lr: float = 0.01) -> float:
    """:func:`fit_step_seconds` of ``model`` trained with cross-entropy and SGD (CPU)."""
    return fit_step_seconds(_Classifier(model, lr), batch, steps, warmup)


def lightning_vs_plain(build: Callable[[], nn.Module], batch: Batch, steps: int = 10, warmup: int = 2) -> dict:
    """Seconds per step under each loop, on two identically seeded models, and their ratio."""
    torch.manual_seed(0)
    plain = plain_step_seconds(build(), batch, steps, warmup)
    torch.manual_seed(0)
    lightning = lightning_step_seconds(build(), batch, steps, warmup)
    return {"plain_s": plain, "lightning_s": lightning, "ratio": lightning / plain}


@torch.no_grad()
def median_seconds(fn: Callable[[], object], repeats: int = 10, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` (no gradients) over ``repeats`` calls after ``warmup`` untimed
    ones, with the device synchronised around each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def training_step_seconds(module: L.LightningModule, batch: dict, steps: int = 10, warmup: int = 2,
                          optimizer: type[torch.optim.Optimizer] = torch.optim.Adam, lr: float = 1e-3,
                          device: torch.device | str = "cpu") -> float:
    """Median seconds a step of the module's own ``training_step`` + ``optimizer`` in a bare loop (no Trainer,
    logging switched off) on a dict ``batch`` (tensors moved to ``device``, other values kept): the plain-PyTorch
    side of a Lightning-vs-plain comparison for modules whose step is more than a classifier's."""
    module = module.to(device).train()
    module.log = lambda *a, **k: None
    opt = optimizer(module.parameters(), lr=lr)
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    times = []
    for i in range(warmup + steps):
        sync()
        t = time.perf_counter()
        opt.zero_grad()
        module.training_step(batch, i).backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times[warmup:])


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass, counted by ``torch.utils.flop_counter`` (2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def training_flops(model: nn.Module, batch: Batch) -> int:
    """FLOPs of one training step, estimated as 3x the forward pass (backward ~ 2x forward).

    Estimated rather than counted because torch's counter charges a grouped convolution's backward
    pass as if it were dense (about ``groups`` times too much), which would inflate depthwise and
    per-sample (DY-Conv) convolutions.
    """
    was_training = model.training
    flops = 3 * forward_flops(model.train(), batch[0])
    model.train(was_training)
    return flops


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Achieved GFLOP/s of an n x n float32 matrix multiply: the machine's practical peak for reference."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


# ---------------------------------------------------------------------------------------------- make gpu-check
class GpuStep(NamedTuple):
    """One paper's paper-scale training step, as ``projects/<paper>/bench.py:gpu_training_step`` returns it for
    ``make gpu-check`` (:mod:`shared.gpu_check`)."""

    run: Callable[[], None]  # one complete optimisation step (forward, loss, backward, optimiser step(s))
    items: int  # items per step: the per-GPU batch
    item: str  # what an item is: "images", "sequences", ...
    model: str  # what is trained, in words
    parameters: int  # parameters of everything the step runs (trainable and frozen)


def recipe(config: str | Path) -> tuple[dict, int]:
    """The model's init arguments (``model:`` given plainly or as ``class_path`` / ``init_args``) and the per-GPU
    batch size (``data.init_args.batch_size``) of a recipe YAML (a relative path is from the repository root)."""
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / config).read_text())
    model = cfg["model"]
    return dict(model.get("init_args", {}) if "class_path" in model else model), cfg["data"]["init_args"]["batch_size"]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def optimisation_step(module: nn.Module, batch, device: torch.device,
                      optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
                      loss: Callable[[nn.Module, object], torch.Tensor] | None = None,
                      after: Callable[[], None] | None = None) -> Callable[[], None]:
    """A closure running one complete optimisation step of ``module`` on ``batch`` outside a Trainer, both moved to
    ``device``, in bf16 autocast on CUDA (what Lightning's ``bf16-mixed`` autocasts) and float32 elsewhere.

    Automatic optimisation: ``loss(module, batch)`` (default: the LightningModule's ``training_step`` with logging
    off) -> backward -> a step of ``optimizer`` built on the trainable parameters (given here because a module's
    ``configure_optimizers`` needs a Trainer for its schedule). A LightningModule with manual optimisation (GANs)
    runs its whole ``training_step``, stepping the optimisers of its own ``configure_optimizers``. ``after`` runs at
    the end of each step (what a Trainer hook would do, e.g. an EMA update)."""
    from lightning.fabric.utilities.apply_func import move_data_to_device

    module = module.to(device).train()
    batch = move_data_to_device(batch, device)
    manual = isinstance(module, L.LightningModule) and not module.automatic_optimization
    if isinstance(module, L.LightningModule):
        module.log = module.log_dict = lambda *a, **k: None
    if manual:
        optimisers = module.configure_optimizers()
        module.optimizers = lambda use_pl_optimizer=True: optimisers
        module.manual_backward = lambda value, *a, **k: value.backward()
    loss = loss or (lambda m, b: m.training_step(b, 0))
    opt = None if manual else optimizer([p for p in module.parameters() if p.requires_grad])

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            value = loss(module, batch)
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
        if after is not None:
            after()

    return step
