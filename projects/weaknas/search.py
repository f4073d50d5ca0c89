"""Search strategies on a :class:`~projects.weaknas.benchmarks.Benchmark`, all counting *unique* queries.

* :func:`weaknas` — the WeakNAS loop (Wu et al. 2021, Alg. 1, as the official ``WeakNAS.py`` runs it):
  ``init`` random cells; then, until ``budget`` cells are queried: refit a fresh predictor on every
  queried (encoding, validation accuracy) pair, rank all 15,625 cells by prediction, draw ``per_iter``
  cells uniformly from the predicted top-``top_k`` that are not yet queried (if fewer remain there, take
  the best-predicted unqueried cells), query them.
* :func:`random_search` — cells in a random order.
* :func:`regularized_evolution` — Real et al. 2019 with NB201's settings: population 10, tournament of 3
  drawn with replacement, the parent is the tournament's best by validation accuracy, the child changes
  one random edge to a different op, the oldest member dies.

Selection always uses the validation accuracy; each trace keeps the test accuracy of every query too.
A query of a cell already queried costs nothing (the benchmark or the disk cache answers it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from projects.weaknas.benchmarks import Benchmark
from projects.weaknas.predictors import Predictor
from projects.weaknas.space import EDGES, OPS, encode, from_string, to_string
from shared.errors import UserFacingError


@dataclass
class SearchTrace:
    """Everything a run queried, in order, with both accuracies; WeakNAS adds the predictor's top-1 cell
    after each refit (``top1[i]`` is that cell after ``top1_at[i]`` queries)."""

    method: str
    seed: int
    queried: list[int] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    top1: list[int] = field(default_factory=list)
    top1_at: list[int] = field(default_factory=list)
    batch_ends: list[int] = field(default_factory=list)  # query counts at which a batch of queries completed

    def __len__(self) -> int:
        return len(self.queried)

    def best_so_far(self, split: str = "valid") -> np.ndarray:
        """Best ``split`` accuracy among the first n queries, for n = 1..len."""
        return np.maximum.accumulate(np.asarray(self.valid if split == "valid" else self.test))

    def selected_test(self) -> np.ndarray:
        """Test accuracy of the cell with the best validation accuracy among the first n queries (the
        honest NAS protocol: select on validation, report test)."""
        out, current, best_v = np.empty(len(self)), -np.inf, -np.inf
        for i, (v, t) in enumerate(zip(self.valid, self.test, strict=True)):
            if v > best_v:
                best_v, current = v, t
            out[i] = current
        return out

    def queries_to_find(self, targets: Iterable[int], whole_batches: bool = False) -> int | None:
        """Number of queries after which some cell of ``targets`` had been queried (None: never).

        ``whole_batches``: count up to the end of the batch that held it (a batch is queried at once, e.g.
        WeakNAS's 10 cells per iteration; the official code counts this way)."""
        wanted = set(int(t) for t in targets)
        for n, index in enumerate(self.queried, start=1):
            if index in wanted:
                if whole_batches:
                    return next((end for end in self.batch_ends if end >= n), len(self))
                return n
        return None


class _Oracle:
    """Queries a benchmark once per cell and remembers the answers (so repeats are free and uncounted)."""

    def __init__(self, bench: Benchmark, trace: SearchTrace):
        self.bench, self.trace, self.seen = bench, trace, {}

    def query(self, indices: Iterable[int]) -> None:
        new = [int(i) for i in indices if int(i) not in self.seen]
        if not new:
            return
        valid, test = self.bench.accuracies(new, "valid"), self.bench.accuracies(new, "test")
        for i, v, t in zip(new, valid, test, strict=True):
            self.seen[i] = float(v)
            self.trace.queried.append(i)
            self.trace.valid.append(float(v))
            self.trace.test.append(float(t))
        self.trace.batch_ends.append(len(self.trace))


def _done(trace: SearchTrace, budget: int, stop_at: set[int] | None) -> bool:
    return len(trace) >= budget or bool(stop_at and stop_at.intersection(trace.queried))


def weaknas(bench: Benchmark, make_predictor: Callable[[int], Predictor], budget: int = 1000, *, init: int = 10,
            per_iter: int = 10, top_k: int = 100, seed: int = 0, stop_at: Iterable[int] | None = None,
            features: np.ndarray | None = None, progress: Callable[[int], None] | None = None) -> SearchTrace:
    """Run WeakNAS; ``make_predictor(iteration_seed)`` returns a fresh predictor; ``stop_at``: stop early once
    one of these cell indices is queried (the claim's "queries to find the optimum")."""
    rng = np.random.default_rng(seed)
    X = encode(bench.arch_strings()) if features is None else features
    budget = min(budget, len(X))
    trace = SearchTrace("weaknas", seed)
    oracle = _Oracle(bench, trace)
    targets = set(stop_at) if stop_at is not None else None
    oracle.query(rng.choice(len(X), size=min(init, budget), replace=False))
    iteration = 0
    while not _done(trace, budget, targets):
        queried = np.asarray(trace.queried)
        predictor = make_predictor(seed * 100_003 + iteration)
        predictor.fit(X[queried], np.asarray(trace.valid))
        order = np.argsort(-predictor.predict(X), kind="stable")
        trace.top1.append(int(order[0]))
        trace.top1_at.append(len(trace))
        seen = np.zeros(len(X), dtype=bool)
        seen[queried] = True
        k = min(per_iter, budget - len(trace))
        candidates = order[:top_k][~seen[order[:top_k]]]
        if len(candidates) >= k:
            new = rng.choice(candidates, size=k, replace=False)
        else:
            new = order[~seen[order]][:k]
        if len(new) == 0:  # every cell has been queried
            break
        oracle.query(new)
        iteration += 1
        if progress:
            progress(len(trace))
    return trace


def random_search(bench: Benchmark, budget: int = 1000, *, seed: int = 0, stop_at: Iterable[int] | None = None,
                  progress: Callable[[int], None] | None = None) -> SearchTrace:
    rng = np.random.default_rng(seed)
    trace = SearchTrace("random", seed)
    oracle = _Oracle(bench, trace)
    targets = set(stop_at) if stop_at is not None else None
    order = rng.permutation(len(bench))[:budget]
    if targets is not None:  # stop right after the first target, as an online search would
        hits = np.flatnonzero(np.isin(order, list(targets)))
        order = order[:hits[0] + 1] if len(hits) else order
    for start in range(0, len(order), 100):  # one query a batch; oracle calls grouped for speed
        chunk = order[start:start + 100]
        oracle.query(chunk)
        trace.batch_ends[-1:] = range(len(trace) - len(chunk) + 1, len(trace) + 1)
        if progress:
            progress(len(trace))
    return trace


def mutate(arch: str, rng: np.random.Generator) -> str:
    """Change the op of one uniformly chosen edge to a different op, uniformly."""
    ops = list(from_string(arch))
    edge = int(rng.integers(len(EDGES)))
    ops[edge] = rng.choice([op for op in OPS if op != ops[edge]])
    return to_string(ops)


def regularized_evolution(bench: Benchmark, budget: int = 1000, *, population: int = 10, sample: int = 3,
                          seed: int = 0, stop_at: Iterable[int] | None = None, max_cycles: int | None = None,
                          progress: Callable[[int], None] | None = None) -> SearchTrace:
    rng = np.random.default_rng(seed)
    names = bench.arch_strings()
    index = {a: i for i, a in enumerate(names)}
    trace = SearchTrace("evolution", seed)
    oracle = _Oracle(bench, trace)
    targets = set(stop_at) if stop_at is not None else None
    members = [int(i) for i in rng.choice(len(names), size=min(population, budget), replace=False)]
    oracle.query(members)
    budget = min(budget, len(names))
    cycles, limit = 0, max_cycles if max_cycles is not None else 50 * budget
    while not _done(trace, budget, targets) and cycles < limit:
        contenders = [members[int(j)] for j in rng.integers(len(members), size=sample)]
        parent = max(contenders, key=lambda i: oracle.seen[i])
        mutant = mutate(names[parent], rng)
        if mutant not in index:
            raise UserFacingError(f"regularised evolution needs every cell of the space in the benchmark; {bench.name} "
                                  f"lacks {mutant}")
        child = index[mutant]
        oracle.query([child])
        members.append(child)
        members.pop(0)
        cycles += 1
        if progress and cycles % 10 == 0:
            progress(len(trace))
    return trace


METHODS = ("weaknas", "random", "evolution")
