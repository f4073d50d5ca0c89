"""VALUE's baseline findings rerun on the embedded mini-VALUE: channels (frames + subtitles vs frames only vs
subtitles only) and all-task then single-task training (AT→ST) vs single-task training (ST), every model scored
on the test phase by this repository's scorer into a mini leaderboard.

    python -m projects.value.claim [--seeds 0 1 2] [--out DIR] [--scale cpu|gpu|smoke] [--sweep]

Run by the shared claim protocol (:mod:`shared.claims`). A seed is one repetition of every run below with that
seed (initialisation, dropout, batch order; the same mini-VALUE). Each model is a submission zip of the four mini
tasks (tvr: moment retrieval, yc2r: video retrieval, tvqa: QA, tvc: captioning) scored by
:func:`projects.value.submission.score_submission`; an arm's value on a seed is the mean of the 4 task scores.

* ST: one model per task and per channel setting (frames + subtitles, frames only, subtitles only; StarterCode's
  ``*_video_only`` / ``*_sub_only`` configs), ``st_steps`` steps each: the channel ablation;
* AT: one model on all four tasks (one task per step, StarterCode's ratios tvr 5 : yc2r 2 : tvqa 5 : tvc 5),
  ``at_steps`` steps, frames + subtitles;
* AT→ST: that model fine-tuned per task for ``ft_steps`` steps;
* untrained: the model at its random initialisation, frames + subtitles, scored the same way (the no-learning
  reference row; chance-level retrieval and QA, CIDEr-D of an untrained decoder).

The claim, by the paired rule (margin over seeds above two standard errors): AT→ST beats ST (frames + subtitles),
and frames + subtitles beat frames only and beat subtitles only. Premise (gate): ST with frames + subtitles is
ahead of the untrained model, i.e. the runs learn at all. The defaults give ST and AT→ST the same number of
training steps in all (cpu scale: 4 x 112 = 300 + 4 x 37), so that AT→ST wins only if training on the other tasks
helps; in the paper AT→ST also trains longer than ST (AT 50k steps shared by 11 tasks, then each task's ST
schedule).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import lightning as L
import numpy as np
import torch

from projects.value import inference
from projects.value.data import ValueDataModule
from projects.value.evaluate import table_markdown
from projects.value.module import HeroModule
from projects.value.submission import Report, load_ground_truth, score_submission, write_submission
from projects.value.synthetic import FEATURES
from projects.value.tasks import TASKS
from shared.claims import ClaimContext, ClaimSpec, Comparison, SeedRun, comparisons_table, main_guard, run

MINI_TASKS = ("tvr", "yc2r", "tvqa", "tvc")
CHANNEL_NAMES = {"both": "frames + subtitles", "video": "frames only", "subtitle": "subtitles only"}
ARMS = {"st_both": "ST, frames + subtitles", "st_video": "ST, frames only", "st_subtitle": "ST, subtitles only",
        "at": "AT, frames + subtitles", "at_st": "AT→ST, frames + subtitles",
        "untrained": "untrained model, frames + subtitles"}
# The VALUE paper's test leaderboard entry of its best baseline (HERO, AT->ST, pre-trained + fine-tuned).
PAPER_SCORES = {"tvr": 13.56, "how2r": 3.95, "yc2r": 54.28, "vatex_en_r": 49.09, "tvqa": 74.83, "how2qa": 74.60,
                "violin": 67.18, "vlep": 69.37, "tvc": 48.13, "yc2c": 121.89, "vatex_en_c": 56.54}
PAPER_META = 57.58
TINY_MINI_VALUE = {"tv": {"train": 5, "val": 2, "test": 2}, "yc2": {"train": 4, "val": 2, "test": 2}}

# Per scale: steps, model size and batches. cpu (the committed claim, 3 seeds): about 17 minutes on 2 cores, estimated:
# the one-seed run with 150 / 400 / 50 steps took 467 s, ~400 s of it training steps (make bench-value), so 3 seeds
# need 3/4 of those steps (112 / 300 / 37: still 448 steps in all for ST and for AT->ST) on top of the loading and
# scoring, now shared across the models of a seed and across seeds (see the README). gpu: 4x the cpu steps and a
# 256-d model trained on the GPU, estimated at about 10 minutes, not yet run. smoke: a tiny mini-VALUE, a few steps.
SCALES = {
    "cpu": {"st_steps": 112, "at_steps": 300, "ft_steps": 37, "hidden": 128, "cross_layers": 2, "temporal_layers": 1,
            "heads": 4, "retrieval_batch": 32, "qa_batch": 4, "caption_batch": 16, "mini_sizes": None},
    "gpu": {"st_steps": 448, "at_steps": 1200, "ft_steps": 148, "hidden": 256, "cross_layers": 2,
            "temporal_layers": 1, "heads": 4, "retrieval_batch": 32, "qa_batch": 4, "caption_batch": 16,
            "mini_sizes": None},
    "smoke": {"st_steps": 2, "at_steps": 3, "ft_steps": 1, "hidden": 16, "cross_layers": 1, "temporal_layers": 1,
              "heads": 2, "retrieval_batch": 4, "qa_batch": 2, "caption_batch": 2, "mini_sizes": TINY_MINI_VALUE},
}

SPEC = ClaimSpec(
    paper="value",
    claim="frames + subtitles beat either channel alone, and AT->ST beats single-task training",
    metric="mean task score on mini-VALUE (AveR / accuracy / CIDEr-D), AT→ST / ST (frames + subtitles)",
    method="at_st", baseline="st_both", baseline_name="ST (frames + subtitles)",
    comparisons=[Comparison("at_st", "st_both"), Comparison("st_both", "st_video"),
                 Comparison("st_both", "st_subtitle")],
    gates=[Comparison("st_both", "untrained", label="ST frames + subtitles learns beyond the untrained model")],
    references=["untrained"], arm_names=ARMS,
    paper_value=PAPER_META, paper_baseline=None,
    budget_axis="training steps",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    for name, help_ in (("st-steps", "single-task steps per task (each channel setting)"),
                        ("at-steps", "all-task steps"), ("ft-steps", "AT->ST fine-tuning steps per task"),
                        ("hidden", "model width"), ("cross-layers", None), ("temporal-layers", None),
                        ("heads", None), ("retrieval-batch", None),
                        ("qa-batch", "questions (each read with its 5 answers)"), ("caption-batch", None)):
        p.add_argument(f"--{name}", type=int, default=None,
                       help=(help_ + " " if help_ else "") + "(default: the scale's)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ft-lr", type=float, default=1e-3, help="AT->ST fine-tuning learning rate")
    p.add_argument("--hard-start", type=int, default=10 ** 9, help="hard negatives from this step (default: never)")
    p.add_argument("--drop-svmr", type=float, default=0.0, help="official TVR: 0.8")
    p.add_argument("--lw-st-ed", type=float, default=1.0, help="official TVR: 0.01")
    p.add_argument("--root", help="a mini-VALUE-like release folder (default: generate mini-VALUE)")
    p.add_argument("--cache-dir", help="where mini-VALUE is cached (default: ~/.cache/repro-zoo/value)")


def settings(ctx: ClaimContext) -> dict:
    """The scale's settings, overridden by the paper's own options."""
    a = ctx.args
    return ctx.settings(SCALES) | {"lr": a.lr, "ft_lr": a.ft_lr, "hard_start": a.hard_start, "drop_svmr": a.drop_svmr,
                                   "lw_st_ed": a.lw_st_ed, "root": a.root, "cache_dir": a.cache_dir}


def model_kwargs(s: dict) -> dict:
    return dict(hidden=s["hidden"], cross_layers=s["cross_layers"], temporal_layers=s["temporal_layers"],
                heads=s["heads"], decoder_layers=1, lr=s["lr"], warmup=0.1, min_pred_l=0,
                hard_negative_start=s["hard_start"], hard_pool=8, vr_hard_pool=8, drop_svmr_prob=s["drop_svmr"],
                lw_st_ed=s["lw_st_ed"], eval_batch_size=64)


# What every model of every seed reads unchanged, loaded once per (data, channels): the videos' features and
# tokenized subtitles (VideoStore), the annotations, the tokenizer and the test ground truth. Before the shared
# protocol each of a seed's 22 data modules reloaded them.
_SHARED: dict[tuple, dict] = {}


def data_module(tasks, channels: str, steps: int, seed: int, s: dict) -> ValueDataModule:
    sizes = {"tvr": s["retrieval_batch"], "yc2r": s["retrieval_batch"], "tvqa": s["qa_batch"],
             "tvc": s["caption_batch"]}
    dm = ValueDataModule(root=s["root"], tasks=list(tasks), batch_sizes={t: sizes[t] for t in tasks},
                         features=list(FEATURES), steps_per_epoch=steps, channels=channels,
                         data_cache_dir=s["cache_dir"], mini_sizes=s["mini_sizes"], seed=seed)
    shared = _SHARED.setdefault((str(dm.data_root), channels), {"_stores": {}, "_records_cache": {},
                                                                "_ground_truth": {}})
    shared.setdefault("tokenizer", dm.tokenizer)
    dm.__dict__.update(shared)
    return dm


def fit(tasks, channels: str, steps: int, seed: int, s: dict, gpu: bool = False,
        init: HeroModule | None = None) -> HeroModule:
    """Train a model for ``steps`` steps on ``tasks`` (from ``init``'s weights when given)."""
    L.seed_everything(seed, verbose=False)
    dm = data_module(tasks, channels, steps, seed, s)
    if init is None:
        model = HeroModule(feature_dim=dm.feature_dim, vocab_size=dm.tokenizer.vocab_size, **model_kwargs(s))
    else:
        model = HeroModule(**{**dict(init.hparams), "lr": s["ft_lr"]})
        model.load_state_dict(copy.deepcopy(init.state_dict()))
    if steps > 0:
        trainer = L.Trainer(max_epochs=1, accelerator="gpu" if gpu else "cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, gradient_clip_val=1.0)
        trainer.fit(model, datamodule=dm)
    return model.cpu()  # predictions on the CPU


@torch.no_grad()
def predictions(model: HeroModule, tasks, channels: str, s: dict) -> dict:
    """``{task: predictions}`` of the test phase in the submission formats (what
    :func:`~projects.value.inference.evaluate_task` predicts, without scoring each task a second time: the
    submission is scored once, by :func:`submit`)."""
    dm = data_module(MINI_TASKS, channels, 1, 0, s)
    model.eval()
    bs = model.hparams.eval_batch_size
    out = {}
    for t in tasks:
        data = dm.task_data(t, TASKS[t].splits["test"])
        kind = TASKS[t].kind
        if kind in ("vcmr", "vr"):
            out[t] = inference.predict_retrieval(model, data, bs)
        elif kind == "qa":
            out[t] = inference.predict_choices(model, data, max(1, bs // 4))
        else:
            out[t] = inference.predict_captions(model, data, bs)
    return out


def submit(path: Path, preds: dict, s: dict) -> Report:
    write_submission(path, {"test": preds})
    dm = data_module(MINI_TASKS, "both", 1, 0, s)
    gts = dm.__dict__["_ground_truth"]
    for t in MINI_TASKS:
        if (t, "test") not in gts:
            gts[(t, "test")] = load_ground_truth(TASKS[t], "test", dm.data_root)
    return score_submission(path, "test", dm.data_root, MINI_TASKS, meteor=False, name=path.stem,
                            ground_truth={t: gts[(t, "test")] for t in MINI_TASKS})


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    """Every run of the claim with ``seed``: ST per channel setting, AT, AT→ST and the untrained reference."""
    s = settings(ctx)
    gpu = ctx.scale == "gpu"
    st = ctx.scaled("ST steps per task", s["st_steps"])
    at_steps = ctx.scaled("AT steps", s["at_steps"])
    ft = ctx.scaled("AT→ST steps per task", s["ft_steps"])
    zips = ctx.figures_dir / "value-mini"
    reports: dict[str, Report] = {}
    steps: dict[str, str] = {}
    for channels in CHANNEL_NAMES:
        preds = {}
        for task in MINI_TASKS:
            model = fit([task], channels, st, seed, s, gpu)
            preds.update(predictions(model, [task], channels, s))
        reports[f"st_{channels}"] = submit(zips / f"st-{channels}-seed{seed}.zip", preds, s)
        steps[f"st_{channels}"] = f"{st} per task"
    at = fit(MINI_TASKS, "both", at_steps, seed, s, gpu)
    reports["at"] = submit(zips / f"at-both-seed{seed}.zip", predictions(at, MINI_TASKS, "both", s), s)
    steps["at"] = f"{at_steps} shared"
    preds = {}
    for task in MINI_TASKS:
        model = fit([task], "both", ft, seed, s, gpu, init=at)
        preds.update(predictions(model, [task], "both", s))
    reports["at_st"] = submit(zips / f"at-st-both-seed{seed}.zip", preds, s)
    steps["at_st"] = f"{at_steps} shared + {ft} per task"
    untrained = fit(MINI_TASKS, "both", 0, seed, s)
    reports["untrained"] = submit(zips / f"untrained-seed{seed}.zip", predictions(untrained, MINI_TASKS, "both", s), s)
    steps["untrained"] = "0"
    return SeedRun(values={arm: r.mean_of_scored for arm, r in reports.items()},
                   details={"scores": {a: r.scores for a, r in reports.items()},
                            "metrics": {a: r.metrics for a, r in reports.items()}, "steps": steps})


def describe(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record) -> tuple[str, str]:
    """The README table (each model's task scores, mean ± SD over seeds, and the paper's entry), the paired tests,
    and the scorer's own leaderboard of every submission (``value-mini/leaderboard.md`` beside the record)."""
    seeds = record.seeds
    first = next(iter(runs.values()))

    def cell(values: list[float]) -> str:
        sd = f"{np.std(values, ddof=1):.2f}" if len(values) > 1 else "–"
        return f"{np.mean(values):.2f} ± {sd}"

    lines = [f"mini-VALUE test phase, seeds {seeds}: mean ± SD over seeds; mean = plain mean of the 4 task scores "
             "(per seed in brackets).", "",
             "| model | training steps | " + " | ".join(TASKS[t].title for t in MINI_TASKS) + " | mean |",
             "|---|---|" + "---|" * (len(MINI_TASKS) + 1)]
    for arm in ARMS:
        ref = " (reference, no learning)" if arm in spec.references else ""
        lines.append(f"| {spec.label(arm)}{ref} | {first.details['steps'][arm]} | "
                     + " | ".join(cell([r.details["scores"][arm][t] for r in runs.values()]) for t in MINI_TASKS)
                     + f" | {cell(record.per_seed[arm])} ({', '.join(f'{v:.2f}' for v in record.per_seed[arm])}) |")
    lines.append("| HERO AT→ST (PT+FT), VALUE test leaderboard | 50k AT + per-task ST | "
                 + " | ".join(f"{PAPER_SCORES[t]:.2f}" for t in MINI_TASKS) + f" | {PAPER_META:.2f} (Meta-Ave of 11 "
                 "tasks) |")
    lines += ["", comparisons_table(spec, record)]
    reports = [Report(f"{spec.label(arm)}, seed {seed}", "test", r.details["metrics"][arm], r.details["scores"][arm],
                      []) for seed, r in runs.items() for arm in ARMS]
    board = table_markdown(reports)
    (ctx.figures_dir / "value-mini").mkdir(parents=True, exist_ok=True)
    (ctx.figures_dir / "value-mini" / "leaderboard.md").write_text(board)
    record.details["leaderboard_md"] = board
    mean = {arm: float(np.mean(v)) for arm, v in record.per_seed.items()}
    note = (f"mini-VALUE test phase, seeds {seeds}, mean of the 4 task scores: "
            + ", ".join(f"{spec.label(a)} {v:.2f}" for a, v in mean.items()) + ".")
    return "\n".join(lines) + "\n", note


def main(argv: list[str] | None = None):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return run(SPEC, run_seed, argv, add_arguments=add_arguments, describe=describe,
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
