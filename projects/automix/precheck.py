"""Pre-check: can the Mix Block learn a non-uniform mask at all? Train only the Mix Block against a frozen network.

    python -m projects.automix.precheck                  # ~3-4 min on one core: width 0.25, 1,000 images
    python -m projects.automix.precheck --width 0.125    # the earlier claim's width

1. A CIFAR ResNet-18 (× ``width``) and its linear head are trained with plain cross-entropy on ``train_subset``
   Fashion-MNIST images for ``pretrain_epochs`` (it fits the training set), then frozen (``requires_grad`` off;
   BatchNorm in batch statistics, as AutoMix's EMA network is when the Mix Block trains through it).
2. A fresh Mix Block (openmixup's init: N(0, 0.01) weights, zero bias) reads the frozen network's stage-3 features
   and is trained alone, by SGD (momentum 0.9, weight decay 1e-4), on AutoMix's Mix Block objective:
   ℓ_mb = λ CE(h(f(x̃)), y) + (1 − λ) CE(h(f(x̃)), y[idx]) + 0.1 · max(|mean(mask₀) − λ| − 0.1, 0),
   x̃ = mask₀ ⊙ x + mask₁ ⊙ x[idx], λ ~ Beta(2, 2), a new permutation idx every step.
3. Every ``every`` steps: the attention logits' within-row spread, the query weight's norm and the mask's spatial
   std on a fixed probe batch (:meth:`projects.automix.nets.MixBlock.diagnostics`).

What it shows (width 0.25, lr 0.1, seed 0, one thread): the value path learns first (tens of steps) while the
attention stays uniform (the logits are a bilinear form in the query weight, q_iᵀk_j = z_iᵀ W_qᵀ W_q z_j / √(C/r),
so their gradient is proportional to W_q itself, N(0, 0.01) at init: a slow start near a saddle); once the value
map varies over positions the query weight grows exponentially and, ~270 steps in, the attention and the mask
leave uniform (mask spatial std ~1e-5 -> ~0.45). It is a fragile event, not a guarantee: with another random
stream the value path grew until the sigmoid saturated (each pair's mask all 0 or all 1, spatial std 1e-10 by step
50), the gradient to q/k vanished and the attention never left uniform in 450 steps (see the README).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from projects.automix.losses import mask_lambda_loss, mixup_cross_entropy
from projects.automix.nets import MixBlock, build_backbone
from shared.fashion_mnist import FashionMNIST


def load(subset: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    data = FashionMNIST(split, subset=subset, seed=seed)
    items = [data[i] for i in range(len(data))]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


def pretrain(x: torch.Tensor, y: torch.Tensor, width: float, epochs: int, batch_size: int = 64, lr: float = 0.05,
             seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module, float]:
    """A plain network (no mixing) trained on (x, y); returns backbone, head and its final training accuracy."""
    torch.manual_seed(seed)
    net = build_backbone("cifar_resnet18", x.shape[1], width)
    head = torch.nn.Linear(net.feat_dim, int(y.max()) + 1)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    for _ in range(epochs):
        for b in torch.randperm(len(x)).split(batch_size):
            loss = F.cross_entropy(head(net(x[b])), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((head(net(x)).argmax(1) == y).float().mean() * 100)
    net.train()
    return net.requires_grad_(False), head.requires_grad_(False), acc


def train_mix_block(net: torch.nn.Module, head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                    lr: float = 0.1, batch_size: int = 64, every: int = 25, seed: int = 0, stage: int = 3,
                    alpha: float = 2.0, mask_loss_weight: float = 0.1) -> tuple[MixBlock, list[dict]]:
    """Only a fresh Mix Block learns, through the frozen ``net`` / ``head``; returns it and its trace. The block's
    init and the batches continue torch's random stream (seeded once, before pretraining); λ from ``seed``."""
    rng = np.random.default_rng(seed)
    block = MixBlock(net.out_channels[stage - 1])
    opt = torch.optim.SGD(block.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    probe = x[:32]
    with torch.no_grad():
        z_probe = net.features(probe, stage)
    probe_index = torch.roll(torch.arange(len(probe)), 1)
    trace = []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            trace.append({"step": step, **block.diagnostics(z_probe, 0.5, probe_index, probe.shape[-2:])})
        if step == steps:
            break
        b = torch.randint(0, len(x), (batch_size,))
        xb, yb = x[b], y[b]
        lam, index = float(rng.beta(alpha, alpha)), torch.randperm(batch_size)
        with torch.no_grad():
            z = net.features(xb, stage)
        mask = block(z, lam, index, xb.shape[-2:])
        mixed = xb * mask[:, :1] + xb[index] * mask[:, 1:]
        loss = (mixup_cross_entropy(head(net(mixed)), yb, index, lam)
                + mask_loss_weight * mask_lambda_loss(mask, lam))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return block, trace


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m projects.automix.precheck", description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--train-subset", type=int, default=1000)
    p.add_argument("--pretrain-epochs", type=int, default=8)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the trace as JSON here")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    x, y = load(args.train_subset, args.seed)
    net, head, acc = pretrain(x, y, args.width, args.pretrain_epochs, seed=args.seed)
    print(f"frozen network: training top-1 {acc:.1f} % after {args.pretrain_epochs} epochs", flush=True)
    _, trace = train_mix_block(net, head, x, y, args.steps, args.lr, every=args.every, seed=args.seed)
    for t in trace:
        print(f"step {t['step']:4d}  logit spread {t['logit_spread']:.4g}  query norm {t['query_norm']:.4g}  "
              f"mask spatial std {t['mask_spatial_std']:.4g}", flush=True)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "pretrain_top1": acc, "trace": trace,
              "seconds": round(time.perf_counter() - t0, 1)}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
