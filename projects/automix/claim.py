"""``make reproduce-automix``: AutoMix against no mixing, mixup, CutMix and Manifold Mixup on Fashion-MNIST.

Every policy trains the same CIFAR-style ResNet-18 (x width) in the same loop, with the same data, epochs,
optimiser and cosine schedule; one seed is one full repetition (the seed draws the training and test subsets and
initialises every policy's network). The regime is one where mixing can help at all: few training images trained
for many epochs, so that the network over-fits without regularisation, and a width (x0.25: 64 channels at stage 3,
32 attention channels) at which the Mix Block's attention leaves uniform within the run (``precheck.py``).

Run by the shared protocol (:mod:`shared.claims`): AutoMix (its online network) is compared with *each*
hand-crafted policy, and every comparison's paired margin over seeds must exceed two standard errors. Premise
gates: the no-mixing network learns beyond a nearest-class-mean classifier on raw pixels (the no-learning
reference row); mixing helps in this regime (the best hand-crafted policy of each seed ahead of no mixing, by the
same rule; a per-seed maximum, so an optimistic premise, never a comparison); and the Mix Block's mask has spatial
structure on every seed (spatial std of the mask on test pairs above ``MASK_STD_GATE``; a flat mask is a plain
per-pair blend, i.e. the run would not be measuring AutoMix's mechanism). Top-1 is read on the test images as the
median over the last ``median_of`` epochs (openmixup's protocol): a fixed rule, decided before the run, so no epoch,
head or checkpoint is chosen by its test score; the EMA network's top-1 is recorded beside it, never chosen in its
place. The attention logits' spread, the query weight's norm and the mask's spatial std are traced over training.

Schedules as openmixup's CIFAR configs: cosine lr to 0.5x (AutoMix, "min_lr=0.05 for the momentum encoder") and to
0 (the hand-crafted policies). Saves ``docs/mixed_samples.png`` and ``docs/masks_over_training.png`` (first seed).
α per policy as openmixup's CIFAR tables use them (mixup 1, CutMix 0.2, Manifold Mixup 2, AutoMix 2). The claim
runs ~625 optimiser steps where the recipe runs ~400,000, so the EMA momentum is scaled down (0.99 -> 0.999
instead of 0.999 -> 0.999999): with the recipe's 0.999 the EMA network that feeds and trains the Mix Block would
still hold ~54% of its random initialisation at the end.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from projects.automix import mixing
from projects.automix.module import MedianOfLastEpochs, MixupClassifier
from shared.claims import Check, ClaimContext, ClaimSpec, Comparison, SeedRun, comparisons_table, main_guard, run
from shared.fashion_mnist import MEAN, STD, FashionMNISTDataModule, nearest_class_mean
from shared.results import ClaimRecord

HERE = Path(__file__).parent
PICTURE_NAME = "mixed_samples.png"
ALPHA = {"none": 0.0, "mixup": 1.0, "cutmix": 0.2, "manifold": 2.0, "automix": 2.0}
BASELINES = ("none", "mixup", "cutmix", "manifold")
# openmixup's CIFAR-100 CIFAR-ResNet-18 top-1 at 800 epochs (docs/en/mixup_benchmarks/Mixup_cifar.md)
PAPER_CIFAR100_R18_800 = {"none": 78.04, "mixup": 79.12, "cutmix": 78.17, "manifold": 80.35, "saliencymix": 79.12,
                          "puzzlemix": 81.13, "automix": 82.04}
ARMS = {"automix": "AutoMix (online network)", "none": "no mixing", "mixup": "mixup", "cutmix": "CutMix",
        "manifold": "Manifold Mixup", "best_handcrafted": "best hand-crafted policy of the seed (premise only)",
        "pixels_ncm": "nearest class mean on raw pixels"}
HANDCRAFTED = ("mixup", "cutmix", "manifold")
# openmixup's CIFAR schedules: AutoMix's cosine ends at 0.05 of 0.1 (for the momentum encoder), the baselines' at 0
MIN_LR_RATIO = {"automix": 0.5, "none": 0.0, "mixup": 0.0, "cutmix": 0.0, "manifold": 0.0}
# Fixed before the run: a mask whose spatial std (B's share over pixels, mean over test pairs and λ) stays below
# this is flat, a plain per-pair blend (the flat masks of the earlier runs: 1e-4 to 3e-4; a mask that has left
# uniform attention: 0.1-0.45 in precheck.py).
MASK_STD_GATE = 0.02
PICTURE_MASKS = "masks_over_training.png"

# The budget per scale; a budget sweep scales the epochs. cpu: 500 training images for 40 epochs (625 steps of 32;
# the network fits its training set: the over-fitting regime), ~20 min for 3 seeds on 2 cores (AutoMix's step costs
# ~3.3 plain steps); validation only in the last ``median_of`` epochs. gpu: an estimate of ~10 min on one H200,
# not yet timed. smoke: seconds, for the tests.
SCALES = {"cpu": {"epochs": 40, "train_subset": 500, "val_subset": 1000, "batch_size": 32, "width": 0.25,
                  "median_of": 4},
          "gpu": {"epochs": 100, "train_subset": 5000, "val_subset": 10000, "batch_size": 100, "width": 0.5,
                  "median_of": 5},
          "smoke": {"epochs": 2, "train_subset": 128, "val_subset": 64, "batch_size": 32, "width": 0.125,
                    "median_of": 1}}

SPEC = ClaimSpec(
    paper="automix",
    claim="AutoMix's learned mixing beats hand-crafted mixup policies (no mixing, mixup, CutMix, Manifold Mixup) "
          "under the same training budget.",
    metric="Fashion-MNIST top-1 (%), AutoMix / no mixing",
    # The headline baseline, fixed before any run: no mixing, the control every policy is a change of.
    method="automix", baseline="none", baseline_name="no mixing",
    comparisons=[Comparison("automix", b) for b in BASELINES],
    gates=[Comparison("none", "pixels_ncm", label="no mixing learns beyond raw pixels"),
           Comparison("best_handcrafted", "none", label="mixing helps here: a hand-crafted policy beats no mixing"),
           Check("mask_has_spatial_structure",
                 f"the trained Mix Block's mask has spatial std > {MASK_STD_GATE} on test pairs (not a flat blend)")],
    references=["pixels_ncm"], arm_names=ARMS,
    paper_value=PAPER_CIFAR100_R18_800["automix"], paper_baseline=PAPER_CIFAR100_R18_800["none"],
    budget_axis="training epochs",
)


def settings(ctx: ClaimContext) -> dict:
    """The scale's settings, with any option given on the command line in their place."""
    return ctx.settings(SCALES)


class ValidateLastEpochs(L.Callback):
    """Validation only in the last ``last`` epochs (the ones the median reads), to save the time of the others."""

    def __init__(self, last: int):
        self.last = last

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        remaining = trainer.max_epochs - trainer.current_epoch
        trainer.check_val_every_n_epoch = 1 if remaining <= self.last else trainer.max_epochs + 1


class MixBlockTrace(L.Callback):
    """The Mix Block over training, on a fixed probe batch of (test) images paired by a fixed permutation at
    λ = 0.5: the attention logits' spread, the query weight's norm and the mask's spatial std every ``every``
    steps (and at the end), and the masks of the first ``keep`` pairs at ``snapshots`` evenly spaced steps."""

    def __init__(self, x: torch.Tensor, every: int = 25, snapshots: int = 6, keep: int = 4):
        self.x, self.every, self.snapshots, self.keep = x, every, snapshots, keep
        self.index = torch.roll(torch.arange(len(x)), 1)
        self.trace: list[dict] = []
        self.masks: list[tuple[int, torch.Tensor]] = []
        self._snap_at: set[int] = set()

    def _record(self, pl_module: MixupClassifier, step: int, snap: bool) -> None:
        was_training = pl_module.training
        pl_module.eval()  # the EMA encoder's BatchNorm in its running statistics, as in the picture
        x = self.x.to(pl_module.device)
        self.trace.append({"step": step, **pl_module.automix_diagnostics(x, 0.5, self.index)})
        if snap:
            with torch.no_grad():
                mask = pl_module.automix_masks(x[:2 * self.keep], 0.5, self.index[:2 * self.keep] % (2 * self.keep))
            self.masks.append((step, mask[:self.keep, 1].cpu()))
        pl_module.train(was_training)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = int(trainer.estimated_stepping_batches)
        self._snap_at = {round(i * total / (self.snapshots - 1)) for i in range(self.snapshots - 1)}
        self._record(pl_module, 0, True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0 or step in self._snap_at:
            self._record(pl_module, step, step in self._snap_at)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(pl_module, trainer.global_step, True)


def train(policy: str, seed: int, setting: dict, epochs: int, args: argparse.Namespace,
          accelerator: str = "cpu") -> tuple[dict, MixupClassifier, FashionMNISTDataModule]:
    """Train one policy for ``epochs`` epochs; top-1 is the median over the last ``median_of`` epochs."""
    L.seed_everything(seed, verbose=False)
    data = FashionMNISTDataModule(batch_size=setting["batch_size"], train_subset=setting["train_subset"],
                                  val_subset=setting["val_subset"], seed=seed)
    model = MixupClassifier(backbone="cifar_resnet18", width=setting["width"], num_classes=10, in_channels=1,
                            policy=policy, alpha=ALPHA[policy], lr=args.lr, lr_base_batch_size=100,
                            min_lr_ratio=MIN_LR_RATIO[policy], weight_decay=1e-4, momentum=args.ema_momentum,
                            momentum_end=args.ema_momentum_end, lam_concat=args.lam_concat)
    last = min(setting["median_of"], epochs)
    median = MedianOfLastEpochs(last)
    callbacks: list[L.Callback] = [median, ValidateLastEpochs(last)]
    if policy == "automix":
        data.setup("fit")
        probe = torch.stack([data.val_set[i][0] for i in range(32)])  # test images: a diagnostic, never a choice
        trace = MixBlockTrace(probe, every=max(1, int(epochs * setting["train_subset"] / setting["batch_size"]) // 20))
        callbacks.append(trace)
    trainer = L.Trainer(max_epochs=epochs, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, callbacks=callbacks)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*check_val_every_n_epoch.*")
        trainer.fit(model, datamodule=data)
    model.cpu()
    history = median.history["val/acc"]
    out = {"seconds": round(time.perf_counter() - t0, 1), "top1_median": float(np.median(history[-last:])),
           "top1_last": history[-1], "history": history}
    if policy == "automix":
        out["ema_top1_median"] = float(np.median(median.history["val/acc_ema"][-last:]))
        out["ema_history"] = median.history["val/acc_ema"]
        out["mask"] = mask_statistics(model, data)
        out["trace"] = [{k: round(v, 5) if isinstance(v, float) else v for k, v in t.items()} for t in trace.trace]
        out["_mask_snapshots"] = trace.masks
    return out, model, data


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    """One repetition: every policy trained with ``seed`` on the seed's subsets, and the reference row."""
    setting = settings(ctx)
    epochs = ctx.scaled("epochs", setting["epochs"])
    accelerator = "gpu" if ctx.scale == "gpu" else "cpu"
    values, details = {}, {}
    for policy in ("automix", *BASELINES):
        result, model, data = train(policy, seed, setting, epochs, ctx.args, accelerator)
        snapshots = result.pop("_mask_snapshots", None)
        values[policy], details[policy] = result["top1_median"], result
        print(f"  {policy:9s} seed {seed}: top-1 {result['top1_median']:.2f}"
              + (f" (EMA {result['ema_top1_median']:.2f}; mask spatial std {mean_mask_std(result):.4f}, "
                 f"logit spread {result['trace'][-1]['logit_spread']:.3g})" if policy == "automix" else "")
              + f"  {result['seconds']} s", flush=True)
        if policy == "automix" and seed == ctx.args.seeds[0]:
            picture(model, data, ctx.figures_dir / PICTURE_NAME)
            picture_masks(snapshots, result["trace"], ctx.figures_dir / PICTURE_MASKS)
            details["picture"] = os.path.relpath(ctx.figures_dir / PICTURE_NAME, HERE)
            details["picture_masks"] = os.path.relpath(ctx.figures_dir / PICTURE_MASKS, HERE)
        del model, data
    values["best_handcrafted"] = max(values[p] for p in HANDCRAFTED)
    values["pixels_ncm"] = nearest_class_mean(seed, setting["train_subset"], setting["val_subset"])
    details["best_handcrafted_policy"] = max(HANDCRAFTED, key=lambda p: values[p])
    details["settings"] = setting | {"epochs": epochs}
    checks = {"mask_has_spatial_structure": mean_mask_std(details["automix"]) > MASK_STD_GATE}
    return SeedRun(values=values, checks=checks, details=details)


def mean_mask_std(result: dict) -> float:
    """The trained Mix Block's mask spatial std on test pairs, mean over λ ∈ {0.2, 0.5, 0.8}."""
    return float(np.mean([m["spatial_std"] for m in result["mask"].values()]))


def mask_statistics(model: MixupClassifier, data: FashionMNISTDataModule, n: int = 256) -> dict:
    """Does the trained Mix Block mix spatially, and does its mask follow λ? On ``n`` test images."""
    x = torch.stack([data.val_set[i][0] for i in range(min(n, len(data.val_set)))])
    index = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    model.eval()
    out = {}
    with torch.no_grad():
        for lam in (0.2, 0.5, 0.8):
            mask = model.automix_masks(x, lam, index)
            out[f"lam_{lam}"] = {"mean_share_of_a": round(float(mask[:, 0].mean()), 4),
                                 "spatial_std": round(float(mask[:, 1].flatten(1).std(1).mean()), 5)}
    return out


def picture(model: MixupClassifier, data: FashionMNISTDataModule, path: Path, pairs: int = 6) -> None:
    """Rows: image A, image B, mixup, CutMix, AutoMix mask (weight of B), AutoMix mixed image; λ = 0.5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.stack([data.val_set[i][0] for i in range(2 * pairs)])
    a, b = x[:pairs], x[pairs:]
    both, index = torch.cat([a, b]), torch.cat([torch.arange(pairs) + pairs, torch.arange(pairs)])
    lam, rng = 0.5, np.random.default_rng(0)
    model.eval()
    with torch.no_grad():
        mask = model.automix_masks(both, lam, index)
    rows = {"A": a, "B": b, "mixup": mixing.mixup(both, index, lam)[0][:pairs],
            "CutMix": mixing.cutmix(both, index, lam, rng)[0][:pairs],
            "AutoMix mask (B's share)": mask[:pairs, 1:],
            "AutoMix": (both * mask[:, :1] + both[index] * mask[:, 1:])[:pairs]}
    fig, axes = plt.subplots(len(rows), pairs, figsize=(1.3 * pairs + 0.6, 1.35 * len(rows)), dpi=110)
    shown = None
    for r, (name, images) in enumerate(rows.items()):
        for c in range(pairs):
            ax = axes[r, c]
            img = images[c, 0].numpy()
            if "mask" in name:
                shown, mask_row = ax.imshow(img, cmap="viridis", vmin=0, vmax=1), r
            else:
                ax.imshow(img * STD + MEAN, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
    fig.suptitle("Fashion-MNIST pairs mixed at λ = 0.5 (AutoMix: the trained Mix Block)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    if shown is not None:  # the mask's colour scale, beside its row
        row = axes[mask_row, -1].get_position()
        bar = fig.colorbar(shown, cax=fig.add_axes((0.92, row.y0, 0.015, row.height)))
        bar.ax.tick_params(labelsize=6)
        bar.set_label("B's share", fontsize=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def picture_masks(snapshots: list[tuple[int, torch.Tensor]], trace: list[dict], path: Path) -> None:
    """Masks over training: B's share for a few fixed test pairs at λ = 0.5 at evenly spaced steps (top), and the
    attention logits' spread, the query weight's norm and the mask's spatial std against the step (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = snapshots[0][1].shape[0], len(snapshots)
    fig = plt.figure(figsize=(1.2 * cols + 0.8, 1.2 * rows + 2.4), dpi=110)
    grid = fig.add_gridspec(rows + 2, cols, height_ratios=[1] * rows + [0.25, 1.8])
    shown = None
    for c, (step, masks) in enumerate(snapshots):
        for r in range(rows):
            ax = fig.add_subplot(grid[r, c])
            shown = ax.imshow(masks[r].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"step {step}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"pair {r + 1}", fontsize=7)
    ax = fig.add_subplot(grid[rows + 1, :])
    steps = [t["step"] for t in trace]
    for key, name in (("logit_spread", "attention logit spread"), ("query_norm", "query weight norm"),
                      ("mask_spatial_std", "mask spatial std")):
        ax.plot(steps, [max(t[key], 1e-6) for t in trace], marker=".", label=name)
    ax.axhline(MASK_STD_GATE, color="grey", linestyle=":", linewidth=0.8, label=f"gate {MASK_STD_GATE}")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, loc="best")
    fig.suptitle("AutoMix's Mix Block over training (λ = 0.5, B's share; first seed)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.92, 0.97))
    if shown is not None:
        bar = fig.colorbar(shown, cax=fig.add_axes((0.935, 0.45, 0.012, 0.45)))
        bar.ax.tick_params(labelsize=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def describe(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record: ClaimRecord) -> tuple[str, str]:
    """The README table: each policy over seeds (and the EMA network beside AutoMix), then the rule's tests."""
    s = next(iter(runs.values())).details["settings"]
    seeds = record.seeds
    lines = [f"Fashion-MNIST, {s['train_subset']} training images, {s['epochs']} epochs, CIFAR ResNet-18 "
             f"×{s['width']}, batch {s['batch_size']}, top-1 on {s['val_subset']} test images (median of the last "
             f"{min(s['median_of'], s['epochs'])} epochs, a fixed rule), lr cosine to 0.5× (AutoMix) / 0 (the others) "
             f"as openmixup's CIFAR configs, seeds {seeds}; paper column: openmixup's CIFAR-100 ResNet-18, "
             "800 epochs.", "",
             "| policy | α | top-1 (%), mean ± SD | per seed | EMA network (AutoMix) | seconds / run "
             "| paper (CIFAR-100) |", "|---|---|---|---|---|---|---|"]
    for arm, values in record.per_seed.items():
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        trained = arm in ALPHA
        ema = (f"{np.mean([runs[x].details['automix']['ema_top1_median'] for x in seeds]):.2f}"
               if arm == "automix" else "–")
        secs = f"{np.mean([runs[x].details[arm]['seconds'] for x in seeds]):.0f}" if trained else "–"
        if arm == "best_handcrafted":
            ema = "–"
        lines.append(f"| {spec.label(arm)} | {f'{ALPHA[arm]:g}' if trained else '–'} | {np.mean(values):.2f} ± "
                     f"{sd:.2f} | {', '.join(f'{v:.2f}' for v in values)} | {ema} | {secs} | "
                     f"{f'{PAPER_CIFAR100_R18_800[arm]:.2f}' if trained else '–'} |")
    spatial = mask_spatial_std(runs)
    traces = [runs[x].details["automix"]["trace"] for x in seeds]
    best = [runs[x].details["best_handcrafted_policy"] for x in seeds]
    lines += ["", comparisons_table(spec, record), "",
              "The trained Mix Block's mask: spatial std "
              + ", ".join(f"{mean_mask_std(runs[x].details['automix']):.4f}" for x in seeds) + " "
              f"per seed over test pairs and λ ∈ {{0.2, 0.5, 0.8}} (gate > {MASK_STD_GATE}; 0 = a flat mask, a plain "
              f"blend). Over training (probe pairs, λ = 0.5): attention logit spread "
              + "; ".join(f"{t[0]['logit_spread']:.3g} → {t[-1]['logit_spread']:.3g}" for t in traces)
              + ", query weight norm "
              + "; ".join(f"{t[0]['query_norm']:.3g} → {t[-1]['query_norm']:.3g}" for t in traces)
              + ", mask spatial std " + "; ".join(f"{t[0]['mask_spatial_std']:.2g} → {t[-1]['mask_spatial_std']:.3g}"
                                                  for t in traces)
              + f" (seeds {seeds}). Best hand-crafted policy per seed: {', '.join(spec.label(b) for b in best)}."]
    means = {a: float(np.mean(v)) for a, v in record.per_seed.items()}
    ema_mean = float(np.mean([runs[x].details["automix"]["ema_top1_median"] for x in seeds]))
    note = (f"Seeds {seeds}; mean top-1 " + ", ".join(f"{spec.label(a)} {v:.2f}" for a, v in means.items())
            + f"; AutoMix's EMA network {ema_mean:.2f} (recorded, not compared). The Mix Block's mask has a mean "
            f"spatial std of {spatial:.4f}. The paper column is openmixup's CIFAR-100 ResNet-18 at 800 epochs "
            "(docs/en/mixup_benchmarks/Mixup_cifar.md).")
    return "\n".join(lines), note


def mask_spatial_std(runs: dict[int, SeedRun]) -> float:
    return float(np.mean([mean_mask_std(r.details["automix"]) for r in runs.values()]))


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("automix options (the size options override the --scale setting)")
    g.add_argument("--epochs", type=int, help="training epochs (cpu scale: 32)")
    g.add_argument("--median-of", type=int, help="top-1 is the median over this many last epochs (cpu scale: 4)")
    g.add_argument("--train-subset", type=int, help="training images (cpu scale: 1000)")
    g.add_argument("--val-subset", type=int, help="test images scored (cpu scale: 1000)")
    g.add_argument("--batch-size", type=int, help="cpu scale: 64")
    g.add_argument("--width", type=float, help="ResNet-18 width multiplier (cpu scale: 0.25)")
    g.add_argument("--lr", type=float, default=0.1, help="for a batch of 100 (scaled to the batch size)")
    g.add_argument("--ema-momentum", type=float, default=0.99,
                   help="AutoMix's EMA momentum at the start (recipe: 0.999 for ~400k steps; the claim runs ~625)")
    g.add_argument("--ema-momentum-end", type=float, default=0.999, help="recipe: 0.999999")
    g.add_argument("--lam-concat", action="store_true",
                   help="give the Mix Block λ as an input channel (ImageNet recipe)")


def main(argv: list[str] | None = None) -> ClaimRecord:
    return run(SPEC, run_seed, argv, add_arguments=add_arguments, describe=describe, docs_dir=HERE / "docs",
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
