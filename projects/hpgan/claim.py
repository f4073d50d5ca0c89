"""``make reproduce-hpgan``: HP-GAN's probabilistic prediction and its critic's features, on the embedded motion
capture (DeepMimic + CMU/boxing BVH, 25 fps, 10 observed → 20 predicted frames), once per seed.

1. Trains HP-GAN with the official losses and schedule (9 critic, 1 quality, 2 generator updates a batch),
   the same generator without z (the deterministic variant), and HP-GAN with residual outputs (offsets from
   the last observed pose, not in the paper) for the same number of epochs each.
2. On the test segments: best-of-K ADE/FDE, APD and MPJPE at 80…800 ms of K sampled futures, beside the
   zero-velocity baseline; the quality network's "looks real" rate of real, generated and time-shuffled
   sequences.
3. Action recognition on the labelled clips: the critic's architecture with a new head, started from that
   seed's trained critic or from random weights: validation accuracy per epoch and the first epoch at which each
   reaches the target (90 % of the best accuracy the seed's from-scratch run reaches).

Run by the shared protocol (:mod:`shared.claims`), ``python -m projects.hpgan.claim [--seeds 0 1 2] [--out DIR]
[--scale cpu|gpu|smoke] [--sweep]``. The claim holds when, each by a paired margin over seeds above two standard
errors: HP-GAN's best-of-K ADE is below zero velocity's and below the deterministic variant's, and the classifier
started from the critic needs fewer epochs to the target than half the from-scratch run does (the paper: "less
than half"; a run that never reaches it counts as one epoch more than it trained). That last part is a comparison,
not a gate: it is the paper's claim, not a premise of it. Premise gate: the from-scratch classifier learns beyond
always answering the most frequent test class (else "epochs to target" measures nothing). Reference rows (no
learning): zero velocity, the majority class. Saves the picture ``docs/futures.png`` (first seed): observed poses
followed by sampled futures of one test window. The default 3 seeds take about 17 minutes on 2 CPU cores (each
GAN ~105 s, both classifiers ~15 s a seed).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from projects.hpgan.data import MocapDataModule
from projects.hpgan.module import HPGAN, ActionRecognition
from shared.claims import ClaimContext, ClaimSpec, Comparison, SeedRun, comparisons_table, main_guard, run

HERE = Path(__file__).parent
PICTURE = "futures.png"
VARIANTS = {"hpgan": {}, "deterministic": {"use_z": False}, "hpgan_residual": {"residual": True}}
VARIANT_NAMES = {"hpgan": "HP-GAN (official form)", "deterministic": "deterministic (no z)",
                 "hpgan_residual": "HP-GAN, residual outputs (ours)"}
# DLow's Human3.6M table (25 observed → 100 predicted frames at 50 Hz, metres → mm): HP-GAN and zero velocity.
PAPER_H36M = {"hpgan": {"apd": 7214, "ade": 858, "fde": 867}, "zero_velocity": {"apd": 0, "ade": 597, "fde": 884}}
# cpu: the committed claim (GRU 2 x 256, critic 256, lr 1e-3, 3 GAN epochs ≈ 370 iterations a model, 15 classifier
# epochs); gpu: the paper's widths (GRU 1024, critic 512) and twice the iterations, sized for about 10 minutes over
# 3 seeds on one GPU (an estimate: not yet run on one); smoke: seconds, tiny networks and 3 batches an epoch.
SCALES = {
    "cpu": {"epochs": 3, "batch_size": 16, "classifier_epochs": 15, "classifier_lr": 1e-4, "limit_train_batches": None,
            "model": {"hidden": 256, "critic_hidden": 256, "lr": 1e-3, "quality_lr": 1e-3, "num_samples": 10}},
    "gpu": {"epochs": 6, "batch_size": 16, "classifier_epochs": 15, "classifier_lr": 1e-4, "limit_train_batches": None,
            "model": {"hidden": 1024, "critic_hidden": 512, "lr": 1e-3, "quality_lr": 1e-3, "num_samples": 10}},
    "smoke": {"epochs": 1, "batch_size": 8, "classifier_epochs": 2, "classifier_lr": 1e-4, "limit_train_batches": 3,
              "model": {"hidden": 16, "critic_hidden": 16, "lr": 1e-3, "quality_lr": 1e-3, "num_samples": 3,
                        "embed": 8, "z_dim": 8, "critic_embed": 8, "critic_steps": 2}},
}
ARMS = {"hpgan": "HP-GAN best-of-K ADE (mm)", "deterministic": "deterministic ADE (mm)",
        "hpgan_residual": "HP-GAN residual outputs, best-of-K ADE (mm)", "zero_velocity": "zero velocity ADE (mm)",
        "critic_epochs": "classifier from the critic: epochs to target",
        "scratch_half_epochs": "half the from-scratch classifier's epochs to target",
        "scratch_best_acc": "from-scratch classifier: best accuracy (%)",
        "majority_class_acc": "most frequent test class (%)"}

SPEC = ClaimSpec(
    paper="hpgan",
    claim="Sampling z gives diverse futures whose best-of-K beats deterministic and zero-velocity prediction, "
          "and the critic's features train an action classifier in less than half the epochs.",
    metric="best-of-10 ADE (mm), HP-GAN / zero velocity",
    method="hpgan", baseline="zero_velocity", baseline_name="zero velocity",
    comparisons=[Comparison("hpgan", "zero_velocity", higher_is_better=False, label="HP-GAN vs zero velocity, ADE"),
                 Comparison("hpgan", "deterministic", higher_is_better=False,
                            label="HP-GAN vs deterministic variant, ADE"),
                 Comparison("critic_epochs", "scratch_half_epochs", higher_is_better=False,
                            label="critic start vs half the from-scratch epochs to target")],
    gates=[Comparison("scratch_best_acc", "majority_class_acc",
                      label="from-scratch classifier learns beyond the most frequent class")],
    references=["zero_velocity", "majority_class_acc"], arm_names=ARMS,
    paper_value=PAPER_H36M["hpgan"]["ade"], paper_baseline=PAPER_H36M["zero_velocity"]["ade"],
    budget_axis="GAN training epochs",
)


def _quiet_trainer(settings: dict, **kwargs) -> L.Trainer:
    return L.Trainer(accelerator=settings["accelerator"], devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     limit_train_batches=settings["limit_train_batches"], **kwargs)


class AccuracyHistory(L.Callback):
    def __init__(self):
        self.values: list[float] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.values.append(float(trainer.callback_metrics["val/acc"]))


def train_gan(name: str, seed: int, epochs: int, settings: dict, checkpoint: Path) -> tuple[HPGAN, MocapDataModule,
                                                                                           float]:
    L.seed_everything(seed, verbose=False)
    data = MocapDataModule(batch_size=settings["batch_size"], seed=seed)
    model = HPGAN(**settings["model"], **VARIANTS[name])
    trainer = _quiet_trainer(settings, max_epochs=epochs, limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    trainer.save_checkpoint(checkpoint)
    return model.cpu(), data, seconds


@torch.no_grad()
def evaluate(model: HPGAN, data: MocapDataModule, seed: int) -> dict[str, float]:
    """Mean over the test windows of every metric of :meth:`HPGAN.evaluate` (z drawn from the seed)."""
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for i, batch in enumerate(data.val_dataloader()):
        for key, value in model.evaluate(batch["poses"], seed=10_000 * seed + i).items():
            totals[key] = totals.get(key, 0.0) + float(value.sum())
        count += len(batch["poses"])
    return {k: v / count for k, v in totals.items()}


def train_classifier(checkpoint: Path | None, seed: int, settings: dict, classes: int) -> list[float]:
    L.seed_everything(seed, verbose=False)
    data = MocapDataModule(batch_size=64, seed=seed)
    sizes = {k: v for k, v in settings["model"].items() if k in ("critic_embed", "critic_hidden")}
    model = ActionRecognition(classes, **sizes, lr=settings["classifier_lr"],
                              critic_checkpoint=str(checkpoint) if checkpoint else None)
    history = AccuracyHistory()
    _quiet_trainer(settings, max_epochs=settings["classifier_epochs"], callbacks=[history]).fit(model, datamodule=data)
    return history.values


def first_epoch_at(values: list[float], target: float) -> int | None:
    """1-based epoch at which ``values`` first reach ``target`` (None: never)."""
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def majority_class_accuracy(data: MocapDataModule) -> float:
    """Accuracy (%) of always answering the most frequent class of the labelled test windows."""
    labels = [data.val_set[i]["label"] for i in range(len(data.val_set))]
    labelled = [label for label in labels if label >= 0]
    return 100 * max(labelled.count(c) for c in set(labelled)) / len(labelled)


def picture(model: HPGAN, data: MocapDataModule, path: Path, window: int, samples: int = 3) -> None:
    """Skeleton strips: the ground truth (observed then future) and ``samples`` sampled futures, every 2nd frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from projects.hpgan.mocap import PARENTS

    hp = model.hparams
    poses = data.val_set[window]["poses"][None]
    with torch.no_grad():
        futures = model.predict_futures(poses[:, :hp.n_obs], samples, torch.Generator().manual_seed(0))[0]
    rows = [("ground truth", poses[0])] + [(f"sample {k + 1}", torch.cat([poses[0, :hp.n_obs], futures[k]]))
                                          for k in range(samples)]
    frames = list(range(0, hp.n_obs + hp.n_pred, 2))
    fig, axes = plt.subplots(len(rows), 1, figsize=(len(frames) * 0.55, 1.45 * len(rows)))
    for ax, (title, sequence) in zip(axes, rows, strict=True):
        for slot, t in enumerate(frames):
            pose = sequence[t].numpy()
            colour = "0.45" if t < hp.n_obs else ("tab:green" if title == "ground truth" else "tab:red")
            for child, parent in enumerate(PARENTS):
                if parent >= 0:
                    ax.plot([pose[child, 0] + slot * 900, pose[parent, 0] + slot * 900],
                            [pose[child, 1], pose[parent, 1]], color=colour, lw=1.2)
        ax.set_title(title, fontsize=8, loc="left")
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle(f"test window {window}: {hp.n_obs} observed (grey) → {hp.n_pred} predicted frames, "
                 "every 2nd frame, front view (x, y)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def settings_for(ctx: ClaimContext) -> dict:
    """The scale's settings, with the command line's overrides."""
    base = SCALES[ctx.scale]
    settings = dict(base, model=dict(base["model"]), accelerator="gpu" if ctx.scale == "gpu" else "cpu")
    args = ctx.args
    for key in ("epochs", "batch_size", "classifier_epochs", "classifier_lr"):
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    for key, field in (("hidden", "hidden"), ("critic_hidden", "critic_hidden"), ("lr", "lr"),
                       ("quality_lr", "quality_lr"), ("samples", "num_samples")):
        if getattr(args, key, None) is not None:
            settings["model"][field] = getattr(args, key)
    return settings


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    """One repetition: the three GAN variants and both classifiers trained with ``seed``."""
    settings = settings_for(ctx)
    epochs = ctx.scaled("gan_epochs", settings["epochs"])
    folder = ctx.workdir / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    metrics, seconds = {}, {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        for name in VARIANTS:
            model, data, seconds[name] = train_gan(name, seed, epochs, settings, folder / f"{name}.ckpt")
            metrics[name] = evaluate(model, data, seed) | {"windows": len(data.val_set)}
            if name == "hpgan" and seed == ctx.args.seeds[0]:  # the picture once per claim
                picture(model, data, ctx.figures_dir / PICTURE, window=len(data.val_set) // 2)
        classes, majority = len(data.classes), majority_class_accuracy(data)
        history = {"critic": train_classifier(folder / "hpgan.ckpt", seed, settings, classes),
                   "scratch": train_classifier(None, seed, settings, classes)}
    target = 0.9 * max(history["scratch"])
    never = settings["classifier_epochs"] + 1  # a run that never reaches the target counts as one epoch more
    reached = {name: first_epoch_at(values, target) for name, values in history.items()}
    epochs_to_target = {name: float(e if e is not None else never) for name, e in reached.items()}
    values = {name: metrics[name]["ade"] for name in VARIANTS}
    values |= {"zero_velocity": metrics["hpgan"]["zv_ade"], "critic_epochs": epochs_to_target["critic"],
               "scratch_half_epochs": 0.5 * epochs_to_target["scratch"], "scratch_best_acc": max(history["scratch"]),
               "majority_class_acc": majority}
    classifier = {"classes": classes, "target": target, "history": history, "epochs_to_target": reached}
    return SeedRun(values=values, details={"metrics": metrics, "train_seconds": seconds, "classifier": classifier})


def describe(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record) -> tuple[str, str]:
    """The README table: each predictor's metrics averaged over seeds, the classifiers per seed, then the margins."""
    settings = settings_for(ctx)
    seeds = record.seeds
    metrics = {name: {k: float(np.mean([runs[s].details["metrics"][name][k] for s in seeds]))
                      for k in runs[seeds[0]].details["metrics"][name]} for name in VARIANTS}
    horizons = [k for k in metrics["hpgan"] if k.startswith("mpjpe_")]
    zv = metrics["hpgan"]
    lines = [f"Best of K = {settings['model']['num_samples']} samples, millimetres, pelvis-centred, "
             f"{zv['windows']:.0f} test windows (10 observed → 20 predicted frames at 25 fps), "
             f"{ctx.budget['gan_epochs']} GAN epochs a model, mean over seeds {seeds}. Quality column: share of a "
             "run's generated sequences that its own quality network scores ≥ 0.5.", "",
             "| predictor | ADE ↓ | FDE ↓ | APD | " + " | ".join(h.removeprefix("mpjpe_") for h in horizons)
             + " | quality net: looks real |", "|---|---|---|---|" + "---|" * len(horizons) + "---|",
             f"| zero velocity (reference) | {zv['zv_ade']:.0f} | {zv['zv_fde']:.0f} | 0 | "
             + " | ".join(f"{zv['zv_' + h]:.0f}" for h in horizons) + " | – |"]
    for name, m in metrics.items():
        lines.append(f"| {VARIANT_NAMES[name]} | {m['ade']:.0f} | {m['fde']:.0f} | {m['apd']:.0f} | "
                     + " | ".join(f"{m[h]:.0f}" for h in horizons) + f" | {100 * m['looks_real_generated']:.0f} % |")
    lines.append("| real test windows (the HP-GAN runs' quality nets) | – | – | – | "
                 + " | ".join("–" for _ in horizons) + f" | {100 * zv['looks_real_real']:.0f} % (time-shuffled "
                 f"futures: {100 * zv['looks_real_shuffled']:.0f} %) |")
    paper = PAPER_H36M
    lines.append(f"| *DLow's H3.6M table: zero velocity / HP-GAN* | *{paper['zero_velocity']['ade']} / "
                 f"{paper['hpgan']['ade']}* | *{paper['zero_velocity']['fde']} / {paper['hpgan']['fde']}* | "
                 f"*0 / {paper['hpgan']['apd']}* | " + " | ".join("" for _ in horizons) + " | |")
    classifiers = [runs[s].details["classifier"] for s in seeds]
    lines += ["", f"Action recognition ({classifiers[0]['classes']} classes, {settings['classifier_epochs']} epochs; "
              "per seed, target = 90 % of that seed's best from-scratch accuracy; most frequent class "
              f"{record.per_seed['majority_class_acc'][0]:.1f} %):", "",
              "| seed | target (%) | epochs to target: critic start / from scratch | best accuracy (%): critic start / "
              "from scratch |", "|---|---|---|---|"]
    for s, c in zip(seeds, classifiers, strict=True):
        reached = c["epochs_to_target"]
        lines.append(f"| {s} | {c['target']:.1f} | {reached['critic'] or 'never'} / {reached['scratch'] or 'never'} "
                     f"| {max(c['history']['critic']):.1f} / {max(c['history']['scratch']):.1f} |")
    lines += ["", comparisons_table(spec, record)]
    mean = {arm: float(np.mean(v)) for arm, v in record.per_seed.items()}
    note = (f"HP-GAN best-of-{settings['model']['num_samples']} ADE {mean['hpgan']:.0f} mm vs zero velocity "
            f"{mean['zero_velocity']:.0f} mm and deterministic {mean['deterministic']:.0f} mm (residual outputs "
            f"{mean['hpgan_residual']:.0f} mm); APD {metrics['hpgan']['apd']:.0f} mm; mean over seeds {seeds}. "
            f"Action recognition, epochs to target: critic start {mean['critic_epochs']:.1f}, from scratch "
            f"{2 * mean['scratch_half_epochs']:.1f} (never reached counts as {settings['classifier_epochs'] + 1}). "
            f"Verdict: {record.verdict}. Paper column: DLow's re-evaluation of HP-GAN on Human3.6M (mm), another "
            "protocol.")
    return "\n".join(lines), note


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The previous command line's model options; each overrides the scale's setting."""
    p.add_argument("--epochs", type=int, default=None, help="GAN epochs for each variant (cpu scale: 3)")
    p.add_argument("--batch-size", type=int, default=None, help="official: 16")
    p.add_argument("--hidden", type=int, default=None, help="GRU width (paper: 1024; cpu scale: 256)")
    p.add_argument("--critic-hidden", type=int, default=None, help="critic width (paper: 512; cpu scale: 256)")
    p.add_argument("--lr", type=float, default=None, help="generator and critic (official: 5e-5; cpu scale: 1e-3)")
    p.add_argument("--quality-lr", type=float, default=None, help="official: 2.5e-5; cpu scale: 1e-3")
    p.add_argument("--samples", type=int, default=None, help="K futures per test window (10)")
    p.add_argument("--classifier-epochs", type=int, default=None, help="cpu scale: 15")
    p.add_argument("--classifier-lr", type=float, default=None, help="1e-4")


def main(argv: list[str] | None = None):
    return run(SPEC, run_seed, argv, add_arguments=add_arguments, describe=describe, docs_dir=HERE / "docs",
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
