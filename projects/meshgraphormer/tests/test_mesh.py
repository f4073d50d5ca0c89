"""The mesh hierarchy: sizes, the shape of D / U / A, the official file's layout, save / load."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from projects.meshgraphormer.mesh import (
    MeshHierarchy,
    adjacency_matrix,
    build_hierarchy,
    edges_of,
    normalized_adjacency,
)
from projects.meshgraphormer.tests.meshes import uv_sphere
from shared.errors import CorruptDataError, DatasetNotFoundError


@pytest.fixture(scope="module")
def sphere():
    return uv_sphere(8, 12)


def test_edges_and_adjacency_of_a_triangle_pair():
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    assert edges_of(faces).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    a = adjacency_matrix(faces, 4).toarray()
    assert (a == a.T).all() and a.diagonal().sum() == 0 and a.sum() == 10


def test_normalized_adjacency_rows_are_one_over_degree_plus_one():
    a = normalized_adjacency(adjacency_matrix(np.array([[0, 1, 2], [1, 3, 2]]), 4))
    torch.testing.assert_close(a.sum(1), torch.ones(4))
    assert a[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0])  # vertex 0: neighbours 1, 2 and itself
    assert a[1, 3] == pytest.approx(1 / 4)


def test_hierarchy_sizes_follow_the_official_quarter_rule(sphere):
    verts, faces = sphere
    h = build_hierarchy(verts, faces, levels=2, factor=4)
    n = len(verts)
    assert h.sizes == [n, math.ceil(n / 4), math.ceil(math.ceil(n / 4) / 4)]
    for i, (d, u) in enumerate(zip(h.down, h.up, strict=True)):
        assert d.shape == (h.sizes[i + 1], h.sizes[i]) and u.shape == (h.sizes[i], h.sizes[i + 1])
        dense = d.toarray()
        assert ((dense == 0) | (dense == 1)).all() and (dense.sum(1) == 1).all()  # selection, as the official D
        np.testing.assert_allclose(np.asarray(u.sum(1)).ravel(), 1.0, rtol=1e-9)
        assert (np.diff(u.indptr) <= 3).all()
    for a, n_l in zip(h.adjacency, h.sizes, strict=True):
        dense = a.toarray()
        assert dense.shape == (n_l, n_l) and (dense == dense.T).all() and dense.diagonal().sum() == 0
        assert (dense.sum(1) > 0).all(), "every coarse vertex has a neighbour"


def test_upsampling_the_downsampled_sphere_stays_near_it(sphere):
    verts, faces = sphere
    h = build_hierarchy(verts, faces, levels=1)
    x = torch.as_tensor(verts, dtype=torch.float64)[None]
    coarse = h.downsample(x, 1)
    back = h.upsample(coarse, 0, 1)
    assert back.shape == x.shape
    assert (back - x).norm(dim=-1).max() < 0.6  # unit sphere, a quarter of the vertices kept
    kept = h.down[0].indices
    torch.testing.assert_close(back[0, kept], x[0, kept])  # kept vertices come back exactly


def test_save_and_load_round_trip(tmp_path, sphere):
    h = build_hierarchy(*sphere, levels=2)
    h2 = MeshHierarchy.load(h.save(tmp_path / "h.npz"))
    assert h2.sizes == h.sizes
    for a, b in zip(h.down + h.up + h.adjacency, h2.down + h2.up + h2.adjacency, strict=True):
        assert (a != b).nnz == 0


def test_reads_the_official_npz_layout(tmp_path, sphere):
    h = build_hierarchy(*sphere, levels=2)
    obj = lambda mats: np.array([sp.csc_matrix(m) for m in mats], dtype=object)  # noqa: E731
    path = tmp_path / "mesh_downsampling.npz"
    np.savez(path, A=np.array([2.0 * sp.csc_matrix(a) for a in h.adjacency], dtype=object),
             D=obj(h.down), U=obj(h.up), F=np.array([0]))
    got = MeshHierarchy.from_official_npz(path)
    assert got.sizes == h.sizes
    assert set(np.unique(got.adjacency[-1].data)) == {1.0}  # the official A holds 2.0: binarised


def test_official_npz_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="missing.npz"):
        MeshHierarchy.from_official_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros(3))
    with pytest.raises(CorruptDataError, match="bad.npz.*A, D and U"):
        MeshHierarchy.from_official_npz(bad)
