"""``make bench-dcd``: training-step cost of static, DY-Conv and DCD ResNet-50 at 224 px, in one run.

Prints, all measured here and now on the same machine:
* forward+backward+SGD throughput of each convolution type (batch 8), as a ratio to static;
* achieved GFLOP/s of each (training FLOPs estimated as 3x the counted forward FLOPs), beside a large
  float32 matrix multiply's GFLOP/s measured in the same run (the practical peak);
* how the DCD step time grows with the batch (2, 4, 8), as ratios to batch 2;
* the DCD step under Lightning's ``Trainer.fit`` against a plain PyTorch loop (Lightning's overhead),
  for ResNet-50 at 224 px and for the demo's small ResNet-18 on 28 px images, where a fixed per-step
  overhead weighs most.

The figures are also written to ``results/bench/dcd.json``.
"""

from __future__ import annotations

import argparse
import json

import torch

from projects.dcd.module import DCDClassifier
from projects.dcd.nets import build_model
from shared.bench import (
    GpuStep,
    lightning_vs_plain,
    matmul_gflops,
    optimisation_step,
    parameter_count,
    plain_step_seconds,
    recipe,
    training_flops,
)
from shared.results import RESULTS_DIR, hardware


def batch(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 1000, (n,), generator=g)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = batch(args.batch, args.size)
    peak = matmul_gflops()
    print(f"{torch.get_num_threads()} threads; float32 2048^3 matmul: {peak:.1f} GFLOP/s")

    results = {}
    for conv in ("static", "dy", "dcd"):
        model = build_model(args.arch, conv, 1000)
        flops = training_flops(model, data)
        seconds = plain_step_seconds(model, data, steps=args.steps, warmup=1)
        results[conv] = {"img_per_s": args.batch / seconds, "step_s": seconds, "train_gflop": flops / 1e9,
                         "gflop_per_s": flops / seconds / 1e9}
    print(f"\n{args.arch} forward+backward+SGD, batch {args.batch}, {args.size}px")
    print(f"{'conv':<8}{'img/s':>8}{'vs static':>11}{'GFLOP/step':>12}{'GFLOP/s':>9}{'% of matmul':>13}")
    for conv, r in results.items():
        print(f"{conv:<8}{r['img_per_s']:>8.2f}{r['img_per_s'] / results['static']['img_per_s']:>11.2f}"
              f"{r['train_gflop']:>12.1f}{r['gflop_per_s']:>9.1f}{100 * r['gflop_per_s'] / peak:>12.0f}%")

    model = build_model(args.arch, "dcd", 1000)
    sizes = [max(args.batch // 4, 1), max(args.batch // 2, 1), args.batch]
    times = {n: plain_step_seconds(model, batch(n, args.size), steps=args.steps, warmup=1) for n in sizes}
    print(f"\nDCD step time as the batch grows (ratio to batch {sizes[0]}; linear would be "
          f"{', '.join(f'{n / sizes[0]:.0f}' for n in sizes)}):")
    print("  " + ", ".join(f"batch {n}: {t / times[sizes[0]]:.2f}" for n, t in times.items()))

    overhead = {"large": lightning_vs_plain(lambda: build_model(args.arch, "dcd", 1000), data, steps=args.steps,
                                            warmup=1)}
    g = torch.Generator().manual_seed(0)
    small_batch = (torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))
    overhead["demo"] = lightning_vs_plain(
        lambda: build_model("resnet18", "dcd", 10, in_channels=1, width_mult=0.25, small_input=True),
        small_batch, steps=30, warmup=3)
    print("\nLightning vs plain loop (median seconds per step):")
    for name, label in (("large", f"DCD {args.arch}, batch {args.batch}, {args.size}px"),
                        ("demo", "DCD resnet18 x0.25, batch 64, 28px (demo)")):
        o = overhead[name]
        print(f"  {label}: {o['lightning_s']:.4f} vs {o['plain_s']:.4f}, ratio {o['ratio']:.3f}")
    out = RESULTS_DIR / "bench" / "dcd.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "make bench-dcd", "hardware": hardware(), "threads": torch.get_num_threads(),
                               "arch": args.arch, "batch": args.batch, "size": args.size, "matmul_gflops": peak,
                               "convs": results, "batch_scaling_s": times, "lightning_vs_plain": overhead},
                              indent=2) + "\n")
    print(f"\nwrote {out}")


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one SGD step of the ImageNet recipe's DCD ResNet-50 (224 px, 64 images per GPU) on
    random images."""
    kwargs, per_gpu = recipe("projects/dcd/configs/resnet50-dcd_4xb64_imagenet.yaml")
    n = batch_size or per_gpu
    torch.manual_seed(0)
    model = DCDClassifier(**kwargs)
    hp = model.hparams
    step = optimisation_step(model, batch(n, 224), device,
                             lambda p: torch.optim.SGD(p, hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay))
    return GpuStep(step, n, "images", "DCD ResNet-50 at 224 px (ImageNet recipe)", parameter_count(model))


if __name__ == "__main__":
    main()
