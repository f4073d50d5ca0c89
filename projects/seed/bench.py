"""``make bench-seed``: the student's training cost under SEED and under MoCo-v2, in one run.

* images/s of a SEED step (student forward/backward + frozen teacher forward) and of a MoCo-v2 step
  (query forward/backward + momentum key forward) for the same student, and their ratio;
* how the SEED step time grows with the queue size (the K-column similarity matrices);
* the SEED step under Lightning's ``Trainer.fit`` against a plain PyTorch loop on the same model.

Defaults are the CPU demo's networks (conv4 w16 student, ResNet-10 w32 teacher, 28 px, batch 128);
``--imagenet`` times the paper's EfficientNet-B0 / ResNet-50 at 224 px instead (meant for a GPU; every
timing runs on the GPU when one is present).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from projects.seed.module import SEED, MoCoV2
from shared.bench import GpuStep, fit_step_seconds, optimisation_step, parameter_count, recipe, sync
from shared.results import RESULTS_DIR, hardware


def standalone(model):
    """Let ``model.training_step`` run outside a Trainer: no logging, one process."""
    model.log = model.log_dict = lambda *args, **kwargs: None
    model._gather = lambda keys: keys
    return model


DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def step_seconds(model, batch, steps: int, warmup: int = 2) -> float:
    """Median seconds of ``training_step -> backward -> SGD step`` in a plain loop (on the GPU if any)."""
    model = standalone(model).to(DEVICE).train()
    (views, labels) = batch
    batch = (tuple(v.to(DEVICE) for v in views), labels.to(DEVICE))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    times = []
    for i in range(warmup + steps):
        sync()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch, i).backward()
        optimizer.step()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def lightning_step_seconds(model, batch, steps: int, warmup: int = 2) -> float:
    """The same step under ``Trainer.fit`` (with the plain loop's optimiser, no validation)."""
    model.configure_optimizers = lambda: torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    return fit_step_seconds(model, batch, steps, warmup, accelerator=DEVICE.type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imagenet", action="store_true", help="EfficientNet-B0 / ResNet-50 at 224 px")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.imagenet:
        student = dict(student_arch="efficientnet_b0", in_channels=3, teacher_arch="resnet50")
        moco = dict(arch="efficientnet_b0", in_channels=3)
        batch_size, shape = args.batch or 32, (3, 224, 224)
    else:
        student = dict(student_arch="conv4", student_width=16, teacher_arch="resnet_small", teacher_width=32)
        moco = dict(arch="conv4", width=16)
        batch_size, shape = args.batch or 128, (1, 28, 28)
    x = torch.randn(batch_size, *shape)
    batch = ((x, x.flip(-1)), torch.zeros(batch_size, dtype=torch.long))

    seed_s = step_seconds(SEED(**student, queue_size=65536), batch, args.steps)
    moco_s = step_seconds(MoCoV2(**moco, queue_size=65536), batch, args.steps)
    print(f"student {student['student_arch']}, batch {batch_size}, {shape[-1]} px, queue 65,536, on {DEVICE}:")
    print(f"  SEED    {batch_size / seed_s:8.1f} img/s   MoCo-v2 {batch_size / moco_s:8.1f} img/s   "
          f"SEED / MoCo-v2 throughput {moco_s / seed_s:.2f}")

    queue_times = {k: step_seconds(SEED(**student, queue_size=k), batch, args.steps)
                   for k in (1024, 4096, 16384, 65536)}
    base = queue_times[1024]
    print("SEED step time vs queue size (ratio to K = 1,024): "
          + ", ".join(f"K {k:,}: {t / base:.2f}" for k, t in queue_times.items()))

    plain = step_seconds(SEED(**student, queue_size=65536), batch, args.steps)
    lightning = lightning_step_seconds(SEED(**student, queue_size=65536), batch, args.steps)
    print(f"Lightning vs plain loop, SEED step: {lightning:.4f} vs {plain:.4f} s, ratio {lightning / plain:.3f}")

    out = RESULTS_DIR / "bench" / ("seed-imagenet.json" if args.imagenet else "seed.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": "make bench-seed" + (" (--imagenet)" if args.imagenet else ""), "hardware": hardware(),
        "threads": torch.get_num_threads(), "device": str(DEVICE), "batch": batch_size, "image": list(shape),
        "seed_img_per_s": batch_size / seed_s, "moco_img_per_s": batch_size / moco_s,
        "queue_step_s": queue_times, "lightning_s": lightning, "plain_s": plain}, indent=2) + "\n")
    print(f"wrote {out}")


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one SEED step of the EfficientNet-B0 / ResNet-50 ImageNet recipe (224 px, 32 images per
    GPU, queue 65,536) on random images: the student's forward and backward, the frozen teacher's forward (an
    untrained ResNet-50: its weights do not change the cost), the queue update, SGD."""
    kwargs, batch = recipe("projects/seed/configs/seed_efficientnet-b0_resnet50_8xb32_imagenet.yaml")
    batch = batch_size or batch
    torch.manual_seed(0)
    model = standalone(SEED(**kwargs))
    hp = model.hparams
    data = ((torch.randn(batch, 3, 224, 224),), torch.zeros(batch, dtype=torch.long))
    step = optimisation_step(model, data, device,
                             lambda p: torch.optim.SGD(p, hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay))
    return GpuStep(step, batch, "images", "SEED, EfficientNet-B0 student, ResNet-50 teacher at 224 px (ImageNet "
                   "recipe)", parameter_count(model))


if __name__ == "__main__":
    main()
