"""DCD's key claim at small scale: ``make reproduce-dcd`` -> results/dcd.json.

(a) Compactness at ImageNet scale (1000 classes, 224x224): parameters and MAdds of static, DY-Conv
    and DCD ResNet-18 / ResNet-50 / MobileNetV2 x1.0, beside the numbers published for them.
(b) Accuracy: the same small ResNet-18 (width x0.25, 3x3 stem) trained with each convolution type
    under the same budget on a Fashion-MNIST subset, once per seed; the claim is that DCD matches or beats
    DY-Conv with far fewer parameters, and beats static convolution. Run by the shared protocol
    (:mod:`shared.claims`): each comparison's paired margin over seeds must exceed two standard errors;
    premise gates: DCD is the smaller model, and static convolution learns beyond a nearest-class-mean
    classifier on raw pixels (the no-learning reference row).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from projects.dcd.__main__ import main as cli
from projects.dcd.nets import build_model
from shared.claims import Check, ClaimContext, ClaimSpec, Comparison, SeedRun, comparisons_table, main_guard, run
from shared.fashion_mnist import nearest_class_mean

DEMO = Path(__file__).parent / "configs" / "demo.yaml"
# Parameter counts of the official implementation (liyunsheng13/dcd at 12a6ee5, models/imagenet/*_dcd.py,
# MobileNetV2 with fc_squeeze=16 as in its README command), printed by `python -m projects.dcd.check_official`.
OFFICIAL_DCD_PARAMS = {"resnet18": 14_703_332, "resnet50": 29_835_056, "mobilenet_v2": 5_720_028}
# Published numbers, (params M, MAdds M, top-1 %). Static and DY-Conv from Chen et al. 2020
# (Dynamic Convolution, Table 2/3). None: not retrievable offline here (see the README).
PUBLISHED = {
    ("resnet18", "static"): (11.1, 1810, 70.4), ("resnet18", "dy"): (42.7, 1850, 72.7),
    ("mobilenet_v2", "static"): (3.5, 300, 72.0), ("mobilenet_v2", "dy"): (11.1, 312.9, 75.2),
}


def complexity(arch: str, conv: str) -> dict:
    """Parameters and multiply-adds (FLOPs / 2, ``torch.utils.flop_counter``) of one 224x224 image."""
    model = build_model(arch, conv, 1000).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    return {"params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "madds_M": counter.get_total_flops() / 2 / 1e6}


def complexity_table() -> list[dict]:
    rows = []
    for arch in ("resnet18", "resnet50", "mobilenet_v2"):
        for conv in ("static", "dy", "dcd"):
            published = PUBLISHED.get((arch, conv))
            rows.append({"arch": arch, "conv": conv, **complexity(arch, conv),
                         "official_params_M": OFFICIAL_DCD_PARAMS[arch] / 1e6 if conv == "dcd" else None,
                         "paper_params_M": published[0] if published else None,
                         "paper_madds_M": published[1] if published else None,
                         "paper_top1": published[2] if published else None})
    return rows


def _cell(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def complexity_markdown(table: list[dict]) -> str:
    lines = ["| backbone | conv | params (M) | MAdds (M) | official code params (M) | published params (M) "
             "| published MAdds (M) | published ImageNet top-1 |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['arch']} | {r['conv']} | {r['params_M']:.2f} | {r['madds_M']:.1f} "
                     f"| {_cell(r['official_params_M'], '.2f')} | {_cell(r['paper_params_M'], '.1f')} "
                     f"| {_cell(r['paper_madds_M'], '.1f')} | {_cell(r['paper_top1'], '.1f')} |")
    return "\n".join(lines)


ARMS = {"static": "static conv", "dy": "DY-Conv", "dcd": "DCD", "pixels_ncm": "nearest class mean on raw pixels"}
# The small-scale budget per scale; a budget sweep scales the epochs.
SCALES = {"cpu": {"epochs": 3, "train_subset": 6000, "val_subset": 2000},
          "gpu": {"epochs": 12, "train_subset": 60000, "val_subset": 10000},
          "smoke": {"epochs": 1, "train_subset": 64, "val_subset": 64}}

SPEC = ClaimSpec(
    paper="dcd",
    claim="DCD reaches DY-Conv's accuracy with far fewer parameters, and beats static convolution.",
    metric="Fashion-MNIST top-1 (%), DCD / DY-Conv",
    method="dcd", baseline="dy", baseline_name="DY-Conv",
    comparisons=[Comparison("dcd", "static"), Comparison("dcd", "dy")],
    gates=[Check("dcd_fewer_params", "DCD has fewer parameters than DY-Conv for every ImageNet backbone"),
           Comparison("static", "pixels_ncm", label="static conv learns beyond raw pixels")],
    references=["pixels_ncm"], arm_names=ARMS,
    paper_value=None, paper_baseline=None,  # the DCD paper's tables were not retrievable offline
    budget_axis="training epochs",
)


def runs_markdown(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record) -> tuple[str, str]:
    """The README table (complexity, then each arm over seeds with its margins) and the note."""
    settings = SCALES[ctx.scale]
    first = next(iter(runs.values()))
    nonfinite = {c: [r.details[c]["val_nonfinite"] for r in runs.values()] for c in ("static", "dy", "dcd")}
    lines = [complexity_markdown(complexity_table()) if ctx.scale != "smoke" else "", "",
             f"Fashion-MNIST, ResNet-18 x0.25 (3x3 stem), {settings['train_subset']} training images, "
             f"{ctx.budget['epochs']} epochs, top-1 on {settings['val_subset']} test images, seeds {record.seeds}; "
             "params are the Fashion-MNIST model's:", "",
             "| conv | val top-1 (%), mean ± SD | per seed | test images with non-finite logits (per seed) | params |",
             "|---|---|---|---|---|"]
    for arm, values in record.per_seed.items():
        params = f"{first.details[arm]['params']:,}" if arm in first.details else "0 (no training)"
        bad = ", ".join(map(str, nonfinite[arm])) if arm in nonfinite else "–"
        sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
        lines.append(f"| {spec.label(arm)} | {np.mean(values):.2f} ± {sd:.2f} "
                     f"| {', '.join(f'{v:.2f}' for v in values)} | {bad} | {params} |")
    lines += ["", comparisons_table(spec, record)]
    note = (f"Fashion-MNIST, {settings['train_subset']} training images, {ctx.budget['epochs']} epochs, ResNet-18 "
            f"x0.25, seeds {record.seeds}; mean top-1 " + ", ".join(
                f"{spec.label(a)} {np.mean(v):.2f}" for a, v in record.per_seed.items()) + ".")
    if any(sum(v) for v in nonfinite.values()):
        note += (" Test images with non-finite logits (counted as errors): " + "; ".join(
            f"{spec.label(c)} {v}" for c, v in nonfinite.items() if sum(v)) + ".")
    return "\n".join(lines), note


def train(conv: str, root: Path, seed: int, epochs: int, train_subset: int, val_subset: int) -> dict:
    """Train through the real CLI on the demo recipe, changing only the convolution type and the seed."""
    start = time.perf_counter()
    run = cli(args=["fit", f"--config={DEMO}", f"--model.conv={conv}", f"--seed_everything={seed}",
                    f"--trainer.max_epochs={epochs}",
                    f"--data.init_args.train_subset={train_subset}", f"--data.init_args.val_subset={val_subset}",
                    f"--model.temperature_epochs={epochs / 3:.3f}", f"--trainer.default_root_dir={root / conv}",
                    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"])
    metrics = {k: float(v) for k, v in run.trainer.callback_metrics.items()}
    return {"val_acc1": metrics["val/acc1"], "val_loss": metrics["val/loss"],
            "val_nonfinite": round(metrics["val/nonfinite"] * val_subset),
            "params": sum(p.numel() for p in run.model.parameters()), "seconds": time.perf_counter() - start}


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    settings = SCALES[ctx.scale]
    epochs = ctx.scaled("epochs", settings["epochs"])
    runs = {conv: train(conv, ctx.workdir / f"seed{seed}", seed, epochs, settings["train_subset"],
                        settings["val_subset"]) for conv in ("static", "dy", "dcd")}
    compact = all(_params(arch, "dcd") < _params(arch, "dy") for arch in ("resnet18", "resnet50", "mobilenet_v2"))
    values = {conv: 100 * r["val_acc1"] for conv, r in runs.items()}
    values["pixels_ncm"] = nearest_class_mean(seed, settings["train_subset"], settings["val_subset"])
    return SeedRun(values=values, checks={"dcd_fewer_params": compact}, details=runs)


@functools.cache
def _params(arch: str, conv: str) -> int:
    """Parameters of the ImageNet-size (1000 classes) model."""
    return sum(p.numel() for p in build_model(arch, conv, 1000).parameters())


def main(argv: list[str] | None = None):
    return run(SPEC, run_seed, argv, describe=runs_markdown, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
