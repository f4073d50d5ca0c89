"""``make bench-weaknas``: what a WeakNAS iteration costs, in one run.

* seconds per search iteration (refit on n queried cells + predict all 15,625) for each predictor, at
  n = 10, 50, 100, 200, 500 queried cells, and its growth (t(500) / t(10));
* the same per query for the baselines (random search, regularised evolution), whose cost is bookkeeping;
* the GCN predictor's training under Lightning's ``Trainer.fit`` against a plain PyTorch loop (same
  model, data and steps), and a live query's cell network training step, Lightning vs plain.

On a tabular benchmark the predictor is the whole cost; on a live space one query trains a network
(seconds to hours), so the predictor's cost matters only against that.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from projects.weaknas.benchmarks import ANALOG_NAME, load_benchmark
from projects.weaknas.module import CellClassifier, GCNRegressor
from projects.weaknas.nets import CellNetwork
from projects.weaknas.predictors import GCNPredictor, MLPPredictor, RandomForestPredictor
from projects.weaknas.search import random_search, regularized_evolution
from projects.weaknas.space import encode
from shared.bench import GpuStep, fit_step_seconds, lightning_vs_plain, optimisation_step, parameter_count, recipe
from shared.results import RESULTS_DIR, hardware

PREDICTORS = {
    "mlp 1000x4 (official)": lambda s: MLPPredictor((1000,) * 4, seed=s),
    "mlp 256x4 (claim)": lambda s: MLPPredictor((256,) * 4, seed=s),
    "rf 1000 trees (official)": lambda s: RandomForestPredictor(1000, 10, seed=s),
    "rf 100 trees (claim)": lambda s: RandomForestPredictor(100, 10, seed=s),
    "gcn (Lightning)": lambda s: GCNPredictor(seed=s),
}


def iteration_seconds(make, X: np.ndarray, y: np.ndarray, n: int, repeats: int) -> float:
    times = []
    for r in range(repeats):
        idx = np.random.default_rng(r).choice(len(X), size=n, replace=False)
        t0 = time.perf_counter()
        predictor = make(r).fit(X[idx], y[idx])
        np.argsort(-predictor.predict(X))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def plain_gcn_seconds(X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int = 64) -> float:
    """The GCN predictor's fit as a bare PyTorch loop: same model, optimiser, batches and epochs."""
    torch.manual_seed(0)
    model = GCNRegressor()
    opt = model.configure_optimizers()
    xs, ys = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))
    t0 = time.perf_counter()
    for _ in range(epochs):
        for i in torch.randperm(len(xs)).split(batch_size):
            loss = torch.nn.functional.mse_loss(model(xs[i]), ys[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200, 500])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip", nargs="*", default=[], help="predictor names to leave out")
    args = p.parse_args(argv)
    bench = load_benchmark(ANALOG_NAME)
    X, y = encode(bench.arch_strings()), bench.table["valid"]
    print(f"seconds per WeakNAS iteration (fit on n cells + rank all {len(X)}), median of {args.repeats}:")
    print("  predictor".ljust(30) + "".join(f"n={n}".rjust(10) for n in args.sizes) + "   growth")
    per_iteration = {}
    for name, make in PREDICTORS.items():
        if name in args.skip:
            continue
        row = [iteration_seconds(make, X, y, n, args.repeats) for n in args.sizes]
        per_iteration[name] = dict(zip(map(str, args.sizes), row, strict=True))
        print(f"  {name}".ljust(30) + "".join(f"{t:10.3f}" for t in row) + f"   ×{row[-1] / row[0]:.1f}", flush=True)

    baselines = {}
    for name, fn in (("random search", random_search), ("regularised evolution", regularized_evolution)):
        t0 = time.perf_counter()
        trace = fn(bench, 2000, seed=0)
        baselines[name] = (time.perf_counter() - t0) / len(trace)
    print("seconds per query, baselines: " + ", ".join(f"{k} {v * 1e6:.1f} µs" for k, v in baselines.items()))
    ratio = {k: per_iteration[k][str(args.sizes[-1])] / 10 / baselines["regularised evolution"]
             for k in per_iteration}
    print(f"WeakNAS cost per query at n = {args.sizes[-1]} vs regularised evolution: "
          + ", ".join(f"{k} ×{v:,.0f}" for k, v in ratio.items()))

    # Lightning vs plain: the GCN predictor's fit (100 epochs on 200 cells) and a cell network step.
    idx = np.random.default_rng(0).choice(len(X), 200, replace=False)
    target = ((y[idx] - y[idx].mean()) / y[idx].std()).astype(np.float32)
    t0 = time.perf_counter()
    GCNPredictor(seed=0).fit(X[idx], target)
    lightning_gcn = time.perf_counter() - t0
    plain_gcn = plain_gcn_seconds(X[idx], target, epochs=100)
    print(f"GCN predictor fit, 100 epochs on 200 cells: Lightning {lightning_gcn:.2f} s, plain loop "
          f"{plain_gcn:.2f} s, ratio {lightning_gcn / plain_gcn:.2f} (Trainer start-up included)")
    arch = bench.arch_strings()[int(y.argmax())]
    batch = (torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))
    cell = lightning_vs_plain(lambda: CellNetwork(arch, 8, 1, 10, 1), batch)
    print(f"live query's cell network (C=8, N=1, batch 64, 28 px) step: plain {cell['plain_s']:.4f} s, Lightning "
          f"{cell['lightning_s']:.4f} s, ratio {cell['ratio']:.2f}")
    paper = fit_step_seconds(_classifier(arch), (torch.randn(256, 3, 32, 32), torch.randint(0, 10, (256,))), steps=3,
                             warmup=1)
    print(f"NB201's C=16, N=5 cell network, batch 256 at 32 px: {256 / paper:.0f} img/s here "
          f"(200 epochs of 25k images = {200 * 25000 / (256 / paper) / 3600:.1f} h per query on this machine)")

    out = RESULTS_DIR / "bench" / "weaknas.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "hardware": hardware(), "iteration_seconds": per_iteration, "baseline_seconds_per_query": baselines,
        "weaknas_vs_evolution_cost_per_query": ratio, "gcn_fit_lightning_s": lightning_gcn,
        "gcn_fit_plain_s": plain_gcn,
        "cell_step": cell, "nb201_cell_images_per_s": 256 / paper}, indent=1) + "\n")
    print(f"wrote {out}")
    return per_iteration


def _classifier(arch: str):
    from projects.weaknas.module import CellClassifier

    return CellClassifier(arch=arch, lr_base_batch_size=None)


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one SGD step of NAS-Bench-201's cell network training (C = 16, N = 5, the default cell,
    32 px, batch 256) on random images: the cost of one live query's training, per step."""
    kwargs, batch = recipe("projects/weaknas/configs/nb201-cell_1xb256_cifar10.yaml")
    batch = batch_size or batch
    torch.manual_seed(0)
    model = CellClassifier(**kwargs)
    hp = model.hparams
    data = (torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,)))
    step = optimisation_step(model, data, device, lambda p: torch.optim.SGD(
        p, hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay, nesterov=hp.nesterov))
    return GpuStep(step, batch, "images", "NB201 cell network, C = 16, N = 5 at 32 px", parameter_count(model))


if __name__ == "__main__":
    main()
