"""Search loops: WeakNAS's sampling rules, the baselines, and what a trace reports."""

import numpy as np
import pytest

from projects.weaknas.benchmarks import TabularBenchmark
from projects.weaknas.predictors import MLPPredictor, Predictor
from projects.weaknas.search import SearchTrace, mutate, random_search, regularized_evolution, weaknas
from projects.weaknas.space import EDGES, OPS, all_arch_strings, encode, from_string


def additive_table(seed: int = 0) -> TabularBenchmark:
    """A synthetic table over all 15,625 cells: accuracy = Σ_edges score[edge, op] (+ tiny noise), so the
    optimum is the per-edge argmax and a predictor can learn it."""
    rng = np.random.default_rng(seed)
    score = rng.normal(size=(len(EDGES), len(OPS)))
    X = encode(all_arch_strings()).reshape(-1, len(EDGES), len(OPS))
    acc = 80 + (X * score).sum((1, 2)) + rng.normal(scale=1e-3, size=len(X))
    return TabularBenchmark("additive", all_arch_strings(), valid=acc, test=acc - 1)


class FixedRanking(Predictor):
    """Predicts a fixed score per cell, ignoring the training data (to test the sampling rule alone)."""

    def __init__(self, scores):
        self.scores = scores

    def fit(self, X, y):
        return self

    def predict(self, X):
        return self.scores


def test_weaknas_samples_from_the_predicted_top_k_without_repeats():
    bench = additive_table()
    scores = -np.arange(len(bench), dtype=float)  # cell 0 predicted best, then 1, 2, ...
    trace = weaknas(bench, lambda s: FixedRanking(scores), budget=60, init=10, per_iter=10, top_k=30, seed=3)
    assert len(trace) == 60 and len(set(trace.queried)) == 60
    init, after_init = set(trace.queried[:10]), trace.queried[10:]
    # iterations 1-3 draw from the fixed top-30 (cells 0..29) until it is exhausted ...
    top = [i for i in range(30) if i not in init]
    assert set(after_init[:len(top)]) == set(top)
    # ... then the best-predicted unqueried cells are taken in order
    queried_so_far = init | set(top)
    fallback = [i for i in range(len(bench)) if i not in queried_so_far][:50 - len(top)]
    assert after_init[len(top):] == fallback
    assert trace.top1 == [0] * 5 and trace.top1_at == [10, 20, 30, 40, 50]


def test_weaknas_refits_on_every_queried_cell_with_validation_accuracy():
    bench = additive_table()
    seen = []

    class Spy(FixedRanking):
        def fit(self, X, y):
            seen.append((len(X), np.asarray(y).copy()))
            return self

    trace = weaknas(bench, lambda s: Spy(np.zeros(len(bench))), budget=30, seed=0)
    assert [n for n, _ in seen] == [10, 20]
    np.testing.assert_array_equal(seen[1][1], trace.valid[:20])  # valid, not test (test = valid - 1 here)


def test_weaknas_finds_the_optimum_of_a_learnable_table():
    bench = additive_table(1)
    optimum = int(np.argmax(bench.table["valid"]))
    found = []
    for seed in range(3):
        trace = weaknas(bench, lambda s: MLPPredictor((64, 64), max_iter=200, seed=s),
                        budget=300, seed=seed, stop_at=[optimum])
        found.append(trace.queries_to_find([optimum]))
    assert all(n is not None and n <= 300 for n in found), found
    assert np.mean(found) < 15625 / 2 / 10  # random search needs ~7,800 on average


def test_random_search_and_stop_at():
    bench = additive_table()
    full = random_search(bench, budget=15625, seed=5)
    assert sorted(full.queried) == list(range(15625))
    target = full.queried[1234]
    stopped = random_search(bench, budget=15625, seed=5, stop_at=[target])
    assert len(stopped) == 1235 and stopped.queries_to_find([target]) == 1235


def test_mutation_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    arch = all_arch_strings()[777]
    for _ in range(200):
        child = mutate(arch, rng)
        diff = [a != b for a, b in zip(from_string(arch), from_string(child), strict=True)]
        assert sum(diff) == 1


def test_regularized_evolution_counts_distinct_queries_and_improves():
    bench = additive_table(2)
    trace = regularized_evolution(bench, budget=300, seed=0)
    assert len(trace) == 300 and len(set(trace.queried)) == 300
    acc = np.asarray(trace.valid)
    assert acc[-50:].mean() > acc[:10].mean() + 1  # children of tournament winners beat random cells


def test_trace_reports_selected_test_and_best_so_far_by_hand():
    t = SearchTrace("x", 0, queried=[4, 7, 9, 2], valid=[50, 70, 60, 80], test=[55, 65, 90, 75])
    np.testing.assert_array_equal(t.best_so_far("valid"), [50, 70, 70, 80])
    np.testing.assert_array_equal(t.best_so_far("test"), [55, 65, 90, 90])
    np.testing.assert_array_equal(t.selected_test(), [55, 65, 65, 75])  # test of the best-by-valid cell
    assert t.queries_to_find([9, 2]) == 3 and t.queries_to_find([1]) is None


@pytest.mark.parametrize("budget", [1, 5, 25])
def test_budget_is_exact_for_every_method(budget):
    bench = additive_table()
    for trace in (weaknas(bench, lambda s: FixedRanking(np.zeros(len(bench))), budget=budget, seed=1),
                  random_search(bench, budget=budget, seed=1), regularized_evolution(bench, budget=budget, seed=1)):
        assert len(trace) == budget == len(set(trace.queried))


def test_budget_larger_than_the_space_stops_when_every_cell_is_queried():
    archs = all_arch_strings()[:25]
    bench = TabularBenchmark("small", archs, valid=np.arange(25.0), test=np.arange(25.0))
    trace = weaknas(bench, lambda s: FixedRanking(np.zeros(25)), budget=1000, init=7, per_iter=4, top_k=5,
                    seed=0, features=encode(archs))
    assert sorted(trace.queried) == list(range(25))
    assert len(random_search(bench, budget=1000, seed=0)) == 25


def test_whole_batch_counting():
    t = SearchTrace("x", 0, queried=list(range(30)), valid=[0.0] * 30, test=[0.0] * 30, batch_ends=[10, 20, 30])
    assert t.queries_to_find([13]) == 14 and t.queries_to_find([13], whole_batches=True) == 20
    bench = additive_table()
    trace = regularized_evolution(bench, budget=40, seed=0)
    target = trace.queried[25]  # evolution queries one child at a time after its population of 10
    assert trace.queries_to_find([target], whole_batches=True) == 26
    assert trace.queries_to_find([trace.queried[3]], whole_batches=True) == 10


def test_isomorphic_cells_are_separate_queries():
    """NB201 trains isomorphic cells separately; the searches treat them as different cells too."""
    from projects.weaknas.space import canonical

    bench = additive_table()
    trace = random_search(bench, budget=15625, seed=0)
    keys = [canonical(bench.arch_strings()[i]) for i in trace.queried]
    assert len(trace) == 15625 and len(set(keys)) == 6466
