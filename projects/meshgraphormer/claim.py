"""``make reproduce-meshgraphormer``: the paper's graph-convolution ablation on the embedded anny hands.

The same Mesh Graphormer (the demo's widths) is trained twice on the same rendered hands with the same seed and
steps: with the graph residual blocks in the last encoder block (the paper's model) and without them (a plain
transformer encoder). Both are scored on the held-out hands as FreiHAND is: PA-MPJPE on the joints regressed
from the full mesh, PA-MPVPE, and F-scores at 5 and 15 mm on the Procrustes-aligned mesh; MPJPE / MPVE
(root-centred, not aligned) for information. The hand set is rendered (or read from the cache) once per claim;
one seed is one full repetition: both models trained with that seed (initialisation, batch order, pixel noise).

Run by the shared protocol (:mod:`shared.claims`): the graph model against the no-graph model on PA-MPVPE and on
PA-MPJPE (lower is better), each paired over seeds, margin > 2 standard errors. Premise gates (the previous rule's
premise): each model beats the Procrustes-aligned template (no image used; the no-learning reference rows) on
PA-MPVPE and on F@5 by the same rule. The per-test-hand paired differences are kept as extra detail.

Saves ``docs/hands.png`` (first seed only): input, predicted mesh overlaid with the predicted weak-perspective
camera, ground truth.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from projects.meshgraphormer import metrics
from projects.meshgraphormer.data import HandSet, MeshDataModule, denormalise
from projects.meshgraphormer.module import MeshGraphormerModule
from projects.meshgraphormer.render import render_mesh
from projects.meshgraphormer.synthetic import HandSetSpec, load_or_generate
from shared.claims import ClaimContext, ClaimSpec, Comparison, SeedRun, comparisons_table, main_guard, run
from shared.results import ClaimRecord

HERE = Path(__file__).parent
PICTURE_NAME = "hands.png"
VARIANTS = {"graphormer": [2], "no_graph": []}
NAMES = {"graphormer": "Mesh Graphormer (graph residual blocks in block 3)",
         "no_graph": "same encoder without graph residual blocks",
         "template": "template, Procrustes-aligned (no image)"}
# The paper's FreiHAND test row (Table 3; official CodaLab evaluation, with test-time augmentation).
PAPER_FREIHAND = {"pa_mpjpe": 5.9, "pa_mpvpe": 6.0, "f5": 0.764, "f15": 0.986}
KEYS = ("pa_mpjpe", "pa_mpvpe", "f5", "f15", "mpjpe", "mpve")
ARM_METRICS = ("pa_mpvpe", "pa_mpjpe", "f5")
METRIC_NAMES = {"pa_mpvpe": "PA-MPVPE (mm)", "pa_mpjpe": "PA-MPJPE (mm)", "f5": "F@5 mm"}
ARMS = {f"{model}_{m}": f"{short} {METRIC_NAMES[m]}" for m in ARM_METRICS
        for model, short in (("graphormer", "graph"), ("no_graph", "no graph"), ("template", "aligned template"))}

# Where the time goes (committed run, 1 seed, 477 s on 2 cores with the hands cached): training 2 variants x 4
# epochs x 3500 hands (872 steps each) took 398 s (~50 s an epoch), scoring 500 hands, the picture and start-up the
# other ~79 s. Three seeds at 4 epochs would take ~24 min, over the 20-minute budget, so the cpu scale trains 3
# epochs (654 steps) on the same hands: ~2 x 150 s + ~25 s scoring a seed, so ~17 min for seeds 0 1 2 (plus ~1.5
# min the first time, for anny's start and the rendering). gpu: an estimate of ~10 min on one H200, not yet timed
# (no GPU was lent when it was written). smoke: seconds, for the tests.
SCALES = {"cpu": {"epochs": 3, "size": 4000, "val_size": 500, "image_size": 64, "batch_size": 16, "width": 128,
                  "dims": [128, 64, 32], "layers": 2},
          "gpu": {"epochs": 20, "size": 12000, "val_size": 1000, "image_size": 64, "batch_size": 32, "width": 128,
                  "dims": [128, 64, 32], "layers": 2},
          "smoke": {"epochs": 1, "size": 40, "val_size": 8, "image_size": 32, "batch_size": 8, "width": 16,
                    "dims": [16, 16, 8], "layers": 1}}
HAND_SEED = 0  # the rendered hand set is the same for every training seed (it is data, rendered once)

SPEC = ClaimSpec(
    paper="meshgraphormer",
    claim="Adding graph residual blocks (graph convolution over the coarse mesh) to the transformer encoder "
          "lowers the reconstruction error.",
    metric="PA-MPVPE (mm), with / without graph residual blocks",
    method="graphormer_pa_mpvpe", baseline="no_graph_pa_mpvpe", baseline_name="no graph residual block",
    comparisons=[Comparison("graphormer_pa_mpvpe", "no_graph_pa_mpvpe", higher_is_better=False),
                 Comparison("graphormer_pa_mpjpe", "no_graph_pa_mpjpe", higher_is_better=False)],
    gates=[Comparison(f"{model}_pa_mpvpe", "template_pa_mpvpe", higher_is_better=False,
                      label=f"{model} beats the aligned template on PA-MPVPE") for model in VARIANTS]
    + [Comparison(f"{model}_f5", "template_f5", label=f"{model} beats the aligned template on F@5")
       for model in VARIANTS],
    references=[f"template_{m}" for m in ARM_METRICS], arm_names=ARMS,
    paper_value=PAPER_FREIHAND["pa_mpvpe"], paper_baseline=None,
    budget_axis="training epochs",
)


class RenderedHands(MeshDataModule):
    """The claim's hand set, already in memory (``arrays``: rendered or read from the cache once per claim);
    ``seed`` sets only the training order and the pixel-noise augmentation."""

    arrays: dict[str, np.ndarray]

    def setup(self, stage: str | None = None) -> None:
        idx = np.arange(len(self.arrays["images"]))
        self.train_set = HandSet(self.arrays, idx[: -self.hparams.val_size], train=True, seed=self.hparams.seed)
        self.val_set = HandSet(self.arrays, idx[-self.hparams.val_size:], train=False)


_HANDS: dict[tuple, dict[str, np.ndarray]] = {}


def hands(setting: dict, cache_dir: str | None) -> dict[str, np.ndarray]:
    """The rendered hand set of ``setting``, loaded once per process."""
    key = (setting["size"], setting["image_size"], cache_dir)
    if key not in _HANDS:
        spec = HandSetSpec(size=setting["size"], image_size=setting["image_size"], seed=HAND_SEED)
        _HANDS[key] = load_or_generate(spec, cache_dir)
    return _HANDS[key]


def quiet_trainer(accelerator: str = "cpu", **kwargs) -> L.Trainer:
    return L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **kwargs)


def build_model(graph_blocks: list[int], args) -> MeshGraphormerModule:
    """The claim's model; ``args`` holds width, dims, layers, lr and the three loss weights."""
    return MeshGraphormerModule(backbone="small", backbone_width=args.width, input_dims=(args.dims[1], args.dims[2]),
                                hidden_dims=(args.dims[0], args.dims[1] // 2, args.dims[2] // 2), layers=args.layers,
                                heads=4, dropout=0.1, attention_dropout=0.0, graph_blocks=tuple(graph_blocks),
                                grid_size=7, upsample_init="hierarchy", start_from_template=True,
                                camera_scale_init=10.0, joints_weight=args.joints_weight,
                                vertices_weight=args.vertices_weight, joints_2d_weight=args.joints_2d_weight,
                                upsample_lr_scale=0.1, lr=args.lr)


@torch.no_grad()
def per_sample(model: MeshGraphormerModule, data: MeshDataModule) -> dict[str, np.ndarray]:
    """Every metric of :meth:`MeshGraphormerModule.evaluate` for every held-out hand, and the aligned template's."""
    model.eval()
    out: dict[str, list] = {}
    for batch in data.val_dataloader():
        pred = model(batch["image"])
        gt = model.targets(batch)[0]
        for k, v in model.evaluate(pred, batch, gt).items():
            out.setdefault(k, []).append(v.numpy())
        template = model.body.template[None].expand(len(gt), -1, -1)
        tj = model.regress(template)
        out.setdefault("template_pa_mpvpe", []).append((metrics.pa_mpvpe(template, gt) * 1000).numpy())
        out.setdefault("template_pa_mpjpe", []).append((metrics.pa_mpjpe(tj, batch["joints"]) * 1000).numpy())
        out.setdefault("template_f5", []).append(metrics.f_score(template, gt, 0.005, align=True).numpy())
        out.setdefault("template_f15", []).append(metrics.f_score(template, gt, 0.015, align=True).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean and standard error of the per-sample differences a - b."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")}


def picture(model: MeshGraphormerModule, data: MeshDataModule, path: Path, count: int = 4, size: int = 160) -> None:
    """Rows of test hands: input image, predicted mesh over it (predicted camera), ground-truth mesh (its camera)."""
    from PIL import Image, ImageDraw

    model.eval()
    faces = torch.as_tensor(model.body.faces)
    rows = []
    idx = np.linspace(0, len(data.val_set) - 1, count).astype(int)
    for i in idx:
        s = data.val_set[int(i)]
        with torch.no_grad():
            pred = model(s["image"][None])
        k = int(data.val_set.indices[int(i)])
        gt_cam = torch.as_tensor(data.val_set.arrays["camera"][k])
        image = torch.as_tensor(np.asarray(Image.fromarray(denormalise(s["image"])).resize((size, size),
                                                                                             Image.BILINEAR)))
        tiles = [image.numpy()]
        for verts, cam, colour in ((pred["vertices"][-1][0], pred["camera"][0], (0.55, 0.75, 1.0)),
                                   (s["vertices"], gt_cam, (0.6, 0.95, 0.6))):
            pix = torch.cat([(cam[0] * (verts[:, :2] + cam[1:]) + 1) * size / 2, verts[:, 2:] * cam[0] * size / 2], 1)
            bg = image.float() / 255 * 0.45
            rgb, cover = render_mesh(pix.float(), faces, size, torch.tensor(colour), torch.tensor([0.3, -0.4, -1.0]),
                                     bg, supersample=1)
            tiles.append((rgb.numpy() * 255).astype(np.uint8))
        rows.append(np.concatenate(tiles, 1))
    grid = Image.fromarray(np.concatenate(rows, 0))
    draw = ImageDraw.Draw(grid)
    for col, label in enumerate(("input", "prediction (its camera)", "ground truth")):
        draw.text((col * size + 4, 2), label, fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def settings(ctx: ClaimContext) -> dict:
    """The scale's settings, with any size option given on the command line in their place."""
    return ctx.settings(SCALES)


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    """Both variants trained with ``seed`` on the claim's hands, scored on the held-out ones."""
    setting = settings(ctx)
    epochs = ctx.scaled("epochs", setting["epochs"])
    model_args = argparse.Namespace(**{k: setting[k] for k in ("width", "dims", "layers")},
                                    **{k: getattr(ctx.args, k) for k in ("lr", "joints_weight", "vertices_weight",
                                                                          "joints_2d_weight")})
    data = RenderedHands(size=setting["size"], val_size=setting["val_size"], image_size=setting["image_size"],
                         batch_size=setting["batch_size"], seed=seed)
    data.arrays = hands(setting, ctx.args.cache_dir)
    data.setup("fit")
    accelerator = "gpu" if ctx.scale == "gpu" else "cpu"
    samples, results, seconds, details = {}, {}, {}, {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        for name, graph_blocks in VARIANTS.items():
            L.seed_everything(seed, verbose=False)
            model = build_model(graph_blocks, model_args)
            t0 = time.perf_counter()
            quiet_trainer(max_epochs=epochs, limit_val_batches=0, accelerator=accelerator).fit(model, datamodule=data)
            model.cpu()
            seconds[name] = round(time.perf_counter() - t0, 1)
            samples[name] = per_sample(model, data)
            results[name] = {k: float(samples[name][k].mean()) for k in KEYS}
            print(f"  {name:11s} seed {seed}: " + "  ".join(f"{k} {results[name][k]:.3f}" for k in KEYS)
                  + f"  ({seconds[name]:.0f} s)", flush=True)
            if name == "graphormer" and seed == ctx.args.seeds[0] and not ctx.args.no_picture:
                picture(model, data, ctx.figures_dir / PICTURE_NAME)
                details["picture"] = os.path.relpath(ctx.figures_dir / PICTURE_NAME, HERE)
    first = samples["graphormer"]
    results["template"] = {k: float(first[f"template_{k}"].mean()) for k in ("pa_mpjpe", "pa_mpvpe", "f5", "f15")}
    values = {f"{model}_{m}": results[model][m] for m in ARM_METRICS for model in ("graphormer", "no_graph",
                                                                                 "template")}
    details |= {"results": results, "train_seconds": seconds, "settings": setting | {"epochs": epochs},
                "paired_over_hands": {k: paired(samples["graphormer"][k], samples["no_graph"][k]) for k in KEYS[:4]}}
    return SeedRun(values=values, details=details)


def describe(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record: ClaimRecord) -> tuple[str, str]:
    """The README table: every model's metrics (mean over seeds), the paper's row, the rule's tests, and the
    paired differences over test hands per seed as extra detail."""
    seeds = record.seeds
    s = runs[seeds[0]].details["settings"]

    def mean(model: str, key: str) -> float:
        return float(np.mean([runs[x].details["results"][model][key] for x in seeds]))

    def sd(model: str, key: str) -> str:
        v = [runs[x].details["results"][model][key] for x in seeds]
        return f" ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else ""

    lines = [f"{s['val_size']} held-out anny hands at {s['image_size']} px; each model trained {s['epochs']} epochs on "
             f"{s['size'] - s['val_size']} hands, seeds {seeds} (mean ± SD over seeds; the template uses no image and "
             "no training).", "",
             "| model | PA-MPJPE (mm) ↓ | PA-MPVPE (mm) ↓ | F@5 mm ↑ | F@15 mm ↑ | MPJPE (mm) | MPVE (mm) |",
             "|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        lines.append(f"| {NAMES[name]} | {mean(name, 'pa_mpjpe'):.2f}{sd(name, 'pa_mpjpe')} | "
                     f"{mean(name, 'pa_mpvpe'):.2f}{sd(name, 'pa_mpvpe')} | {mean(name, 'f5'):.3f} | "
                     f"{mean(name, 'f15'):.3f} | {mean(name, 'mpjpe'):.1f} | {mean(name, 'mpve'):.1f} |")
    lines.append(f"| {NAMES['template']} | {mean('template', 'pa_mpjpe'):.2f} | {mean('template', 'pa_mpvpe'):.2f} | "
                 f"{mean('template', 'f5'):.3f} | {mean('template', 'f15'):.3f} | – | – |")
    p = PAPER_FREIHAND
    lines.append(f"| *paper, FreiHAND test (Mesh Graphormer, HRNet-W64, 200 epochs)* | *{p['pa_mpjpe']}* | "
                 f"*{p['pa_mpvpe']}* | *{p['f5']}* | *{p['f15']}* | | |")
    lines += ["", "The rule, paired over seeds (positive favours the first-named; lower error is better):", "",
              comparisons_table(spec, record), "",
              "Extra detail, per seed: with − without graph residual blocks, mean ± standard error over test hands "
              "(leaves out run-to-run variation):", "",
              "| seed | PA-MPJPE | PA-MPVPE | F@5 | F@15 |", "|---|---|---|---|---|"]
    for x in seeds:
        d = runs[x].details["paired_over_hands"]
        lines.append(f"| {x} | " + " | ".join(
            f"{d[k]['mean']:+.{3 if k.startswith('f') else 2}f} ± {d[k]['se']:.{3 if k.startswith('f') else 2}f}"
            for k in KEYS[:4]) + " |")
    note = (f"Seeds {seeds}; PA-MPVPE with graph residual blocks {mean('graphormer', 'pa_mpvpe'):.2f} mm vs without "
            f"{mean('no_graph', 'pa_mpvpe'):.2f} mm, PA-MPJPE {mean('graphormer', 'pa_mpjpe'):.2f} vs "
            f"{mean('no_graph', 'pa_mpjpe'):.2f} mm; the aligned template {mean('template', 'pa_mpvpe'):.2f} mm, F@5 "
            f"{mean('template', 'f5'):.3f}. Paper column: FreiHAND test, full model; the paper's ablation of the graph "
            "block is on Human3.6M.")
    return "\n".join(lines), note


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("meshgraphormer options (the size options override the --scale setting)")
    g.add_argument("--epochs", type=int, help="training epochs (cpu scale: 3)")
    g.add_argument("--size", type=int, help="rendered hands in all, cached after the first run (cpu scale: 4000)")
    g.add_argument("--val-size", type=int, help="held-out hands scored (cpu scale: 500)")
    g.add_argument("--image-size", type=int, help="cpu scale: 64")
    g.add_argument("--batch-size", type=int, help="cpu scale: 16")
    g.add_argument("--width", type=int, help="backbone channels (cpu scale: 128; paper: HRNet-W64, 2048)")
    g.add_argument("--dims", type=int, nargs=3,
                   help="hidden width of block 1 and the inputs of blocks 2 and 3 (cpu scale: 128 64 32; paper: "
                   "1024 512 128)")
    g.add_argument("--layers", type=int, help="layers per block (cpu scale: 2; paper: 4)")
    g.add_argument("--lr", type=float, default=1e-3, help="paper: 1e-4 for 200 epochs")
    g.add_argument("--joints-weight", type=float, default=1000.0)
    g.add_argument("--vertices-weight", type=float, default=100.0)
    g.add_argument("--joints-2d-weight", type=float, default=1.0, help="official: = --vertices-weight")
    g.add_argument("--cache-dir", help="where the rendered hands are cached (default: ~/.cache/repro-zoo)")
    g.add_argument("--no-picture", action="store_true", help="do not draw docs/hands.png")


def main(argv: list[str] | None = None) -> ClaimRecord:
    return run(SPEC, run_seed, argv, add_arguments=add_arguments, describe=describe, docs_dir=HERE / "docs",
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
