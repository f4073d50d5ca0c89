"""The graph transformer's layers against their formulas, and the loss on the assignment matrix."""

import math

import numpy as np
import pytest
import torch

from projects.stgt.evaluate import box_iou
from projects.stgt.losses import assignment_loss
from projects.stgt.nets import (
    STGT,
    ChebConv,
    GraphMultiheadAttention,
    box_features,
    pairwise_iou,
    scaled_laplacian,
    tracklet_window,
)


def cxcywh(xywh: np.ndarray) -> torch.Tensor:
    return torch.tensor(box_features(xywh, (1.0, 1.0)), dtype=torch.float64)


def test_pairwise_iou_matches_the_evaluators():
    rng = np.random.default_rng(0)
    xywh = np.c_[rng.uniform(0, 50, (6, 2)), rng.uniform(5, 30, (6, 2))]
    np.testing.assert_allclose(pairwise_iou(cxcywh(xywh)).numpy(), box_iou(xywh, xywh), atol=1e-12)


def test_graph_attention_is_masked_softmax_of_logits_times_iou():
    torch.manual_seed(0)
    attn = GraphMultiheadAttention(dim=8, heads=2).double()
    x = torch.randn(4, 8, dtype=torch.float64)
    w = torch.tensor([[1, .5, 0, 0], [.5, 1, .2, 0], [0, .2, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)
    got = attn.attention(x, w)
    q, k = attn.q(x).view(4, 2, 4), attn.k(x).view(4, 2, 4)
    for h in range(2):
        for i in range(4):
            logits = [(q[i, h] @ k[j, h]).item() / math.sqrt(4) * w[i, j].item() for j in range(4)]
            edges = [j for j in range(4) if w[i, j] > 0]
            denom = sum(math.exp(logits[j]) for j in edges)
            expected = [math.exp(logits[j]) / denom if j in edges else 0.0 for j in range(4)]
            np.testing.assert_allclose(got[h, i].detach().numpy(), expected, atol=1e-12)
    assert got[:, 3, 3].allclose(torch.ones(2, dtype=torch.float64))  # an isolated node attends to itself


def test_chebconv_is_the_chebyshev_polynomial_of_the_scaled_laplacian():
    torch.manual_seed(0)
    conv = ChebConv(3, 2, k=3).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    w = torch.tensor([[1, .5, 0, .1], [.5, 1, .2, 0], [0, .2, 1, 0], [.1, 0, 0, 1]], dtype=torch.float64)
    a = w - torch.eye(4, dtype=torch.float64)
    d = torch.diag(a.sum(1).rsqrt())
    lap = torch.eye(4, dtype=torch.float64) - d @ a @ d  # normalised Laplacian, λ_max taken as 2
    lt = lap - torch.eye(4, dtype=torch.float64)
    assert scaled_laplacian(w).allclose(lt)
    t0, t1, t2 = x, lt @ x, 2 * lt @ lt @ x - x
    expected = conv.lins[0](t0) + conv.lins[1](t1) + conv.lins[2](t2)
    assert conv(x, scaled_laplacian(w)).allclose(expected)


def _inputs(n=3, m=4, t=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    tracks = torch.rand(1, n, t, 4, generator=g) * torch.tensor([1, 1, .2, .4]) + torch.tensor([0, 0, .05, .1])
    dets = torch.rand(1, m, 4, generator=g) * torch.tensor([1, 1, .2, .4]) + torch.tensor([0, 0, .05, .1])
    return tracks, torch.ones(1, n, dtype=torch.bool), dets, torch.ones(1, m, dtype=torch.bool)


def test_stgt_shapes_rows_sum_to_one_and_padding_changes_nothing():
    torch.manual_seed(0)
    net = STGT(dim=16, heads=4, ff=32, window=5, dropout=0.0).eval()
    tracks, tm, dets, dm = _inputs()
    logits = net(tracks, tm, dets, dm)
    assert logits.shape == (1, 4 + 1, 3 + 1)
    det_prob, sink = net.assignment(tracks, tm, dets, dm)
    assert det_prob.shape == (1, 4, 4) and sink.shape == (1, 3)
    assert det_prob.sum(-1).allclose(torch.ones(1, 4))  # each detection: its tracklets + the source
    # the same sample padded with 2 fake tracklets and 3 fake detections
    pt = torch.cat([tracks, torch.rand(1, 2, 5, 4)], 1)
    pd = torch.cat([dets, torch.rand(1, 3, 4)], 1)
    ptm = torch.tensor([[True, True, True, False, False]])
    pdm = torch.tensor([[True] * 4 + [False] * 3])
    padded = net(pt, ptm, pd, pdm)
    assert padded[:, :4, :3].allclose(logits[:, :4, :3], atol=1e-5)  # detections x tracklets
    assert padded[:, :4, -1].allclose(logits[:, :4, -1], atol=1e-5)  # the source column
    assert padded[:, -1, :3].allclose(logits[:, -1, :3], atol=1e-5)  # the sink row
    pprob, psink = net.assignment(pt, ptm, pd, pdm)
    assert pprob[0, :4, 3:5].abs().max() < 1e-12  # no probability on a padded tracklet
    assert pprob[0, :4, [0, 1, 2, 5]].allclose(det_prob[0], atol=1e-5)


def test_dense_variant_ignores_the_iou_graph():
    torch.manual_seed(0)
    sparse = STGT(dim=16, heads=4, ff=32, dropout=0.0).eval()
    dense = STGT(dim=16, heads=4, ff=32, dropout=0.0, graph="dense").eval()
    dense.load_state_dict(sparse.state_dict())
    tracks, tm, dets, dm = _inputs()
    far = tracks.clone()
    far[..., 0] += torch.arange(3).view(1, 3, 1) * 10  # no two tracklets overlap: the sparse graph is diagonal
    assert not sparse(far, tm, dets, dm).allclose(dense(far, tm, dets, dm))
    w = sparse._graph(far[:, :, 0], tm)
    assert w[0].allclose(torch.eye(3))
    assert dense._graph(far[:, :, 0], tm).allclose(torch.ones(1, 3, 3))


def test_tracklet_window_carries_boxes_forward():
    b = [np.array([i, 0, 1, 1.0]) for i in range(3)]
    history = [(3, b[0], 0.9), (5, b[1], 0.9), (6, b[2], 0.9)]
    win = tracklet_window(history, frame=8, window=5)  # frames 3..7
    np.testing.assert_array_equal(win[:, 0], [0, 0, 1, 2, 2])
    win = tracklet_window(history, frame=5, window=4)  # frames 1..4: before the first box, the first box
    np.testing.assert_array_equal(win[:, 0], [0, 0, 0, 0])


def test_assignment_loss_by_hand():
    logits = torch.tensor([[[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.0], [1.0, -2.0, 0.0, 9.0]]])  # M=2, N=2+pad
    track_mask = torch.tensor([[True, True, False]])
    det_mask = torch.tensor([[True, True]])
    det_target = torch.tensor([[0, 3]])  # detection 0 → tracklet 0, detection 1 → the source (column N = 3)
    sink_target = torch.tensor([[0.0, 1.0, 0.0]])
    loss, parts = assignment_loss(logits, det_target, sink_target, track_mask, det_mask, sink_weight=0.5)

    def log_softmax(row, k):  # the padded column 2 is excluded
        cols = [row[0], row[1], row[3]]
        return row[k] - math.log(sum(math.exp(c) for c in cols))

    det = -(log_softmax([2.0, 0.5, -1.0, 0.0], 0) + log_softmax([0.1, 0.2, 0.3, 0.0], 3)) / 2

    def sig(v):
        return 1 / (1 + math.exp(-v))

    sink = -(math.log(1 - sig(1.0)) + math.log(sig(-2.0))) / 2
    assert parts["det"].item() == pytest.approx(det, rel=1e-6)
    assert parts["sink"].item() == pytest.approx(sink, rel=1e-6)
    assert loss.item() == pytest.approx(det + 0.5 * sink, rel=1e-6)


def test_sparse_edge_list_path_equals_the_masked_one():
    torch.manual_seed(0)
    masked = STGT(dim=16, heads=4, ff=32, dropout=0.0).eval()
    sparse = STGT(dim=16, heads=4, ff=32, dropout=0.0, graph="sparse").eval()
    sparse.load_state_dict(masked.state_dict())
    tracks, tm, dets, dm = _inputs(n=6, m=7)
    tm[0, 5] = False  # with padding
    dm[0, 6] = False
    a, b = masked(tracks, tm, dets, dm), sparse(tracks, tm, dets, dm)
    assert a[:, :6, :5].allclose(b[:, :6, :5], atol=1e-5) and a[:, -1, :5].allclose(b[:, -1, :5], atol=1e-5)
    attn = masked.spatial[0].attn.double()
    x = torch.randn(3, 4, 16, dtype=torch.float64)
    w = pairwise_iou(tracks[0, :4, :3].transpose(0, 1).double()) * 1.0  # 3 graphs of 4 nodes
    w = torch.maximum(w, torch.eye(4, dtype=torch.float64))
    from projects.stgt.nets import edge_list

    dense_out = attn(x, w)
    sparse_out = attn.forward_sparse(x.reshape(-1, 16), *edge_list(w)).reshape(3, 4, 16)
    assert dense_out.allclose(sparse_out, atol=1e-10)
