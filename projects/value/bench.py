"""``make bench-value``: what the VALUE toolkit and its baseline cost, in one run.

* the scorer: seconds to validate and score a full-size fake submission (20k moment retrieval queries x 100
  predictions, as TVR's test split, against a 2,179-video corpus), and how that grows with the number of queries
  (5k, 10k, 20k: linear expected);
* training: clips (videos) per second of one demo training step under Lightning's ``Trainer.fit`` and in a bare
  PyTorch loop doing the same work (:func:`paired_step_seconds`: same ``training_step``, optimiser, schedule and
  random draws, steps interleaved), per task kind; the ratio of the two is Lightning's overhead;
* scaling with video length: forward time of the encoder (cross-modal + temporal transformers) at 25, 50 and 100
  frames (StarterCode's maximum, 150 s), demo size and paper size (hidden 768, 6 + 3 layers).

Writes ``results/bench/value.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch

from projects.value.data import ValueDataModule
from projects.value.module import HeroModule
from projects.value.submission import score_submission, write_submission
from projects.value.tasks import TASKS
from shared.bench import (
    GpuStep,
    median_seconds,
    optimisation_step,
    parameter_count,
    recipe,
    sync,
)
from shared.results import RESULTS_DIR, hardware

DEMO = dict(hidden=128, cross_layers=2, temporal_layers=1, heads=4, decoder_layers=1, min_pred_l=0)
PAPER = dict(hidden=768, cross_layers=6, temporal_layers=3, heads=12, decoder_layers=2)


def fake_vcmr(root: Path, queries: int, videos: int = 2179, seed: int = 0) -> Path:
    """Ground truth for ``queries`` TVR-like queries over ``videos`` videos, and a submission of 100 ranked
    moments per query (a tenth of them right), under ``root``."""
    rng = np.random.default_rng(seed)
    ann = root / "ann" / "tvr"
    ann.mkdir(parents=True, exist_ok=True)
    dur = rng.uniform(30, 90, videos).round(2)
    (ann / "tvr_video2dur_idx.json").write_text(json.dumps({"test": {f"v{i}": [float(dur[i]), i]
                                                                     for i in range(videos)}}))
    vid = rng.integers(0, videos, queries)
    st = (rng.uniform(0, 0.7, queries) * dur[vid]).round(2)
    ed = np.minimum(st + rng.uniform(2, 20, queries), dur[vid]).round(2)
    with open(ann / "tvr_test_gt.jsonl", "w") as f:
        for q in range(queries):
            f.write(json.dumps({"vid_name": f"v{vid[q]}", "duration": float(dur[vid[q]]), "ts": [float(st[q]),
                                float(ed[q])], "desc": "a query", "desc_id": q}) + "\n")
    preds = []
    for q in range(queries):
        v = rng.integers(0, videos, 100)
        s = rng.uniform(0, 60, 100).round(2)
        moments = [[int(v[k]), float(s[k]), float(s[k] + 5), float(1 - k / 100)] for k in range(100)]
        if q % 10 == 0:
            moments[int(rng.integers(0, 10))] = [int(vid[q]), float(st[q]), float(ed[q]), 1.0]
        preds.append({"desc_id": q, "predictions": moments})
    return write_submission(root / "submission.zip", {"test": {"tvr": {"VCMR": preds}}})


def bench_scorer(sizes: list[int]) -> dict:
    out = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = fake_vcmr(Path(tmp), n)
            t = time.perf_counter()
            report = score_submission(path, "test", tmp, ["tvr"], meteor=False)
            out[n] = time.perf_counter() - t
            print(f"scorer: {n} TVR queries x 100 moments validated and scored in {out[n]:.1f} s "
                  f"(R@10 at IoU 0.7 {report.metrics['tvr']['0.7_r10']:.2f})", flush=True)
    return out


class _Interleave(L.Callback):
    """Runs one bare-loop step per Lightning step, before it on even steps and after it on odd ones, seeding both
    alike, and times each side (the bare step's time is left out of Lightning's)."""

    def __init__(self, plain_step: Callable[[int], torch.Tensor]):
        self.plain_step = plain_step
        self.lightning: list[float] = []
        self.plain: list[float] = []
        self.losses: dict[str, list[float]] = {"lightning": [], "plain": []}
        self._start: float | None = None
        self._excluded = 0.0

    def _plain(self, step: int) -> float:
        torch.manual_seed(step)
        sync()
        t = time.perf_counter()
        loss = self.plain_step(step)
        sync()
        self.plain.append(time.perf_counter() - t)
        self.losses["plain"].append(float(loss))
        return self.plain[-1]

    def _stop(self) -> None:
        if self._start is not None:
            sync()
            self.lightning.append(time.perf_counter() - self._start - self._excluded)

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        self._stop()
        if batch_idx % 2 == 0:
            self._plain(batch_idx)
        torch.manual_seed(batch_idx)
        self._excluded = 0.0
        sync()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        t = time.perf_counter()
        self.losses["lightning"].append(float(outputs["loss"]))  # the bare loop reads its loss untimed too
        self._excluded += time.perf_counter() - t
        if batch_idx % 2 == 1:
            self._excluded += self._plain(batch_idx)

    def on_train_end(self, trainer, module) -> None:
        self._stop()


def paired_step_seconds(make: Callable[[], HeroModule], batch: dict, steps: int, warmup: int = 2) -> dict:
    """One training step of ``make()`` under ``Trainer.fit`` (no logger, checkpoints, progress bar or validation)
    against a bare loop doing the same work: an identically seeded second model, its own ``training_step``
    (logging off), the module's optimiser and learning-rate schedule (:meth:`HeroModule.optimizer_config` over the
    same step count), ``zero_grad`` -> backward -> step -> schedule step, and the same random draws per step
    (dropout, TVR's span-loss draw). The two loops' steps alternate, so that both are timed under the same load of
    a shared machine: ``ratio`` is the median of the per-step ratios Lightning / bare, ``ratio_iqr`` their
    quartiles; ``losses`` are both loops' per-step losses (equal when they do the same work)."""
    total = warmup + steps
    torch.manual_seed(0)
    lightning = make()
    torch.manual_seed(0)
    plain = make().train()
    plain.log = lambda *a, **k: None
    config = plain.optimizer_config(total)
    opt, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]

    def plain_step(step: int) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = plain.training_step(batch, step)
        loss.backward()
        opt.step()
        schedule.step()
        return loss.detach()

    timer = _Interleave(plain_step)
    loader = torch.utils.data.DataLoader([batch] * total, batch_size=None)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                        num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(lightning, loader)
    pairs = list(zip(timer.lightning[warmup:], timer.plain[warmup:], strict=True))
    ratios = [a / b for a, b in pairs]
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    return {"lightning_s": statistics.median(a for a, _ in pairs), "plain_s": statistics.median(b for _, b in pairs),
            "ratio": statistics.median(ratios), "ratio_iqr": [quartiles[0], quartiles[2]], "losses": timer.losses}


def bench_training(steps: int) -> dict:
    dm = ValueDataModule(tasks=["tvr", "yc2r", "tvqa", "tvc"], batch_sizes={"tvr": 32, "yc2r": 32, "tvqa": 4,
                                                                            "tvc": 16})
    out = {}
    for task in ("tvr", "tvqa", "tvc"):
        data = dm.task_data(task, "train")
        batch = data.batch(range(dm.hparams.batch_sizes[task]))
        clips = dm.hparams.batch_sizes[task]
        make = lambda: HeroModule(feature_dim=dm.feature_dim, vocab_size=dm.tokenizer.vocab_size, **DEMO)  # noqa: E731
        r = paired_step_seconds(make, batch, steps, warmup=2)
        out[task] = {"clips_per_s_lightning": clips / r["lightning_s"], "clips_per_s_plain": clips / r["plain_s"],
                     "ratio": r["ratio"], "ratio_iqr": r["ratio_iqr"], "steps": steps}
        print(f"training {TASKS[task].title} (batch {clips}{', x5 answers' if task == 'tvqa' else ''}): "
              f"{out[task]['clips_per_s_lightning']:.1f} clips/s under Lightning, "
              f"{out[task]['clips_per_s_plain']:.1f} in a bare loop (ratio {r['ratio']:.2f}, per-step quartiles "
              f"{r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f})", flush=True)
    return out


def bench_frames(frames: list[int], feature_dim: int = 4352, vocab: int = 50272) -> dict:
    out = {}
    for name, size in (("demo", DEMO), ("paper", PAPER)):
        model = HeroModule(feature_dim=feature_dim, vocab_size=vocab, **size).eval()
        out[name] = {}
        for t in frames:
            n_clips = max(1, t // 3)  # a subtitle sentence every ~3 frames (4.5 s)
            batch = {"frames": torch.randn(1, t, feature_dim), "frame_mask": torch.ones(1, t, dtype=torch.bool),
                     "clip_tokens": torch.randint(1, vocab, (n_clips, 16)),
                     "clip_frames": torch.arange(n_clips * 3).view(n_clips, 3).clamp(max=t - 1),
                     "clip_video": torch.zeros(n_clips, dtype=torch.long)}
            out[name][t] = median_seconds(lambda b=batch, m=model: m.encode(b), repeats=5)
        base = out[name][frames[0]]
        print(f"encoder forward, {name} size: " + ", ".join(f"{t} frames {s * 1e3:.0f} ms (x{s / base:.1f})"
                                                            for t, s in out[name].items()), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, nargs="+", default=[5000, 10000, 20000])
    p.add_argument("--frames", type=int, nargs="+", default=[25, 50, 100])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "bench" / "value.json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    scorer = bench_scorer(args.queries)
    q = sorted(scorer)
    print(f"scorer cost x{scorer[q[-1]] / scorer[q[0]]:.1f} for x{q[-1] / q[0]:.0f} queries")
    training = bench_training(args.steps)
    frames = bench_frames(args.frames)
    result = {"hardware": hardware(), "scorer_seconds": scorer, "training": training, "encoder_seconds": frames}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")
    return result


def tvr_batch(queries: int, frames: int = 50, feature_dim: int = 4352, vocab: int = 50265) -> dict:
    """A random TVR training batch of the release's shapes: ``queries`` queries of 20 tokens, each with its own video
    of ``frames`` 1.5 s frames (50: TVR's clips last 60-90 s) of ResNet + SlowFast features, a 16-token subtitle
    sentence every 3 frames."""
    n = frames // 3
    clip_frames = torch.arange(queries)[:, None, None] * frames + torch.arange(3 * n).view(n, 3)
    start = torch.randint(0, frames - 16, (queries,))
    return {"task": "tvr", "frames": torch.randn(queries, frames, feature_dim),
            "frame_mask": torch.ones(queries, frames, dtype=torch.bool),
            "clip_tokens": torch.randint(1, vocab, (queries * n, 16)), "clip_frames": clip_frames.view(-1, 3),
            "clip_video": torch.arange(queries).repeat_interleave(n), "query": torch.randint(1, vocab, (queries, 20)),
            "video_id": torch.arange(queries), "start": start, "end": start + torch.randint(2, 16, (queries,))}


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one AdamW step of the TVR recipe's HERO (hidden 768, 6 cross-modal + 3 temporal layers,
    RoBERTa's 50,265-token vocabulary, 4352-d features, 32 queries per GPU) on a random batch (:func:`tvr_batch`):
    moment retrieval's ranking losses and, on a fifth of the steps, its span loss (as the recipe)."""
    kwargs, batch = recipe("projects/value/configs/hero_8xb32_tvr.yaml")
    batch = batch_size or batch
    torch.manual_seed(0)
    model = HeroModule(feature_dim=4352, vocab_size=50265, **kwargs)
    step = optimisation_step(model, tvr_batch(batch), device,
                             lambda p: torch.optim.AdamW(p, model.hparams.lr, weight_decay=model.hparams.weight_decay))
    return GpuStep(step, batch, "clips", "HERO, hidden 768, 6 + 3 layers (TVR recipe)", parameter_count(model))


if __name__ == "__main__":
    main()
