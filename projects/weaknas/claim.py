"""``make reproduce-weaknas``: WeakNAS against random search and regularised evolution on the embedded
NAS-Bench-201 CIFAR-10 table (analog-nasbench), with the same budget and seeds for every method.

Run by the shared claim protocol (:mod:`shared.claims`): a seed is one search run of every method with that
seed; its value is the number of distinct queries until the table's global optimum is queried (lower is
better), a cell found inside a batch counting the whole batch (WeakNAS queries 10 cells an iteration; the
official code counts this way). A run that never queries the optimum within the budget is censored at
``budget + 10`` (the first count WeakNAS could reach after the budget). The claim: WeakNAS needs fewer queries
than random search, and fewer than regularised evolution, each by a paired margin over seeds above two
standard errors. Random search is the no-learning reference row. The budget sweep scales the query budget.

Also measured (details and the README table): queries to any top-0.1% cell, the mean best test accuracy
after 100, 200 and 500 queries (the cell is selected by validation accuracy; on this table validation =
test), the official plot's rule, unlimited-budget runs of the baselines, WeakNAS with the random-forest and
GCN predictors on the first ``extra_runs`` seeds at a smaller budget, and a plot of best accuracy vs queries.
WeakNAS uses the official predictor's depth (4 ReLU layers) at a quarter of its width (256 instead of 1000) to
fit the time budget; ``--hidden 1000 1000 1000 1000`` runs the official size (12-14x slower per iteration,
see ``make bench-weaknas``).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import pickle
from pathlib import Path

import numpy as np

from projects.weaknas.benchmarks import ANALOG_NAME, load_benchmark
from projects.weaknas.predictors import GCNPredictor, MLPPredictor, RandomForestPredictor
from projects.weaknas.search import SearchTrace, random_search, regularized_evolution, weaknas
from projects.weaknas.space import encode
from shared.claims import ClaimContext, ClaimSpec, Comparison, SeedRun, comparisons_table, main_guard, run

HERE = Path(__file__).parent
PLOT_NAME = "best_vs_queries.png"
CHECKPOINTS = (100, 200, 500)
BATCH = 10  # WeakNAS's cells per iteration: a run censored at the budget counts as budget + BATCH queries

# Per scale: the query budget of the three compared methods, the WeakNAS MLP's hidden layers, the random
# forest's trees, and the extra predictors' runs (the first seeds) and budget.
# cpu (the committed claim, 20 seeds): about 4 minutes on 2 cores (the committed 20 runs took 238 s).
# gpu: the official 4 x 1000 MLP (sklearn, on the CPU cores of a GPU machine), 1000 trees, 10 extra runs;
# estimated at about 10 minutes with 16 cores (5 runs of budget 300 took 3 min on 2 cores), not yet run.
# smoke: seconds, for the tests.
SCALES = {
    "cpu": {"budget": 500, "hidden": (256, 256, 256, 256), "rf_trees": 100, "gcn_epochs": 100,
            "extra_runs": 5, "extra_budget": 200},
    "gpu": {"budget": 500, "hidden": (1000, 1000, 1000, 1000), "rf_trees": 1000, "gcn_epochs": 100,
            "extra_runs": 10, "extra_budget": 200},
    "smoke": {"budget": 30, "hidden": (16, 16), "rf_trees": 5, "gcn_epochs": 2, "extra_runs": 1, "extra_budget": 20},
}
ARMS = {"weaknas": "WeakNAS (MLP predictor)", "random": "random search", "evolution": "regularised evolution"}

SPEC = ClaimSpec(
    paper="weaknas",
    claim="WeakNAS needs fewer queries than random search and regularised evolution to find the best NAS-Bench-201 "
          "cell.",
    metric="queries to the NB201 CIFAR-10 optimum (mean over seeds, censored at budget + 10; lower is better), "
           "WeakNAS / regularised evolution",
    method="weaknas", baseline="evolution", baseline_name="regularised evolution",
    comparisons=[Comparison("weaknas", "random", higher_is_better=False),
                 Comparison("weaknas", "evolution", higher_is_better=False)],
    references=["random"], arm_names=ARMS,
    paper_value=None, paper_baseline=None,  # the paper's NB201 table was not retrievable offline
    default_seeds=tuple(range(20)),
    budget_axis="query budget",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hidden", type=int, nargs="+", default=None,
                   help="the WeakNAS MLP's hidden layers (default: the scale's; official: 1000 1000 1000 1000)")
    p.add_argument("--budget", type=int, default=None, help="query budget of every method (default: the scale's)")
    p.add_argument("--extra-runs", type=int, default=None,
                   help="WeakNAS with the random-forest and GCN predictors on this many of the first seeds")
    p.add_argument("--extra-budget", type=int, default=None, help="query budget of those extra runs")


def settings(ctx: ClaimContext) -> dict:
    """The scale's settings, overridden by the paper's own options."""
    return ctx.settings(SCALES)


@functools.cache
def _table():
    """The embedded benchmark, its encodings, the optimum (by validation) and the top-0.1% cells."""
    bench = load_benchmark(ANALOG_NAME)
    valid = bench.table["valid"]
    optimum = [int(valid.argmax())]
    top = np.argsort(-valid, kind="stable")[:math.ceil(0.001 * len(bench))].tolist()
    return bench, encode(bench.arch_strings()), optimum, top


def censored(queries: int | None, budget: int) -> float:
    """Queries to the optimum; a run that never found it within ``budget`` counts as ``budget + BATCH``."""
    return float(queries) if queries is not None else float(budget + BATCH)


def run_seed(ctx: ClaimContext, seed: int) -> SeedRun:
    """One search run of every method with ``seed`` (and of the extra predictors on the first seeds)."""
    s = settings(ctx)
    bench, X, optimum, top = _table()
    budget = ctx.scaled("queries", s["budget"])
    hidden = tuple(s["hidden"])
    traces = {
        "weaknas": weaknas(bench, lambda i: MLPPredictor(hidden, seed=i), budget, seed=seed, stop_at=optimum,
                           features=X),
        "random": random_search(bench, budget, seed=seed, stop_at=optimum),
        "evolution": regularized_evolution(bench, budget, seed=seed, stop_at=optimum),
    }
    budgets = dict.fromkeys(traces, budget)
    if ctx.args.seeds.index(seed) < s["extra_runs"]:
        extra = ctx.scaled("extra queries", s["extra_budget"])
        traces["weaknas_rf"] = weaknas(bench, lambda i: RandomForestPredictor(s["rf_trees"], 10, seed=i), extra,
                                       seed=seed, stop_at=optimum, features=X)
        traces["weaknas_gcn"] = weaknas(bench, lambda i: GCNPredictor(epochs=s["gcn_epochs"], seed=i), extra,
                                        seed=seed, stop_at=optimum, features=X)
        budgets |= {"weaknas_rf": extra, "weaknas_gcn": extra}
    with open(ctx.workdir / f"traces-seed{seed}.pkl", "wb") as f:  # for describe(): table and plot over seeds
        pickle.dump({"traces": traces, "budgets": budgets}, f)
    found = {name: t.queries_to_find(optimum, whole_batches=True) for name, t in traces.items()}
    unlimited = {name: fn(bench, len(bench), seed=seed, stop_at=optimum).queries_to_find(optimum)
                 for name, fn in (("random", random_search), ("evolution", regularized_evolution))}
    details = {"queries_to_optimum": found,
               "queries_to_top_0.1%": {name: t.queries_to_find(top, whole_batches=True) for name, t in traces.items()},
               "budgets": budgets, "unlimited_queries_to_optimum": unlimited}
    return SeedRun(values={arm: censored(found[arm], budget) for arm in ARMS}, details=details)


def summarise(traces: list[SearchTrace], optimum: list[int], top: list[int], budget: int) -> dict:
    to_opt = [t.queries_to_find(optimum, whole_batches=True) for t in traces]
    to_top = [t.queries_to_find(top, whole_batches=True) for t in traces]

    def censored_median(values):  # None = not found within the budget, ranks above every found value
        ranked = sorted(v if v is not None else math.inf for v in values)
        med = float(np.median(ranked)) if ranked else math.inf
        return med if math.isfinite(med) else None

    row = {"runs": len(traces), "budget": budget,
           "found_optimum": sum(v is not None for v in to_opt), "median_queries_to_optimum": censored_median(to_opt),
           "mean_queries_to_optimum_when_found": float(np.mean([v for v in to_opt if v])) if any(to_opt) else None,
           "found_top_0.1%": sum(v is not None for v in to_top), "median_queries_to_top_0.1%": censored_median(to_top),
           "queries_to_optimum": to_opt, "queries_to_top_0.1%": to_top}
    for n in CHECKPOINTS:
        if n > budget:
            continue
        best = np.array([_at(t.selected_test(), n) for t in traces])
        row[f"best_test_at_{n}"] = [round(float(best.mean()), 3), round(float(best.std()), 3)]
    return row


def _at(curve: np.ndarray, n: int) -> float:
    """Value after n queries; a run that stopped early (it found the optimum) keeps its last value."""
    return float(curve[min(n, len(curve)) - 1])


def official_metric(traces: list[SearchTrace], table: np.ndarray, n: int) -> float:
    """The official plot's number at n queries: max over the queried cells *and* the predictor's top-1 cell."""
    values = []
    for t in traces:
        best = _at(np.maximum.accumulate(np.asarray(t.test)), n)
        tops = [i for i, at in zip(t.top1, t.top1_at, strict=True) if at <= n]
        values.append(max(best, float(table[tops[-1]])) if tops else best)
    return round(float(np.mean(values)), 3)


def curves(traces: list[SearchTrace], budget: int) -> np.ndarray:
    return np.array([[_at(t.selected_test(), n) for n in range(1, budget + 1)] for t in traces])


def plot(groups: dict[str, tuple[list[SearchTrace], int]], best: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    for label, (traces, budget) in groups.items():
        c = curves(traces, budget)
        x = np.arange(1, budget + 1)
        (line,) = ax.plot(x, np.median(c, 0), label=f"{label} ({len(traces)} runs)")
        ax.fill_between(x, np.percentile(c, 25, 0), np.percentile(c, 75, 0), color=line.get_color(), alpha=0.15)
    ax.axhline(best, color="k", lw=0.8, ls="--", label=f"table optimum {best:.2f}")
    ax.set(xscale="log", xlabel="distinct cells queried", ylabel="best test accuracy (%) so far",
           title="NB201 CIFAR-10 (analog-nasbench table): median and 25-75% band over runs",
           ylim=(best - 1.5, best + 0.2),
           xlim=(10, max(budget for _, budget in groups.values())))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def rank_test(ours: list[int | None], theirs: list[int | None]) -> float:
    """One-sided Mann-Whitney U p-value that ``ours`` needs fewer queries (not found = more than any found)."""
    from scipy.stats import mannwhitneyu

    big = 10**9
    a = [v if v is not None else big for v in ours]
    b = [v if v is not None else big for v in theirs]
    return float(mannwhitneyu(a, b, alternative="less").pvalue)


def table_markdown(rows: dict[str, dict], official: dict[str, list[float]], unlimited: dict[str, dict],
                   best: float, tests: dict[str, float] | None = None) -> str:
    def fmt(v):
        return "–" if v is None else (f"{v:g}" if isinstance(v, int | float) else str(v))

    lines = [f"Embedded NAS-Bench-201 CIFAR-10 table (15,625 cells, optimum {best:.2f}%, top-0.1% = 16 cells); every "
             "method gets the same seeds; a query is one distinct cell, and a cell found inside a batch counts "
             "the whole batch. Medians count a run that never found the cell as above the budget.", "",
             "| method | runs | budget | optimum found | median queries to optimum | median queries to top-0.1% | "
             "best test @100 | @200 | @500 |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        accs = [("{:.2f} ± {:.2f}".format(*r[f"best_test_at_{n}"]) if f"best_test_at_{n}" in r else "–")
                for n in CHECKPOINTS]
        lines.append(f"| {name} | {r['runs']} | {r['budget']} | {r['found_optimum']}/{r['runs']} | "
                     f"{fmt(r['median_queries_to_optimum'])} | {fmt(r['median_queries_to_top_0.1%'])} | "
                     + " | ".join(accs) + " |")
    lines += ["", "Without a budget (until the optimum is queried, same seeds): "
              + "; ".join(f"{k}: mean {v['mean']:.0f}, median {v['median']:.0f} queries" for k, v in unlimited.items())
              + " (random search's expectation is 15,626 / 2 = 7,813)."]
    if tests:
        lines += ["", "One-sided Mann-Whitney U test that WeakNAS needs fewer queries to the optimum (runs that never "
                  "found it ranked last): " + "; ".join(f"against {k} p = {v:.3g}" for k, v in tests.items()) + "."]
    if any(official.values()):
        lines += ["", "The official plotting counts the predictor's top-1 cell as found even when it was never "
                  "queried; WeakNAS by that rule (mean best test): "
                  + "; ".join(f"{k}: " + ", ".join(f"@{n} {v:.2f}" for n, v in zip(CHECKPOINTS, vals, strict=False))
                              for k, vals in official.items() if vals) + "."]
    return "\n".join(lines)


def describe(ctx: ClaimContext, spec: ClaimSpec, runs: dict[int, SeedRun], record) -> tuple[str, str]:
    """The README table over every seed's traces, the plot (once, after all seeds) and the note."""
    s = settings(ctx)
    bench, _, optimum, top = _table()
    test = bench.table["test"]
    loaded = {seed: pickle.loads((ctx.workdir / f"traces-seed{seed}.pkl").read_bytes()) for seed in runs}
    hidden = tuple(s["hidden"])
    names = {"weaknas": f"WeakNAS, MLP {'×'.join(map(str, hidden))}", "random": "random search",
             "evolution": "regularised evolution", "weaknas_rf": "WeakNAS, random forest",
             "weaknas_gcn": "WeakNAS, GCN"}
    groups: dict[str, tuple[list[SearchTrace], int]] = {}
    for key, name in names.items():
        traces = [run["traces"][key] for run in loaded.values() if key in run["traces"]]
        if traces:
            budget = next(run["budgets"][key] for run in loaded.values() if key in run["budgets"])
            groups[name] = (traces, budget)
    rows = {name: summarise(traces, optimum, top, budget) for name, (traces, budget) in groups.items()}
    unlimited = {}
    for key in ("random", "evolution"):
        found = [r.details["unlimited_queries_to_optimum"][key] for r in runs.values()]
        found = [f if f is not None else len(bench) for f in found]
        unlimited[names[key]] = {"mean": float(np.mean(found)), "median": float(np.median(found))}
    official = {name: [official_metric(traces, test, n) for n in CHECKPOINTS if n <= budget]
                for name, (traces, budget) in groups.items() if name.startswith("WeakNAS")}
    tests = ({name: rank_test(rows[names["weaknas"]]["queries_to_optimum"], rows[name]["queries_to_optimum"])
              for name in (names["random"], names["evolution"])} if len(runs) > 1 else None)
    plot_name = PLOT_NAME if ctx.fraction == 1 else f"best_vs_queries-{ctx.fraction:g}.png"
    plot_path = (ctx.figures_dir / plot_name).resolve()
    plot(groups, float(test.max()), plot_path)
    record.details.update({"benchmark": ANALOG_NAME, "optimum": bench.arch_strings()[optimum[0]],
                           "optimum_accuracy": float(test.max()),
                           "top_0.1%": [bench.arch_strings()[i] for i in top], "mlp_hidden": list(hidden),
                           "methods": rows, "official_plot_metric": official, "unlimited_budget": unlimited,
                           "mann_whitney_p_weaknas_fewer": tests,
                           "plot": os.path.relpath(plot_path, HERE) if plot_path.is_relative_to(HERE)
                           else str(plot_path)})
    budget = ctx.budget["queries"]
    censored_runs = {spec.label(a): sum(r.details["queries_to_optimum"][a] is None for r in runs.values())
                     for a in ARMS}
    table = (table_markdown(rows, official, unlimited, float(test.max()), tests) + "\n\n"
             + f"The claim's per-seed value is the queries to the optimum with a run that never found it censored at "
             f"{budget} + {BATCH} = {budget + BATCH} (runs censored: "
             + ", ".join(f"{k} {v}/{len(runs)}" for k, v in censored_runs.items()) + "); paired over seeds:\n\n"
             + comparisons_table(spec, record))
    means = {a: float(np.mean(v)) for a, v in record.per_seed.items()}
    note = (f"{len(runs)} seeds, budget {budget} distinct queries; WeakNAS as the official code runs it (10 random "
            f"cells, then 10 a round drawn from the predicted top-100) with an MLP of {len(hidden)} ReLU layers of "
            f"{hidden[0]} (official: 1000). Mean queries to the optimum (censored at {budget + BATCH}): "
            + ", ".join(f"{spec.label(a)} {v:.1f}" for a, v in means.items())
            + "; runs censored: " + ", ".join(f"{k} {v}" for k, v in censored_runs.items())
            + ". The analog-nasbench table holds one accuracy per cell, so validation = test here. The paper's NB201 "
            "table was not retrievable offline.")
    return table, note


def main(argv: list[str] | None = None):
    return run(SPEC, run_seed, argv, add_arguments=add_arguments, describe=describe, docs_dir=HERE / "docs",
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main_guard(main)
