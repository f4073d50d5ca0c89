"""Two entry points in one command.

``python -m projects.weaknas search --benchmark NAME --predictor mlp|rf|gcn --budget N --runs R`` runs a
search (WeakNAS, random search or regularised evolution) with a progress bar and prints a summary;
``--json`` saves every run's trace.

Any other subcommand goes to the Lightning CLI: ``fit``/``validate``/``test`` of the cell network
(``configs/demo.yaml``, ``configs/nb201-cell_1xb256_cifar10.yaml``) or of the GCN predictor
(``configs/gcn-predictor_1xb64_nb201.yaml``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import lightning as L
import numpy as np

from shared.cli import cli_main
from shared.errors import UserFacingError, user_message


def search_parser() -> argparse.ArgumentParser:
    from projects.weaknas.benchmarks import BENCHMARKS
    from projects.weaknas.predictors import PREDICTORS
    from projects.weaknas.search import METHODS

    p = argparse.ArgumentParser(prog="python -m projects.weaknas search",
                                description="Search the NAS-Bench-201 space; prints the best cell found per run.")
    p.add_argument("--benchmark", default="nb201-cifar10-analog", choices=BENCHMARKS)
    p.add_argument("--benchmark-path", help="the NAS-Bench-201 .pth file for nb201-cifar10/100/imagenet16-120")
    p.add_argument("--live-config", help="training setup of live-fmnist (default: configs/demo.yaml)")
    p.add_argument("--cache-dir", help="where live-fmnist caches trained cells (default ~/.cache/repro-zoo/weaknas)")
    p.add_argument("--method", default="weaknas", choices=METHODS)
    p.add_argument("--predictor", default="mlp", choices=sorted(PREDICTORS))
    p.add_argument("--hidden", type=int, nargs="+", help="MLP hidden sizes (default: the official 1000 1000 1000 1000)")
    p.add_argument("--budget", type=int, default=100, help="number of distinct cells to query per run")
    p.add_argument("--runs", type=int, default=1, help="independent runs, seeds seed..seed+runs-1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=int, default=10, help="WeakNAS: random cells before the first predictor")
    p.add_argument("--per-iter", type=int, default=10, help="WeakNAS: cells queried per iteration")
    p.add_argument("--top-k", type=int, default=100, help="WeakNAS: sample from the predicted top-k")
    p.add_argument("--json", type=Path, help="write every run's queried cells and accuracies here")
    return p


def _positive(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    for name in ("budget", "runs", "init", "per_iter", "top_k"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")


def run_search(argv: list[str]) -> int:
    from tqdm.auto import tqdm

    from projects.weaknas.benchmarks import load_benchmark
    from projects.weaknas.predictors import make_predictor
    from projects.weaknas.search import random_search, regularized_evolution, weaknas
    from projects.weaknas.space import encode

    parser = search_parser()
    args = parser.parse_args(argv)
    _positive(args, parser)
    if args.hidden and args.predictor != "mlp":
        parser.error(f"--hidden sets the MLP's layers; it does not apply to --predictor {args.predictor}")
    kwargs = {}
    if args.benchmark.startswith("live"):
        kwargs = {k: v for k, v in (("config", args.live_config), ("cache_dir", args.cache_dir)) if v}
    elif args.benchmark_path:
        kwargs = {"path": args.benchmark_path}
    try:
        bench = load_benchmark(args.benchmark, **kwargs)
        names = bench.arch_strings()
        features = encode(names) if args.method == "weaknas" else None
        predictor_kwargs = {"hidden": args.hidden} if args.hidden and args.predictor == "mlp" else {}
        traces = []
        for run in range(args.runs):
            seed = args.seed + run
            bar = tqdm(total=args.budget, desc=f"{args.method} run {run + 1}/{args.runs}", unit="query",
                       file=sys.stderr, leave=False)

            def progress(n, bar=bar):
                bar.update(n - bar.n)

            if args.method == "weaknas":
                trace = weaknas(bench, lambda s: make_predictor(args.predictor, seed=s, **predictor_kwargs),
                                args.budget, init=args.init, per_iter=args.per_iter, top_k=args.top_k, seed=seed,
                                features=features, progress=progress)
            elif args.method == "random":
                trace = random_search(bench, args.budget, seed=seed, progress=progress)
            else:
                trace = regularized_evolution(bench, args.budget, seed=seed, progress=progress)
            bar.close()
            best = int(np.argmax(trace.valid))
            print(f"run {run + 1} (seed {seed}): {len(trace)} queries, best by validation "
                  f"{names[trace.queried[best]]}  valid {trace.valid[best]:.2f}  test {trace.test[best]:.2f}")
            traces.append(trace)
    except UserFacingError as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 1
    selected = np.array([t.selected_test()[-1] for t in traces])
    print(f"{args.method} on {bench.name}, {args.runs} run(s) of {args.budget} queries: test accuracy of the "
          f"validation-selected cell {selected.mean():.2f} ± {selected.std():.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": bench.name, "method": args.method, "args": vars(args) | {
            "json": str(args.json)}, "runs": [{"seed": t.seed, "queried": [names[i] for i in t.queried],
                                               "valid": t.valid, "test": t.test} for t in traces]}, indent=1))
    return 0


def main(args=None, run: bool = True):
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["search"]:
        return run_search(argv[1:])
    if argv[:1] in (["-h"], ["--help"]):  # the Lightning CLI's help below knows nothing of `search`
        print("python -m projects.weaknas search --help   runs a NAS search (WeakNAS, random search, regularised "
              "evolution); the Lightning subcommands (fit / validate / test / predict) follow.\n")
    # args=None from the command line: LightningCLI warns about every run that passes args while sys.argv is set
    return cli_main(L.LightningModule, run_name="weaknas", args=None if args is None else argv, run=run,
                    subclass_mode_model=True)


if __name__ == "__main__":
    result = main()
    if isinstance(result, int):
        sys.exit(result)
