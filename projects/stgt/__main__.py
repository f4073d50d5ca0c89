"""``python -m projects.stgt fit -c projects/stgt/configs/demo.yaml`` trains the graph transformer (LightningCLI);
``python -m projects.stgt track --seq DIR --out FILE [--ckpt CKPT] [--method stgt]`` tracks one sequence.

``track`` reads a MOTChallenge sequence folder (seqinfo.ini + det/det.txt) or one of the embedded TUD sequences
by name (``--seq TUD-Campus``; detections simulated from its ground truth with ``--sim-seed``) and writes a
MOTChallenge result file; score it with ``python -m projects.stgt.evaluate``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from projects.stgt.module import TransMOT
from shared.checkpoints import read_checkpoint
from shared.cli import CHECKPOINT_TAG, cli_main
from shared.errors import DatasetNotFoundError, UserFacingError, user_message

EMBEDDED = {"TUD-Campus": 71, "TUD-Stadtmitte": 179}  # frames; 640 x 480 at 25 fps (MOT15)


def embedded_sequence(name: str, sim_seed: int = 0, embedding_dim: int = 0):
    """A TUD sequence of motmetrics with detections (and, with ``embedding_dim``, simulated appearance
    embeddings) from :class:`~projects.stgt.simulate.DetectorSimulator`."""
    from projects.stgt.mot import Sequence, motmetrics_data, read_gt
    from projects.stgt.simulate import DetectorSimulator

    gt = read_gt(motmetrics_data(name) / "gt.txt")
    return DetectorSimulator(embedding_dim=embedding_dim)(Sequence(name, 25.0, EMBEDDED[name], 640, 480, gt=gt),
                                                          sim_seed)


def load_model(ckpt: str | None, method: str):
    if not method.startswith("stgt"):
        return None
    if ckpt is None:
        raise UserFacingError(f"--method {method} needs a trained graph transformer: pass --ckpt CKPT (train one "
                              "with `python -m projects.stgt fit -c projects/stgt/configs/demo.yaml`), or track "
                              "with a baseline: --method byte or --method sort")
    hint = ("Give the last.ckpt that `python -m projects.stgt fit` wrote under logs/stgt/<run>/checkpoints/ "
            "(logs/stgt/latest/checkpoints/last.ckpt is the newest).")
    if not Path(ckpt).is_file():
        raise DatasetNotFoundError(f"--ckpt {ckpt} not found. {hint}")
    checkpoint = read_checkpoint(ckpt, "--ckpt", hint=hint)
    paper = (checkpoint.get(CHECKPOINT_TAG) or {}).get("paper", "stgt")
    if paper != "stgt" or "state_dict" not in checkpoint:
        raise UserFacingError(f"--ckpt {ckpt} is not a checkpoint of `python -m projects.stgt fit`"
                              f"{f' (it was written by projects.{paper})' if paper != 'stgt' else ''}. {hint}")
    try:
        return TransMOT.load_from_checkpoint(ckpt, map_location="cpu").net
    except (TypeError, KeyError, RuntimeError) as err:  # another model's options or weights
        raise UserFacingError(f"--ckpt {ckpt} does not hold the graph transformer of projects.stgt "
                              f"({' '.join(str(err).split())[:200]}). {hint}") from None


def track_main(argv: list[str]) -> Path:
    from projects.stgt.mot import load_sequence, write_tracks
    from projects.stgt.tracker import METHODS, Tracker, TrackerConfig

    parser = argparse.ArgumentParser(prog="python -m projects.stgt track", description=__doc__.split("\n")[0])
    parser.add_argument("--seq", required=True, help="a MOTChallenge sequence folder, or TUD-Campus / TUD-Stadtmitte")
    parser.add_argument("--out", required=True, help="the result file to write (MOTChallenge layout)")
    parser.add_argument("--method", default="stgt", choices=METHODS)
    parser.add_argument("--ckpt", help="a checkpoint of `python -m projects.stgt fit` (needed by stgt*)")
    parser.add_argument("--det", help="a detection file replacing the sequence's det/det.txt")
    parser.add_argument("--sim-seed", type=int, default=0, help="detector-simulator seed of embedded sequences")
    parser.add_argument("--max-age", type=int, default=TrackerConfig.max_age, help="frames a lost track lives")
    args = parser.parse_args(argv)
    model = load_model(args.ckpt, args.method)
    width = model.appearance_dim if model is not None else 0
    if args.seq in EMBEDDED and args.det:
        raise UserFacingError(f"--det {args.det} cannot replace the detections of the embedded {args.seq}: they are "
                              "simulated from its ground truth (--sim-seed); give --det with a sequence folder")
    seq = embedded_sequence(args.seq, args.sim_seed, width) if args.seq in EMBEDDED else \
        load_sequence(args.seq, args.det)
    if not len(seq.det):
        raise DatasetNotFoundError(f"{args.seq}: no detections to track (det/det.txt is missing or empty); pass "
                                   "--det FILE")
    found = 0 if seq.det_feat is None else seq.det_feat.shape[1]
    if model is not None and found != width:
        source = args.det or f"{args.seq}/det/det.txt"
        raise UserFacingError(f"{source}: the detections carry {found} embedding columns but the checkpoint's "
                              f"model takes {width} (model.appearance_dim); track with a matching detection file "
                              "(--det) or checkpoint")
    if model is None:
        seq.det_feat = None  # the baselines use boxes only
    tracker = Tracker(args.method, TrackerConfig(max_age=args.max_age), model=model)
    start = time.perf_counter()
    rows = tracker.run(seq)
    seconds = time.perf_counter() - start
    out = write_tracks(args.out, rows)
    print(f"{seq.name}: {seq.length} frames, {len(set(rows[:, 1].astype(int)))} tracks, "
          f"{seq.length / max(seconds, 1e-9):.1f} frames/s ({args.method}) -> {out}")
    return out


def user_errors_exit(fn, *args):
    """``fn(*args)``, with a :class:`UserFacingError` printed as one line and exit status 2."""
    try:
        return fn(*args)
    except UserFacingError as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        raise SystemExit(2) from None


def main(args=None, run: bool = True):
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["track"]:
        return user_errors_exit(track_main, argv[1:])
    if argv[:1] in (["-h"], ["--help"]):  # the Lightning CLI's help below knows nothing of `track`
        print("python -m projects.stgt track --help   tracks a sequence with a trained model (or a baseline); the "
              "Lightning subcommands (fit / validate / test / predict) follow.\n")
    return cli_main(TransMOT, run_name="stgt", args=args, run=run)


if __name__ == "__main__":
    main()
