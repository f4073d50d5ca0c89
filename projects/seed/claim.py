"""SEED's key claim at small scale: ``make reproduce-seed`` -> results/seed.json.

On Fashion-MNIST without labels, once per seed: a larger teacher (ResNet-10, width 32) pretrained with
MoCo-v2; a small student (conv4, width 16, ~12x fewer parameters) trained (1) with MoCo-v2 alone and (2)
with SEED from that seed's teacher, same epochs and data. Every encoder is scored by a linear probe and a
weighted kNN on frozen features of all 10,000 test images. The paper's finding: contrastive learning
alone works poorly for small networks, and SEED closes most of the gap to the teacher (EfficientNet-B0:
42.2 -> 67.6 ImageNet linear top-1).

Run by the shared protocol (:mod:`shared.claims`), ``python -m projects.seed.claim [--seeds 0 1 2]
[--out DIR] [--scale cpu|gpu|smoke] [--sweep]``: the claim holds when the SEED student is ahead of the
MoCo-v2 student by more than two standard errors of the paired per-seed differences on both the linear
probe and the kNN. Premise gates: the teacher is ahead of the MoCo-v2 student on each of the two measures
(else there is nothing to distil: "premise absent"). No-learning reference rows, same probes: raw pixels,
and the student's architecture at random initialisation. The default 3 seeds take about 18 minutes on
2 CPU cores (teacher ~200 s, each student ~60 s, probes ~30 s a seed).
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from projects.seed.__main__ import main as cli
from projects.seed.module import load_encoder, weighted_knn
from projects.seed.nets import build_encoder
from shared.claims import ClaimContext, ClaimSpec, Comparison, SeedRun, comparisons_table, main_guard, run
from shared.fashion_mnist import MEAN, STD, FashionMNIST

HERE = Path(__file__).parent
CONFIGS = HERE / "configs"
# Fang et al. 2021, abstract and official README: ImageNet linear top-1 of EfficientNet-B0 trained with
# MoCo-v2 alone vs distilled with SEED (their best teacher); MobileNetV3-Large: 36.3 -> 68.2.
PAPER = {"student_moco": 42.2, "student_seed": 67.6}
STUDENT = {"arch": "conv4", "width": 16}
# cpu: the committed claim (teacher and students 3 epochs on 10,000 images); gpu: all 60,000 images, 12 epochs,
# batch 256 (lr scaled with the batch), for about 10 minutes over 3 seeds on one GPU (an estimate: not yet run on
# one); smoke: seconds, for the tests. test_subset None: all 10,000 test images.
SCALES = {
    "cpu": {"teacher_epochs": 3, "student_epochs": 3, "train_subset": 10000, "test_subset": None, "batch_size": 128,
            "bank_subset": 5000, "val_subset": 2000, "num_workers": 0, "probe_epochs": 200},
    "gpu": {"teacher_epochs": 12, "student_epochs": 12, "train_subset": 60000, "test_subset": None,
            "batch_size": 256, "bank_subset": 5000, "val_subset": 2000, "num_workers": 8, "probe_epochs": 200},
    "smoke": {"teacher_epochs": 1, "student_epochs": 1, "train_subset": 64, "test_subset": 128, "batch_size": 32,
              "bank_subset": 32, "val_subset": 32, "num_workers": 0, "probe_epochs": 20},
}
# Each trained network has two arms, its linear-probe and its kNN top-1 (%); the references are scored the same way.
NETWORKS = {"teacher_moco": ("teacher ResNet-10 w32", "MoCo-v2"),
            "student_moco": ("student conv4 w16", "MoCo-v2"),
            "student_seed": ("student conv4 w16", "SEED from the teacher"),
            "random_student": ("student conv4 w16", "none (random initialisation)"),
            "pixels": ("raw pixels (784)", "none")}
ARMS = {"teacher_moco": "teacher (linear)", "student_moco": "student MoCo-v2 (linear)",
        "student_seed": "student SEED (linear)", "teacher_moco_knn": "teacher (kNN)",
        "student_moco_knn": "student MoCo-v2 (kNN)", "student_seed_knn": "student SEED (kNN)",
        "random_student": "random-init student (linear)", "random_student_knn": "random-init student (kNN)",
        "pixels": "raw pixels (linear)", "pixels_knn": "raw pixels (kNN)"}

SPEC = ClaimSpec(
    paper="seed",
    claim="A small student distilled with SEED from a self-supervised teacher beats the same student trained with "
          "MoCo-v2 alone (here: on both the linear probe and the kNN).",
    metric="linear top-1 (%), student SEED / MoCo-v2",
    method="student_seed", baseline="student_moco", baseline_name="MoCo-v2",
    comparisons=[Comparison("student_seed", "student_moco", label="SEED vs MoCo-v2 student, linear top-1"),
                 Comparison("student_seed_knn", "student_moco_knn", label="SEED vs MoCo-v2 student, kNN top-1")],
    gates=[Comparison("teacher_moco", "student_moco", label="teacher ahead of the MoCo-v2 student, linear top-1"),
           Comparison("teacher_moco_knn", "student_moco_knn",
                      label="teacher ahead of the MoCo-v2 student, kNN top-1")],
    references=["random_student", "random_student_knn", "pixels", "pixels_knn"], arm_names=ARMS,
    paper_value=PAPER["student_seed"], paper_baseline=PAPER["student_moco"],
    budget_axis="training epochs (teacher and students)",
)


def images_as_inputs(dataset: FashionMNIST) -> torch.Tensor:
    """All of ``dataset``'s images as the encoders see them (N, 1, 28, 28): scaled to [0, 1] and normalised."""
    return ((dataset.images.float() / 255 - MEAN) / STD)[:, None]


@torch.no_grad()
def frozen_features(encoder: torch.nn.Module, images: torch.Tensor, device: str, batch: int = 1000) -> torch.Tensor:
    encoder.eval().to(device)
    return torch.cat([encoder(images[s:s + batch].to(device)).cpu() for s in range(0, len(images), batch)])


def linear_probe(train_x, train_y, test_x, test_y, epochs: int = 200, lr: float = 0.1) -> float:
    """A linear classifier on standardised frozen features, full-batch Adam; top-1 on the test features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    torch.manual_seed(0)
    layer = torch.nn.Linear(train_x.shape[1], 10)
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(epochs):
        optimizer.zero_grad()
        F.cross_entropy(layer(train_x), train_y).backward()
        optimizer.step()
    with torch.no_grad():
        return (layer(test_x).argmax(1) == test_y).float().mean().item()


def knn_top1(train_x, train_y, test_x, test_y, chunk: int = 2000) -> float:
    """Weighted kNN (k = 200, t = 0.1, the training monitor's) of the test features against the training ones."""
    bank = F.normalize(train_x, dim=1)
    predicted = torch.cat([weighted_knn(test_x[s:s + chunk], bank, train_y, 10, k=200, temperature=0.1)
                           for s in range(0, len(test_x), chunk)])
    return (predicted == test_y).float().mean().item()


def score(train_x, train_y, test_x, test_y, probe_epochs: int = 200) -> dict:
    return {"linear_top1": 100 * linear_probe(train_x, train_y, test_x, test_y, epochs=probe_epochs),
            "knn_top1": 100 * knn_top1(train_x, train_y, test_x, test_y)}


@functools.cache
def probe_test_set(subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The probes' test images and labels, loaded once per claim."""
    test = FashionMNIST("test", subset=subset, seed=0)
    return images_as_inputs(test), test.labels


def fit(config: str, root: Path, seed: int, epochs: int, settings: dict, *extra: str) -> tuple[Path, float, int]:
    """One training run through the real CLI (the seed fixes the data subset, the order and the weights); returns
    the final checkpoint, the seconds it took and the encoder's parameter count."""
    start = time.perf_counter()
    run = cli(args=["fit", f"--config={CONFIGS / config}", f"--seed_everything={seed}",
                    f"--trainer.max_epochs={epochs}", f"--trainer.default_root_dir={root}",
                    f"--data.init_args.train_subset={settings['train_subset']}",
                    f"--data.init_args.bank_subset={settings['bank_subset']}",
                    f"--data.init_args.val_subset={settings['val_subset']}",
                    f"--data.init_args.batch_size={settings['batch_size']}",
                    f"--data.init_args.num_workers={settings['num_workers']}",
                    f"--trainer.accelerator={settings['accelerator']}",
                    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", *extra])
    params = sum(p.numel() for p in run.model.encoder.parameters())
    last = run.trainer.checkpoint_callback.last_model_path if run.trainer.checkpoint_callback else ""
    if not last or not Path(last).is_file():  # no checkpoint callback configured: write the final state ourselves
        last = str(root / "final.ckpt")
        run.trainer.save_checkpoint(last)
    return Path(last), time.perf_counter() - start, params


def settings_for(ctx: ClaimContext) -> dict:
    """The scale's settings, with the command line's overrides."""
    return ctx.settings(SCALES) | {"accelerator": "gpu" if ctx.scale == "gpu" else "cpu"}


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    """One repetition: teacher, both students and the random-init student built with ``seed``; every encoder (and
    the raw pixels) probed on the same training images (the seed's unlabelled subset, now with labels)."""
    settings = settings_for(ctx)
    device = "cuda" if ctx.scale == "gpu" else "cpu"
    teacher_epochs = ctx.scaled("teacher_epochs", settings["teacher_epochs"])
    student_epochs = ctx.scaled("student_epochs", settings["student_epochs"])
    root = ctx.workdir / f"seed{seed}"
    trained = {}
    teacher, seconds, params = fit("demo.yaml", root / "teacher", seed, teacher_epochs, settings)
    trained["teacher_moco"] = (teacher, seconds, params)
    moco = ["--model.class_path=projects.seed.module.MoCoV2", f"--model.init_args.arch={STUDENT['arch']}",
            f"--model.init_args.width={STUDENT['width']}"]
    trained["student_moco"] = fit("demo.yaml", root / "moco", seed, student_epochs, settings, *moco)
    trained["student_seed"] = fit("demo_seed.yaml", root / "seed", seed, student_epochs, settings,
                                  f"--model.init_args.student_arch={STUDENT['arch']}",
                                  f"--model.init_args.student_width={STUDENT['width']}",
                                  f"--model.init_args.teacher_ckpt={teacher}")

    train = FashionMNIST("train", subset=settings["train_subset"], seed=seed)  # the images SSL training saw
    train_images, train_y = images_as_inputs(train), train.labels
    test_images, test_y = probe_test_set(settings["test_subset"])
    details, values = {}, {}

    def record(name: str, train_x, test_x, params: int, seconds: float) -> None:
        scores = score(train_x, train_y, test_x, test_y, settings["probe_epochs"])
        values[name], values[f"{name}_knn"] = scores["linear_top1"], scores["knn_top1"]
        details[name] = {"params": params, "seconds": round(seconds, 1)}

    for name, (checkpoint, seconds, params) in trained.items():
        encoder = load_encoder(checkpoint)
        record(name, frozen_features(encoder, train_images, device), frozen_features(encoder, test_images, device),
               params, seconds)
    L.seed_everything(seed, verbose=False)
    random_student = build_encoder(STUDENT["arch"], 1, STUDENT["width"])
    record("random_student", frozen_features(random_student, train_images, device),
           frozen_features(random_student, test_images, device), sum(p.numel() for p in random_student.parameters()),
           0.0)
    record("pixels", train_images.flatten(1), test_images.flatten(1), 0, 0.0)
    return SeedRun(values=values, details=details)


def describe(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record) -> tuple[str, str]:
    """The README table: each network's linear and kNN top-1 over seeds, then the margins and gates."""
    settings = settings_for(ctx)
    first = next(iter(runs.values()))
    mean = {arm: float(np.mean(v)) for arm, v in record.per_seed.items()}
    sd = {arm: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for arm, v in record.per_seed.items()}
    test_images = settings["test_subset"] or 10000
    lines = [f"Fashion-MNIST, {settings['train_subset']:,} unlabelled training images (drawn per seed); teacher "
             f"{ctx.budget['teacher_epochs']} epochs, students {ctx.budget['student_epochs']}; linear probe and "
             f"kNN (k = 200) on frozen features of {test_images:,} test images; mean ± SD over seeds "
             f"{record.seeds}:", "",
             "| network | training | params (encoder) | linear top-1 (%) | kNN top-1 (%) | seconds (training) |",
             "|---|---|---|---|---|---|"]
    for name, (network, training) in NETWORKS.items():
        params = first.details[name]["params"]
        seconds = np.mean([r.details[name]["seconds"] for r in runs.values()])
        ref = " (reference, no learning)" if name in spec.references else ""
        lines.append(f"| {network}{ref} | {training} | {params:,} | {mean[name]:.2f} ± {sd[name]:.2f} "
                     f"| {mean[name + '_knn']:.2f} ± {sd[name + '_knn']:.2f} | {seconds:.0f} |")
    lines += ["", comparisons_table(spec, record), "",
              f"Paper (ImageNet, linear top-1, EfficientNet-B0 student): MoCo-v2 {PAPER['student_moco']}, SEED "
              f"{PAPER['student_seed']} (with the paper's strongest teacher)."]
    note = (f"Fashion-MNIST, {settings['train_subset']} unlabelled training images; teacher "
            f"{ctx.budget['teacher_epochs']} epochs, students {ctx.budget['student_epochs']}; seeds {record.seeds}. "
            f"Mean linear / kNN top-1: teacher {mean['teacher_moco']:.2f} / {mean['teacher_moco_knn']:.2f}, student "
            f"MoCo-v2 {mean['student_moco']:.2f} / {mean['student_moco_knn']:.2f}, student SEED "
            f"{mean['student_seed']:.2f} / {mean['student_seed_knn']:.2f}; references: random-init student "
            f"{mean['random_student']:.2f} / {mean['random_student_knn']:.2f}, raw pixels {mean['pixels']:.2f} / "
            f"{mean['pixels_knn']:.2f}. Verdict: {record.verdict}.")
    return "\n".join(lines), note


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher-epochs", type=int, default=None, help="teacher epochs (default: the scale's)")
    p.add_argument("--student-epochs", type=int, default=None, help="student epochs (default: the scale's)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="unlabelled training images per seed (default: the scale's)")


def main(argv: list[str] | None = None):
    return run(SPEC, run_seed, argv, add_arguments=add_arguments, describe=describe,
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
