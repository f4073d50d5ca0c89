"""``make bench-stgt``: what TransMOT's association costs, in one run.

* training: samples/s of one optimiser step under Lightning's ``Trainer.fit`` and in a bare PyTorch loop running
  the same ``training_step`` (the ratio is Lightning's overhead);
* tracking: frames/s of association alone (detections given) on TUD-Stadtmitte (179 frames, up to 10 people)
  for each method, and the graph transformer's cost against the ByteTrack-style baseline;
* scaling: milliseconds of one frame's graph-transformer assignment with K tracklets and K detections,
  K = 10, 50, 200 pedestrian boxes in a 1920 x 1080 frame, for the three ways of running the graph attention:
  ``masked`` (dense matrices, non-edges masked), ``sparse`` (edge lists) and ``dense`` (a complete graph: plain
  attention); the encoder (where the IoU graphs are used) is timed apart from the whole forward pass, whose
  decoder compares every (detection, tracklet) pair and so grows as K² whatever the graph.

Default: the demo's width (D = 64); ``--paper``: D = 1024 (meant for a GPU; everything runs on one when present).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from projects.stgt.__main__ import embedded_sequence
from projects.stgt.data import MotDataModule
from projects.stgt.module import TransMOT
from projects.stgt.nets import GRAPHS, pairwise_iou
from projects.stgt.tracker import Tracker
from shared.bench import (
    GpuStep,
    fit_step_seconds,
    median_seconds,
    optimisation_step,
    parameter_count,
    recipe,
    training_step_seconds,
)
from shared.results import RESULTS_DIR, hardware

ACCELERATOR = "gpu" if torch.cuda.is_available() else "cpu"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build(dim: int, graph: str = "masked") -> TransMOT:
    torch.manual_seed(0)
    return TransMOT(dim=dim, ff=2 * dim, optimizer="adamw", lr=1e-3, graph=graph)


def crowd(k: int, window: int, seed: int = 0) -> tuple[dict, int]:
    """K pedestrians (heights 60-300 px, width 0.41 h) in a 1920 x 1080 frame over ``window`` frames, walking
    about 2 px a frame; the detections are their next positions. Returns model inputs and the number of
    overlapping tracklet pairs (graph edges, self-loops excluded) in the newest frame."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(60, 300, k)
    w = 0.41 * h
    cx, cy = rng.uniform(0, 1920, k), rng.uniform(200, 1080, k)
    v = rng.normal(0, 2, (k, 2))
    steps = np.arange(window + 1)[None, :, None]
    centre = np.stack([cx, cy], -1)[:, None] + v[:, None] * steps  # (K, T + 1, 2)
    size = np.broadcast_to(np.stack([w, h], -1)[:, None], centre.shape)
    boxes = np.concatenate([centre / [1920, 1080], size / [1920, 1080]], -1).astype(np.float32)
    tracks = torch.from_numpy(boxes[None, :, :window])
    dets = torch.from_numpy(boxes[None, :, window])
    iou = pairwise_iou(tracks[0, :, -1])
    edges = int((iou > 0).sum()) - k
    mask = torch.ones(1, k, dtype=torch.bool)
    return {"tracks": tracks, "track_mask": mask, "dets": dets, "det_mask": mask}, edges


def forward_ms(fn, repeats: int = 10) -> float:
    return 1000 * median_seconds(fn, repeats)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper", action="store_true", help="the paper's width D = 1024")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--objects", type=int, nargs="+", default=[10, 50, 200])
    args = p.parse_args(argv)
    dim = 1024 if args.paper else 64
    print(f"TransMOT graph transformer, D = {dim}, T = 5, on {DEVICE}")

    data = MotDataModule(train_sequences=2, val_sequences=1, batch_size=32)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    lightning = fit_step_seconds(build(dim), batch, steps=args.steps, warmup=2, accelerator=ACCELERATOR)
    plain = training_step_seconds(build(dim), batch, args.steps, optimizer=torch.optim.AdamW, device=DEVICE)
    print(f"training step (batch 32): {32 / lightning:.0f} samples/s under Lightning, {32 / plain:.0f} samples/s in "
          f"a bare loop (ratio {lightning / plain:.2f})")

    seq = embedded_sequence("TUD-Stadtmitte", 0)
    model = build(dim).net.to(DEVICE).eval()
    fps = {}
    for method in ("sort", "byte", "stgt", "stgt_nocascade"):
        tracker = Tracker(method, model=model if method.startswith("stgt") else None)
        t = time.perf_counter()
        tracker.run(seq)
        fps[method] = seq.length / (time.perf_counter() - t)
    print("association on TUD-Stadtmitte: " + ", ".join(f"{m} {f:.0f} frames/s" for m, f in fps.items()) +
          f" (STGT + cascade costs ×{fps['byte'] / fps['stgt']:.1f} of ByteTrack-style; the paper's full pipeline "
          "runs at 9.6 frames/s, association + features at 24.5, on a V100 with D = 1024)")

    scaling = {}
    for graph in GRAPHS:
        net = build(dim, graph).net.to(DEVICE).eval()
        for k in args.objects:
            inputs, edges = crowd(k, net.window)
            inputs = {key: v.to(DEVICE) for key, v in inputs.items()}
            enc = forward_ms(lambda net=net, inputs=inputs: net.encode(inputs["tracks"], inputs["track_mask"]))
            full = forward_ms(lambda net=net, inputs=inputs: net.assignment(**inputs))
            scaling.setdefault(graph, {})[k] = {"encoder_ms": enc, "forward_ms": full, "edges": edges}
    base = args.objects[0]
    for graph, rows in scaling.items():
        print(f"{graph:>6}: " + ", ".join(
            f"K={k}: encoder {r['encoder_ms']:.1f} ms (×{r['encoder_ms'] / rows[base]['encoder_ms']:.1f}), "
            f"forward {r['forward_ms']:.1f} ms (×{r['forward_ms'] / rows[base]['forward_ms']:.1f})"
            for k, r in rows.items()))
    print("overlapping tracklet pairs (graph edges) in the newest frame: " +
          ", ".join(f"K={k}: {scaling['masked'][k]['edges']} of {k * (k - 1)}" for k in args.objects))
    top = args.objects[-1]
    enc = {g: scaling[g][top]["encoder_ms"] for g in GRAPHS}
    print(f"K={top}: sparse encoder ×{enc['sparse'] / enc['masked']:.2f} of masked, dense (complete graph) "
          f"×{enc['dense'] / enc['masked']:.2f}")

    out = RESULTS_DIR / "bench" / ("stgt-paper.json" if args.paper else "stgt.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"hardware": hardware(), "dim": dim, "train_samples_per_s": 32 / lightning,
              "plain_samples_per_s": 32 / plain, "lightning_over_plain": lightning / plain,
              "association_fps": fps, "stgt_cost_over_byte": fps["byte"] / fps["stgt"], "scaling": scaling}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one SGD step of the MOT17 recipe's association network (D = 1024, 8 heads, T = 5, 32
    frames per batch) on frames of 50 walking pedestrians (:func:`crowd`; MOT17's busier sequences), each detection
    its tracklet's next box."""
    kwargs, batch = recipe("projects/stgt/configs/stgt_1xb32_mot17.yaml")
    batch, k = batch_size or batch, 50
    torch.manual_seed(0)
    model = TransMOT(**kwargs)
    frames = [crowd(k, model.window, seed=i)[0] for i in range(batch)]
    data = {key: torch.cat([f[key] for f in frames]) for key in frames[0]}
    data.update(det_target=torch.arange(k).repeat(batch, 1), sink_target=torch.zeros(batch, k))
    step = optimisation_step(model, data, device, lambda p: torch.optim.SGD(p, model.hparams.lr))
    return GpuStep(step, batch, "frames", f"TransMOT STGT, D = 1024 (MOT17 recipe), {k} tracklets x {k} detections",
                   parameter_count(model))


if __name__ == "__main__":
    main()
