"""``make bench-automix``: the cost of one training step per mixing policy, in one run.

* images/s of a training step under Lightning's ``Trainer.fit`` for each policy, and its ratio to no
  mixing (AutoMix pays for the Mix Block, the EMA encoder's two forward passes and the clean-image pass);
* AutoMix's step under ``Trainer.fit`` against the same ``training_step`` + SGD + EMA update in a bare
  PyTorch loop.

Default: the claim's network (CIFAR ResNet-18 ×0.125, 28 px, batch 64); ``--paper``: the CIFAR-100
recipe's (CIFAR ResNet-18, 32 px, batch 100), meant for a GPU (everything runs on one when present).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from projects.automix.module import POLICIES, MixupClassifier, ema_update
from shared.bench import GpuStep, fit_step_seconds, optimisation_step, parameter_count, recipe
from shared.results import RESULTS_DIR, hardware

ACCELERATOR = "gpu" if torch.cuda.is_available() else "cpu"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build(policy: str, args) -> MixupClassifier:
    torch.manual_seed(0)
    return MixupClassifier(backbone="cifar_resnet18", width=args.width, num_classes=args.classes,
                           in_channels=args.channels, policy=policy, lr_base_batch_size=None)


def plain_seconds(model: MixupClassifier, batch, steps: int, warmup: int) -> float:
    """``training_step`` + backward + SGD step + EMA update in a bare loop, median seconds per step."""
    model = model.to(DEVICE).train()
    model.log = model.log_dict = lambda *a, **k: None
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x, y = (t.to(DEVICE) for t in batch)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = model.training_step((x, y), i)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if model.hparams.policy == "automix":
            for k, q in ((model.backbone_k, model.backbone), (model.head_k, model.head),
                         (model.head_one_k, model.head_one)):
                ema_update(k, q, 0.999)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper", action="store_true", help="the CIFAR-100 recipe's network and batch")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    if args.paper:
        args.width, args.classes, args.channels, args.size, args.batch = 1.0, 100, 3, 32, 100
    else:
        args.width, args.classes, args.channels, args.size, args.batch = 0.125, 10, 1, 28, 64
    batch = (torch.randn(args.batch, args.channels, args.size, args.size),
             torch.randint(0, args.classes, (args.batch,)))
    print(f"CIFAR ResNet-18 ×{args.width}, {args.size} px, batch {args.batch}, on {DEVICE}: "
          "images/s of a training step")
    per_policy = {}
    for policy in POLICIES:
        seconds = fit_step_seconds(build(policy, args), batch, steps=args.steps, warmup=2, accelerator=ACCELERATOR)
        per_policy[policy] = args.batch / seconds
    for policy, ips in per_policy.items():
        print(f"  {policy:12s} {ips:8.1f} img/s   ×{ips / per_policy['none']:.2f} of no mixing")
    plain = plain_seconds(build("automix", args), batch, args.steps, 2)
    lightning = args.batch / per_policy["automix"]
    print(f"AutoMix step, Lightning vs plain loop: {lightning:.4f} vs {plain:.4f} s, ratio {lightning / plain:.2f}")
    out = RESULTS_DIR / "bench" / ("automix-paper.json" if args.paper else "automix.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"hardware": hardware(), "images_per_s": per_policy,
                               "ratio_to_none": {k: v / per_policy["none"] for k, v in per_policy.items()},
                               "automix_lightning_s": lightning, "automix_plain_s": plain,
                               "lightning_over_plain": lightning / plain,
                               "setup": {k: getattr(args, k) for k in ("width", "size", "batch", "steps")}}, indent=1)
                   + "\n")
    print(f"wrote {out}")
    return per_policy


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one AutoMix step of the CIFAR-100 recipe (CIFAR ResNet-18, 32 px, batch 100) on random
    images: the EMA encoder's passes, the Mix Block, the four losses, SGD and the EMA update."""
    kwargs, batch = recipe("projects/automix/configs/automix_resnet18_1xb100_cifar100.yaml")
    batch = batch_size or batch
    torch.manual_seed(0)
    model = MixupClassifier(**kwargs)
    hp = model.hparams
    data = (torch.randn(batch, hp.in_channels, 32, 32), torch.randint(0, hp.num_classes, (batch,)))
    step = optimisation_step(model, data, device, lambda p: torch.optim.SGD(
        p, hp.lr, momentum=hp.momentum_sgd, weight_decay=hp.weight_decay),
        after=lambda: [ema_update(k, q, hp.momentum) for k, q in model._pairs()])
    return GpuStep(step, batch, "images", "AutoMix, CIFAR ResNet-18 at 32 px (CIFAR-100 recipe)",
                   parameter_count(model))


if __name__ == "__main__":
    main()
