"""Track people in a real video with OpenCV's built-in HOG people detector and draw ids and trails.

``python -m projects.stgt.video [--video vtest.avi] [--ckpt CKPT] [--method stgt] [--frames 300]
[--gif docs/vtest.gif] [--still docs/vtest.png] [--mp4 out/vtest.mp4] [--det-out out/vtest_det.txt]``

The default video is ``vtest.avi`` of Debian's ``opencv-doc`` (795 frames, 768 x 576, 10 fps, pedestrians on a
square; no labels). Detections: ``cv2.HOGDescriptor`` with the default people SVM (Dalal & Triggs) on frames
enlarged twice, window stride 8, scale step 1.05, hit threshold -0.5 (to keep the weak detections a two-stage
association uses); the SVM margin ``w`` becomes a score ``σ(2 w)`` (``w = 0`` → 0.5). The tracker is
:class:`~projects.stgt.tracker.Tracker`.
"""

from __future__ import annotations

import argparse
import colorsys
import os
import time
from pathlib import Path

import numpy as np

from projects.stgt.mot import Sequence, write_tracks
from shared.errors import DatasetNotFoundError, UserFacingError

VTEST = Path(os.environ.get("REPRO_ZOO_VTEST", "/usr/share/doc/opencv-doc/examples/data/vtest.avi"))


def hog_detections(video: Path, frames: int, hit_threshold: float = -0.5, upscale: float = 2.0
                   ) -> tuple[Sequence, list[np.ndarray]]:
    """The first ``frames`` frames of ``video`` (BGR arrays) and their HOG detections as a :class:`Sequence`.

    The frames are enlarged ``upscale`` times before detection (vtest's people are 60-100 pixels tall, below
    the detector's 64 x 128 window); each window's box is shrunk to the person inside it (the window has
    about 1/4 margin at the sides and 1/8 above and below)."""
    import cv2

    if not video.is_file():
        raise DatasetNotFoundError(f"{video} not found: install the Debian package opencv-doc (`make data`) or set "
                                   "REPRO_ZOO_VTEST / --video to a video file")
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    images, rows = [], []
    while len(images) < frames:
        ok, image = cap.read()
        if not ok:
            break
        images.append(image)
        big = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
        boxes, weights = hog.detectMultiScale(big, hitThreshold=hit_threshold, winStride=(8, 8), padding=(8, 8),
                                              scale=1.05)
        for (x, y, w, h), margin in zip(np.asarray(boxes).reshape(-1, 4) / upscale, np.asarray(weights).ravel(),
                                        strict=True):
            rows.append((len(images), x + w / 4, y + h / 8, w / 2, h * 3 / 4, 1 / (1 + np.exp(-2 * margin))))
    cap.release()
    if not images:
        raise DatasetNotFoundError(f"{video}: OpenCV could not read a frame from it")
    height, width = images[0].shape[:2]
    seq = Sequence(name=video.stem, frame_rate=fps, length=len(images), width=width, height=height,
                   det=np.asarray(rows, dtype=np.float64).reshape(-1, 6))
    return seq, images


def colour(track_id: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(255 * b), int(255 * g), int(255 * r)  # BGR


def draw(images: list[np.ndarray], rows: np.ndarray, trail: int = 20) -> list[np.ndarray]:
    """Frames with each track's box, id and the trail of its last ``trail`` bottom-centres."""
    import cv2

    out, history = [], {}
    for f, image in enumerate(images, start=1):
        canvas = image.copy()
        for _, tid, x, y, w, h, _ in rows[rows[:, 0] == f]:
            tid = int(tid)
            pts = history.setdefault(tid, [])
            pts.append((int(x + w / 2), int(y + h)))
            del pts[:-trail]
            c = colour(tid)
            cv2.polylines(canvas, [np.array(pts, dtype=np.int32)], False, c, 2)
            cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), c, 2)
            cv2.putText(canvas, str(tid), (int(x), int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.6, c, 2)
        cv2.putText(canvas, f"frame {f}", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        out.append(canvas)
    return out


def track_video(video: str | Path = VTEST, frames: int = 300, method: str = "byte", model=None,
                still: str | None = None, still_frame: int = 120, gif: str | None = None, gif_step: int = 2,
                gif_width: int = 384, mp4: str | None = None, det_out: str | None = None,
                out: str | None = None) -> dict:
    """HOG detections on ``video``, tracked with ``method`` (``model``: an STGT for ``stgt*``); writes what is
    asked for and returns frame and track counts and speeds."""
    import cv2
    from PIL import Image

    from projects.stgt.tracker import Tracker

    start = time.perf_counter()
    seq, images = hog_detections(Path(video), frames)
    det_seconds = time.perf_counter() - start
    start = time.perf_counter()
    rows = Tracker(method, model=model).run(seq)
    track_seconds = time.perf_counter() - start
    annotated = draw(images, rows)
    if out:
        write_tracks(out, rows)
    if det_out:
        Path(det_out).parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(det_out, np.column_stack([seq.det[:, 0], -np.ones(len(seq.det)), seq.det[:, 1:],
                                             -np.ones((len(seq.det), 3))]), fmt="%g", delimiter=",")
    if still:
        Path(still).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(still, annotated[min(still_frame, len(annotated)) - 1])
    if gif:
        Path(gif).parent.mkdir(parents=True, exist_ok=True)
        scale = gif_width / seq.width
        small = [Image.fromarray(cv2.cvtColor(cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA),
                                              cv2.COLOR_BGR2RGB)) for f in annotated[::gif_step]]
        small[0].save(gif, save_all=True, append_images=small[1:], optimize=True, loop=0,
                      duration=int(1000 * gif_step / seq.frame_rate))
    if mp4:
        Path(mp4).parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(mp4, cv2.VideoWriter_fourcc(*"mp4v"), seq.frame_rate, (seq.width, seq.height))
        for f in annotated:
            writer.write(f)
        writer.release()
    stats = {"frames": seq.length, "detections": len(seq.det), "tracks": len(set(rows[:, 1].astype(int))),
             "hog_fps": seq.length / det_seconds, "tracker_fps": seq.length / max(track_seconds, 1e-9)}
    print(f"{video}: {stats['frames']} frames, {stats['detections']} HOG detections, {stats['tracks']} tracks; "
          f"HOG {stats['hog_fps']:.1f} frames/s, {method} association {stats['tracker_fps']:.0f} frames/s")
    return stats


def main(argv: list[str] | None = None) -> dict:
    from projects.stgt.__main__ import user_errors_exit
    from projects.stgt.tracker import METHODS

    parser = argparse.ArgumentParser(prog="python -m projects.stgt.video", description=__doc__.split("\n")[0])
    parser.add_argument("--video", default=str(VTEST))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--method", default="byte", choices=METHODS)
    parser.add_argument("--ckpt", help="a trained graph transformer (needed by stgt*)")
    parser.add_argument("--gif", help="write an animated GIF (every --gif-step-th frame, --gif-width pixels wide)")
    parser.add_argument("--gif-step", type=int, default=2)
    parser.add_argument("--gif-width", type=int, default=384)
    parser.add_argument("--still", help="write one annotated frame (--still-frame) as PNG")
    parser.add_argument("--still-frame", type=int, default=120)
    parser.add_argument("--mp4", help="write the annotated video")
    parser.add_argument("--det-out", help="write the HOG detections as a MOTChallenge det.txt")
    parser.add_argument("--out", help="write the tracks as a MOTChallenge result file")
    args = parser.parse_args(argv)
    return user_errors_exit(_run, args)


def _run(args) -> dict:
    from projects.stgt.__main__ import load_model

    model = load_model(args.ckpt, args.method)
    if model is not None and model.appearance_dim:
        raise UserFacingError(f"--ckpt {args.ckpt}: the model takes {model.appearance_dim}-wide appearance embeddings "
                              "(model.appearance_dim), which HOG boxes do not have; use a boxes-only checkpoint")
    return track_video(args.video, args.frames, args.method, model, args.still, args.still_frame, args.gif,
                       args.gif_step, args.gif_width, args.mp4, args.det_out, args.out)


if __name__ == "__main__":
    main()
