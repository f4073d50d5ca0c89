"""The claim's cached teacher, trained once by a recorded command and stored small:

    OMP_NUM_THREADS=1 python -m projects.seed.teacher [--epochs N] [--out PATH]

runs ``configs/mocov2_r10w16_1xb256_fmnist.yaml`` through the CLI (seed 0, one thread; 702 steps, about 30 minutes
on a busy 2-core machine) and writes the MoCo-v2 query encoder and head in half precision with the run's
hyper-parameters (:func:`projects.seed.module.slim_teacher`, ~0.7 MB) to ``cache/teacher_mocov2_r10w16_fmnist.pt``,
with its kNN-monitor accuracy per epoch. The claim (``python -m projects.seed.claim``) loads that file for every
seed; the teacher is fixed, the students and probes vary with the seed.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from projects.seed.__main__ import main as cli
from projects.seed.module import slim_teacher
from shared.checkpoints import read_checkpoint

HERE = Path(__file__).parent
CONFIG = HERE / "configs" / "mocov2_r10w16_1xb256_fmnist.yaml"
CACHE = HERE / "cache" / "teacher_mocov2_r10w16_fmnist.pt"
COMMAND = "OMP_NUM_THREADS=1 python -m projects.seed.teacher"


def export(checkpoint_path: Path, out: Path, provenance: dict) -> Path:
    """Write the slim teacher of a MoCo-v2 Lightning checkpoint to ``out`` (with ``provenance``: command, monitor)."""
    slim = slim_teacher(read_checkpoint(checkpoint_path, "teacher checkpoint", weights_only=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim | {"provenance": provenance}, out)
    return out


def knn_per_epoch(metrics_csv: Path) -> list[float]:
    """The kNN monitor's top-1 after each epoch, read from the run's metrics.csv."""
    with open(metrics_csv) as f:
        return [round(100 * float(r["val/knn_acc1"]), 2) for r in csv.DictReader(f) if r.get("val/knn_acc1")]


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(prog="python -m projects.seed.teacher", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--root", type=Path, default=Path("logs/seed/teacher-cache"), help="where the run's logs go")
    p.add_argument("--out", type=Path, default=CACHE, help=f"the slim teacher file (default {CACHE})")
    p.add_argument("--from-checkpoint", type=Path, default=None,
                   help="export this finished run's last.ckpt instead of training (same config)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    if args.from_checkpoint is None:
        extra = [f"--trainer.max_epochs={args.epochs}"] if args.epochs else []
        run = cli(args=["fit", f"--config={CONFIG}", "--seed_everything=0", f"--trainer.default_root_dir={args.root}",
                        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", *extra])
        checkpoint = Path(run.trainer.checkpoint_callback.last_model_path)
        metrics = Path(run.trainer.logger.log_dir) / "metrics.csv"
    else:
        checkpoint = args.from_checkpoint
        metrics = checkpoint.parent.parent / "metrics.csv"
    provenance = {"command": COMMAND, "config": CONFIG.name, "seed": 0, "threads": torch.get_num_threads(),
                  "knn_monitor_top1_per_epoch": knn_per_epoch(metrics) if metrics.is_file() else [],
                  "seconds": round(time.perf_counter() - start)}
    out = export(checkpoint, args.out, provenance)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {provenance}")
    return out


if __name__ == "__main__":
    main()
