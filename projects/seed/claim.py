"""SEED's key claim at small scale: ``make reproduce-seed`` -> results/seed.json.

On a harder view of Fashion-MNIST (every garment shrunk to 20 px and placed at a random offset, fixed per image, in
the 28 px frame, so that raw pixels are a weak representation, as on natural images), without labels: a MoCo-v2
teacher (ResNet-10, width 16, 3 epochs over all 60,000 training images) trained once by a recorded command and
cached (:mod:`projects.seed.teacher`); per seed, a tiny student
(conv4, width 4, 6,204 parameters, ~50x fewer than the teacher) trained (1) with MoCo-v2 alone, (2) with SEED from
the teacher at the official teacher temperature t_T = 1e-4 and (3) with SEED at a soft t_T = 0.01, same steps
and data. Every encoder, the raw pixels and the student at random initialisation are scored on frozen features of
all 10,000 test images by three probes: a weighted kNN (k = 200) and a 10-shot nearest-class-mean classifier
(10 labelled images per class, mean of 5 draws), the primary measures, and a linear probe, reported. The paper's
finding: contrastive learning alone works poorly for small networks, and SEED closes most of the gap to the
teacher (EfficientNet-B0: 42.2 -> 67.6 ImageNet linear top-1).

Run by the shared protocol (:mod:`shared.claims`), ``python -m projects.seed.claim [--seeds 0 1 2] [--out DIR]
[--scale cpu|gpu|smoke] [--sweep]``. Premise gates (else "premise absent": there is nothing to distil): the
teacher is ahead of the raw pixels and of the MoCo-v2 student on kNN and on 10-shot. The claim holds when the
SEED student (official t_T) is ahead of the MoCo-v2 student by more than two standard errors of the paired
per-seed differences on kNN and on 10-shot; the soft t_T and the linear probe are reported beside. About
5 minutes for 3 seeds on 2 CPU cores.
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
from projects.seed.data import placed_fashion_mnist
from projects.seed.module import load_encoder, teacher_network, weighted_knn
from projects.seed.nets import build_encoder
from projects.seed.teacher import CACHE, COMMAND, CONFIG, export
from shared.checkpoints import read_checkpoint
from shared.claims import (
    ClaimContext,
    ClaimSpec,
    Comparison,
    SeedRun,
    comparisons_table,
    format_margin,
    main_guard,
    run,
)
from shared.errors import UserFacingError
from shared.fashion_mnist import MEAN, STD, FashionMNIST

HERE = Path(__file__).parent
CONFIGS = HERE / "configs"
# Fang et al. 2021, abstract and official README: ImageNet linear top-1 of EfficientNet-B0 trained with
# MoCo-v2 alone vs distilled with SEED (their best teacher); MobileNetV3-Large: 36.3 -> 68.2.
PAPER = {"student_moco": 42.2, "student_seed": 67.6}
STUDENT = {"arch": "conv4", "width": 4}
TEACHER = {"arch": "resnet_small", "width": 16}
TEACHER_TEMPS = {"student_seed": 1e-4, "student_seed_soft": 0.01}  # official --distill-t, and a soft one
SHOTS, SHOT_DRAWS = 10, 5
# The harder view: every garment shrunk to 20 px and put at a random place (fixed per image) in the 28 px frame,
# for the teacher, the students and the probes alike (projects.seed.data.place_at_random).
PLACE = 20
# cpu: the committed claim (the cached teacher; each student 1 epoch over student_images images drawn per seed,
# batch 256; probes fitted on probe_images labelled training images drawn per seed). gpu: the teacher trained in the
# run (teacher_epochs over all 60,000 images), students 10 epochs over all images (an estimate: not yet run on a
# GPU). smoke: seconds, for the tests (a tiny teacher trained in the run).
SCALES = {
    "cpu": {"teacher_epochs": None, "student_epochs": 1, "student_images": 38400, "probe_images": 10000,
            "test_subset": None, "batch_size": 256, "num_workers": 1, "probe_epochs": 200},
    "gpu": {"teacher_epochs": 30, "student_epochs": 10, "student_images": 60000, "probe_images": 10000,
            "test_subset": None, "batch_size": 256, "num_workers": 8, "probe_epochs": 200},
    "smoke": {"teacher_epochs": 1, "student_epochs": 1, "student_images": 64, "probe_images": 200, "test_subset": 128,
              "batch_size": 32, "num_workers": 0, "probe_epochs": 20},
}
PROBES = {"knn": "kNN", "fewshot": f"{SHOTS}-shot", "linear": "linear"}
# Each network's three probe arms are ``<network>_<probe>``.
NETWORKS = {"teacher": ("teacher ResNet-10 w16", "MoCo-v2 (cached, fixed over seeds)"),
            "student_moco": ("student conv4 w4", "MoCo-v2"),
            "student_seed": ("student conv4 w4", "SEED from the teacher, t_T = 1e-4 (official)"),
            "student_seed_soft": ("student conv4 w4", "SEED from the teacher, t_T = 0.01"),
            "random_student": ("student conv4 w4", "none (random initialisation)"),
            "pixels": ("raw pixels (784)", "none")}
SHORT = {"teacher": "teacher", "student_moco": "student MoCo-v2", "student_seed": "student SEED",
         "student_seed_soft": "student SEED soft t_T", "random_student": "random-init student",
         "pixels": "raw pixels"}
ARMS = {f"{n}_{p}": f"{SHORT[n]} ({label})" for n in NETWORKS for p, label in PROBES.items()}
PRIMARY = ("knn", "fewshot")

SPEC = ClaimSpec(
    paper="seed",
    claim="A small student distilled with SEED (official teacher temperature) from a self-supervised teacher beats "
          "the same student trained with MoCo-v2 alone (here: on kNN and 10-shot top-1; linear reported).",
    metric="kNN top-1 (%), student SEED / MoCo-v2",
    method="student_seed_knn", baseline="student_moco_knn", baseline_name="MoCo-v2",
    comparisons=[Comparison(f"student_seed_{p}", f"student_moco_{p}",
                            label=f"SEED (t_T 1e-4) vs MoCo-v2 student, {PROBES[p]} top-1") for p in PRIMARY],
    gates=[Comparison(f"teacher_{p}", f"{other}_{p}", label=f"teacher ahead of the {SHORT[other]}, {PROBES[p]} top-1")
           for other in ("pixels", "student_moco") for p in PRIMARY],
    references=[f"{n}_{p}" for n in ("random_student", "pixels") for p in PROBES], arm_names=ARMS,
    paper_value=None, paper_baseline=None,
    budget_axis="student training images",
)
# Reported beside the claim, by the same rule: the soft teacher temperature, and the linear probe.
REPORTED = ([Comparison(f"student_seed_soft_{p}", f"student_moco_{p}",
                        label=f"SEED (t_T 0.01) vs MoCo-v2 student, {PROBES[p]} top-1") for p in PROBES]
            + [Comparison("student_seed_linear", "student_moco_linear",
                          label="SEED (t_T 1e-4) vs MoCo-v2 student, linear top-1"),
               Comparison("student_seed_soft_knn", "student_seed_knn", label="SEED t_T 0.01 vs 1e-4, kNN top-1"),
               Comparison("teacher_linear", "student_moco_linear", label="teacher vs MoCo-v2 student, linear top-1"),
               Comparison("teacher_linear", "pixels_linear", label="teacher vs raw pixels, linear top-1")])


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


def few_shot_top1(train_x, train_y, test_x, test_y, shots: int = SHOTS, draws: int = SHOT_DRAWS,
                  seed: int = 0) -> float:
    """Nearest class mean with ``shots`` labelled training images per class: the test features (L2-normalised)
    go to the class whose mean normalised feature is the most cosine-similar; mean top-1 over ``draws`` draws of
    the labelled images (drawn with ``seed``, the same draws for every encoder of a seed)."""
    train_x, test_x = F.normalize(train_x, dim=1), F.normalize(test_x, dim=1)
    classes = train_y.unique()
    generator = torch.Generator().manual_seed(seed)
    correct = []
    for _ in range(draws):
        picks = [torch.nonzero(train_y == k).flatten() for k in classes]
        picks = [idx[torch.randperm(len(idx), generator=generator)[:shots]] for idx in picks]
        means = F.normalize(torch.stack([train_x[idx].mean(0) for idx in picks]), dim=1)
        predicted = classes[(test_x @ means.T).argmax(1)]
        correct.append((predicted == test_y).float().mean().item())
    return float(np.mean(correct))


def score(train_x, train_y, test_x, test_y, probe_epochs: int = 200, seed: int = 0) -> dict:
    """The three probes' top-1 (%) of one set of frozen features: ``{knn, fewshot, linear}``."""
    return {"knn": 100 * knn_top1(train_x, train_y, test_x, test_y),
            "fewshot": 100 * few_shot_top1(train_x, train_y, test_x, test_y, seed=seed),
            "linear": 100 * linear_probe(train_x, train_y, test_x, test_y, epochs=probe_epochs)}


@functools.cache
def probe_test_set(subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The probes' test images and labels, loaded once per claim."""
    test = placed_fashion_mnist("test", subset=subset, seed=0, place=PLACE)
    return images_as_inputs(test), test.labels


def fit(config: str | Path, root: Path, seed: int, epochs: int, settings: dict, *extra: str,
        train_subset: int | None = None) -> tuple[Path, float, int]:
    """One training run through the real CLI (the seed fixes the data subset, the order and the weights); returns
    the final checkpoint, the seconds it took and the encoder's parameter count."""
    start = time.perf_counter()
    run = cli(args=["fit", f"--config={CONFIGS / config}", f"--seed_everything={seed}",
                    f"--trainer.max_epochs={epochs}", f"--trainer.default_root_dir={root}",
                    f"--data.init_args.train_subset={train_subset}",
                    f"--data.init_args.bank_subset={min(5000, settings['probe_images'])}",
                    f"--data.init_args.val_subset={min(2000, settings['test_subset'] or 2000)}",
                    f"--data.init_args.batch_size={settings['batch_size']}",
                    f"--data.init_args.num_workers={settings['num_workers']}", f"--data.init_args.place={PLACE}",
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


def teacher_for(ctx: ClaimContext, settings: dict) -> tuple[Path, float]:
    """The teacher every seed distils: at cpu scale the cached file (:mod:`projects.seed.teacher`, fixed over seeds),
    else trained once in this run from the same config (seed 0) and slimmed the same way; cached on ``ctx``."""
    if getattr(ctx, "_seed_teacher", None):
        return ctx._seed_teacher
    if settings["teacher_epochs"] is None:
        path = Path(getattr(ctx.args, "teacher", None) or CACHE)
        if not path.is_file():
            raise UserFacingError(f"The cached teacher {path} is missing: make it with `{COMMAND}` (about 30 "
                                  f"minutes on 2 CPU cores), or pass --teacher-epochs N to train one in the run.")
        ctx._seed_teacher = (path, 0.0)
        return ctx._seed_teacher
    epochs = ctx.scaled("teacher_epochs", settings["teacher_epochs"])
    checkpoint, seconds, _ = fit(CONFIG.name, ctx.workdir / "teacher", 0, epochs, settings,
                                 train_subset=None if ctx.scale == "gpu" else settings["student_images"])
    ctx._seed_teacher = (export(checkpoint, ctx.workdir / "teacher.pt", {"epochs": epochs}), seconds)
    return ctx._seed_teacher


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    """One repetition: the three students and the random-init student built with ``seed`` (student images and
    order drawn with it), every encoder (and the raw pixels) probed on the same labelled training images (drawn
    with the seed) and the same test images."""
    settings = settings_for(ctx)
    device = "cuda" if ctx.scale == "gpu" else "cpu"
    teacher_path, teacher_seconds = teacher_for(ctx, settings)
    images = ctx.scaled("student_images", settings["student_images"])
    epochs = settings["student_epochs"]
    ctx.budget["student_epochs"] = epochs
    root = ctx.workdir / f"seed{seed}"
    student = [f"--model.init_args.student_arch={STUDENT['arch']}",
               f"--model.init_args.student_width={STUDENT['width']}",
               f"--model.init_args.teacher_ckpt={teacher_path}", f"--model.init_args.teacher_arch={TEACHER['arch']}",
               f"--model.init_args.teacher_width={TEACHER['width']}"]
    trained = {"student_moco": fit("demo.yaml", root / "moco", seed, epochs, settings,
                                   "--model.class_path=projects.seed.module.MoCoV2",
                                   f"--model.init_args.arch={STUDENT['arch']}",
                                   f"--model.init_args.width={STUDENT['width']}", train_subset=images)}
    for name, temp in TEACHER_TEMPS.items():
        trained[name] = fit("demo_seed.yaml", root / name, seed, epochs, settings, *student,
                            f"--model.init_args.teacher_temp={temp}", train_subset=images)

    probe = placed_fashion_mnist("train", subset=settings["probe_images"], seed=seed + 1000, place=PLACE)  # labelled
    probe_images, probe_y = images_as_inputs(probe), probe.labels
    test_images, test_y = probe_test_set(settings["test_subset"])
    details, values = {}, {}

    def record(name: str, encoder, params: int, seconds: float) -> None:
        if encoder is None:
            train_x, test_x = probe_images.flatten(1), test_images.flatten(1)
        else:
            train_x = frozen_features(encoder, probe_images, device)
            test_x = frozen_features(encoder, test_images, device)
        for probe_name, value in score(train_x, probe_y, test_x, test_y, settings["probe_epochs"], seed).items():
            values[f"{name}_{probe_name}"] = value
        details[name] = {"params": params, "seconds": round(seconds, 1)}

    teacher = teacher_network(read_checkpoint(teacher_path, "teacher", weights_only=False))[0]
    record("teacher", teacher, sum(p.numel() for p in teacher.parameters()), teacher_seconds)
    for name, (checkpoint, seconds, params) in trained.items():
        record(name, load_encoder(checkpoint), params, seconds)
    L.seed_everything(seed, verbose=False)
    random_student = build_encoder(STUDENT["arch"], 1, STUDENT["width"])
    record("random_student", random_student, sum(p.numel() for p in random_student.parameters()), 0.0)
    record("pixels", None, 0, 0.0)
    return SeedRun(values=values, details=details)


def reported_table(spec: ClaimSpec, record) -> tuple[str, list[dict]]:
    """The comparisons reported beside the claim (soft t_T, linear probe), by the same paired rule."""
    rows = ["| reported (not in the verdict) | margin ± SE (paired over seeds) | > 2 SE |", "|---|---|---|"]
    measured = []
    for c in REPORTED:
        m = c.measure(record.per_seed)
        measured.append(m)
        rows.append(f"| {spec.label(c.method)} vs {spec.label(c.baseline)} | {format_margin(m)} | "
                    f"{'yes' if m['holds'] else 'no'} |")
    return "\n".join(rows), measured


def describe(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record) -> tuple[str, str]:
    """The README table: each network's three probes over seeds, then the gates, the margins and the reported
    comparisons."""
    settings = settings_for(ctx)
    first = next(iter(runs.values()))
    mean = {arm: float(np.mean(v)) for arm, v in record.per_seed.items()}
    sd = {arm: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for arm, v in record.per_seed.items()}
    test_images = settings["test_subset"] or 10000
    teacher = ("the cached teacher (`" + COMMAND + "`)" if settings["teacher_epochs"] is None
               else f"a teacher trained in the run ({ctx.budget.get('teacher_epochs')} epochs)")
    lines = [f"Fashion-MNIST, garments shrunk to {PLACE} px at a random place in the 28 px frame; {teacher}; "
             f"each student {settings['student_epochs']} epoch over "
             f"{ctx.budget['student_images']:,} unlabelled training images (drawn per seed, batch "
             f"{settings['batch_size']}); probes on frozen features, fitted on {settings['probe_images']:,} labelled "
             f"training images (drawn per seed; {SHOTS}-shot: {SHOTS} per class, mean of {SHOT_DRAWS} draws), scored "
             f"on {test_images:,} test images; mean ± SD over seeds {record.seeds}:", "",
             "| network | training | params (encoder) | kNN top-1 (%) | 10-shot top-1 (%) | linear top-1 (%) "
             "| seconds (training) |", "|---|---|---|---|---|---|---|"]
    for name, (network, training) in NETWORKS.items():
        params = first.details[name]["params"]
        seconds = np.mean([r.details[name]["seconds"] for r in runs.values()])
        ref = " (reference, no learning)" if f"{name}_knn" in spec.references else ""
        cells = " | ".join(f"{mean[f'{name}_{p}']:.2f} ± {sd[f'{name}_{p}']:.2f}" for p in PROBES)
        lines.append(f"| {network}{ref} | {training} | {params:,} | {cells} | {seconds:.0f} |")
    reported, measured = reported_table(spec, record)
    record.details["reported"] = measured
    lines += ["", comparisons_table(spec, record), "", reported, "",
              f"Paper (ImageNet, linear top-1, EfficientNet-B0 student): MoCo-v2 {PAPER['student_moco']}, SEED "
              f"{PAPER['student_seed']} (with the paper's strongest teacher)."]
    summary = "; ".join(f"{SHORT[n]} {mean[n + '_knn']:.2f} / {mean[n + '_fewshot']:.2f} / {mean[n + '_linear']:.2f}"
                        for n in NETWORKS)
    note = (f"Fashion-MNIST placed at random ({PLACE} px in 28); {teacher}; students {settings['student_epochs']} "
            f"epoch over "
            f"{ctx.budget['student_images']} images; seeds {record.seeds}. Mean kNN / 10-shot / linear top-1: "
            f"{summary}. Verdict: {record.verdict}.")
    return "\n".join(lines), note


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--student-images", type=int, default=None,
                   help="unlabelled training images each student sees (1 epoch; default: the scale's)")
    p.add_argument("--teacher", type=Path, default=None,
                   help=f"a MoCo-v2 ResNet-10 w16 teacher checkpoint (slim or full) instead of the cached {CACHE.name}")
    p.add_argument("--teacher-epochs", type=int, default=None,
                   help="train the teacher in the run for this many epochs instead of loading the cached one")


def main(argv: list[str] | None = None):
    return run(SPEC, run_seed, argv, add_arguments=add_arguments, describe=describe,
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
