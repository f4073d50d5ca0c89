"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 4 nodes, 6 edges, 5 operations, 5^6 = 15,625 cells.

A cell is written everywhere as the standard NB201 arch string, one ``|op~j|`` group per input ``j`` of
nodes 1, 2 and 3::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|

Internally a cell is a 6-tuple of operation names in that string's edge order
``EDGES = ((0,1), (0,2), (1,2), (0,3), (1,3), (2,3))``, and the predictors see its one-hot encoding
(6 edges × 5 operations = 30 features, edge-major, operations in ``OPS`` order).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np

from shared.errors import UserFacingError

#: NB201's operation list, in the order of its ``get_search_spaces('cell', 'nas-bench-201')``.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges (source node, target node) in the order they appear in an arch string.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_CELLS = len(OPS) ** len(EDGES)
ENCODING_DIM = len(OPS) * len(EDGES)

Cell = tuple[str, ...]


class ArchStringError(UserFacingError, ValueError):
    """An arch string that is not a NAS-Bench-201 cell."""


def to_string(cell: Sequence[str]) -> str:
    """6 operation names in ``EDGES`` order -> ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    if len(cell) != len(EDGES) or any(op not in OPS for op in cell):
        raise ArchStringError(f"a cell is 6 operations from {OPS}, got {tuple(cell)!r}")
    groups = [[], [], []]
    for (src, dst), op in zip(EDGES, cell, strict=True):
        groups[dst - 1].append(f"{op}~{src}")
    return "+".join("|" + "|".join(g) + "|" for g in groups)


def from_string(arch: str) -> Cell:
    """Parse an NB201 arch string into 6 operation names in ``EDGES`` order, with a clear error on bad input."""
    hint = ("an NB201 arch string looks like "
            "'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|'")
    if not isinstance(arch, str):
        raise ArchStringError(f"expected an arch string, got {type(arch).__name__}; {hint}")
    nodes = arch.strip().split("+")
    if len(nodes) != 3:
        raise ArchStringError(f"{arch!r} has {len(nodes)} node groups separated by '+', not 3; {hint}")
    ops: dict[tuple[int, int], str] = {}
    for dst, group in enumerate(nodes, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise ArchStringError(f"{arch!r}: node {dst}'s group {group!r} must start and end with '|'; {hint}")
        items = group[1:-1].split("|")
        if len(items) != dst:
            raise ArchStringError(f"{arch!r}: node {dst} must have {dst} inputs, has {len(items)}; {hint}")
        for src, item in enumerate(items):
            op, _, index = item.partition("~")
            if op not in OPS:
                raise ArchStringError(f"{arch!r}: unknown operation {op!r} (known: {', '.join(OPS)})")
            if index != str(src):
                raise ArchStringError(f"{arch!r}: node {dst}'s input {src} is written '~{index}', expected '~{src}'")
            ops[(src, dst)] = op
    return tuple(ops[e] for e in EDGES)


def all_cells() -> list[Cell]:
    """All 15,625 cells, enumerated with the first edge (0->1) varying slowest."""
    return list(itertools.product(OPS, repeat=len(EDGES)))


def all_arch_strings() -> list[str]:
    return [to_string(c) for c in all_cells()]


def encode(cells: Iterable[Sequence[str] | str]) -> np.ndarray:
    """One-hot encoding, shape (n, 30), float32: feature ``5 * edge + op`` is 1 when that edge has that op."""
    rows = []
    for c in cells:
        ops = from_string(c) if isinstance(c, str) else c
        rows.append([len(OPS) * e + OPS.index(op) for e, op in enumerate(ops)])
    index = np.asarray(rows, dtype=np.int64).reshape(-1, len(EDGES))
    out = np.zeros((len(index), ENCODING_DIM), dtype=np.float32)
    np.put_along_axis(out, index, 1.0, axis=1)
    return out


def decode(features: np.ndarray) -> list[str]:
    """Inverse of :func:`encode` (argmax per edge)."""
    ops = np.asarray(features).reshape(-1, len(EDGES), len(OPS)).argmax(-1)
    return [to_string([OPS[i] for i in row]) for row in ops]


def edges_of(cell: Sequence[str] | str) -> dict[tuple[int, int], str]:
    ops = from_string(cell) if isinstance(cell, str) else tuple(cell)
    return dict(zip(EDGES, ops, strict=True))


def is_connected(cell: Sequence[str] | str) -> bool:
    """True when some path of non-``none`` edges leads from the input node 0 to the output node 3.

    NB201 keeps the other cells in its table (341 of 15,625): their output is all zeros, the network
    cannot learn, and the benchmark records chance accuracy (10% on CIFAR-10). Searches treat them as
    ordinary (bad) cells, exactly as the benchmark does.
    """
    reach = {0}
    for (src, dst), op in edges_of(cell).items():  # EDGES is topologically ordered by target
        if op != "none" and src in reach:
            reach.add(dst)
    return 3 in reach


def canonical(cell: Sequence[str] | str) -> str:
    """NB201's isomorphism key: cells with equal keys compute the same function; 6,466 keys over 15,625 cells.

    The definition is NAS-Bench-201's (``to_unique_str(consider_zero=True)`` in its API): node ``n``'s
    key is the sorted ``+``-join of one term per input ``j``, where the term is ``#`` (zero) when the edge
    is ``none`` or node ``j``'s key is ``#``, node ``j``'s key itself for ``skip_connect``, and
    ``(key_j)@op`` otherwise; node 0's key is ``0``. Note the benchmark's quirk, kept here: a node fed
    only by zero terms has key ``#+#``, not ``#``. NB201 trained every cell separately, so the search
    space keeps all 15,625 (each with its own accuracy) and this key is for analysis only.
    """
    ops = edges_of(cell)
    keys = {0: "0"}
    for node in (1, 2, 3):
        terms = []
        for src in range(node):
            op, key = ops[(src, node)], keys[src]
            if op == "none" or key == "#":
                terms.append("#")
            else:
                terms.append(key if op == "skip_connect" else f"({key})@{op}")
        keys[node] = "+".join(sorted(terms))
    return keys[3]
