"""Predictors and the GCN's graph: hand-checked adjacency, Kendall τ against scipy, fits that rank well."""

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from projects.weaknas.module import kendall_tau
from projects.weaknas.nets import GCN, op_graph, op_graph_structure
from projects.weaknas.predictors import GCNPredictor, MLPPredictor, RandomForestPredictor, make_predictor
from projects.weaknas.space import EDGES, OPS, all_arch_strings, encode
from shared.errors import UserFacingError


def test_op_graph_structure_by_hand():
    adj = op_graph_structure()
    # op nodes 1..6 are edges (0,1) (0,2) (1,2) (0,3) (1,3) (2,3)
    expected = {(0, 1), (0, 2), (0, 4),            # input feeds the ops on edges leaving node 0
                (1, 3), (1, 5),                    # op(0->1) feeds ops leaving node 1: (1,2), (1,3)
                (2, 6), (3, 6),                    # ops into node 2 feed op(2->3)
                (4, 7), (5, 7), (6, 7)}            # ops into node 3 feed the output
    assert {tuple(map(int, ij)) for ij in adj.nonzero()} == expected


def test_none_ops_are_cut_from_the_graph():
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
    feats, adj = op_graph(torch.from_numpy(encode([arch])))
    dead = [1 + EDGES.index(e) for e in ((0, 2), (1, 2), (2, 3))]
    for node in dead:
        assert adj[0, node].sum() == 0 and adj[0, :, node].sum() == 0
        assert feats[0, node, 2 + OPS.index("none")] == 1
    assert adj[0, 0, 1] == 1 and adj[0, 1, 5] == 1 and adj[0, 5, 7] == 1


def test_gcn_normalised_adjacency_rows_sum_to_one():
    adj = op_graph_structure()[None]
    a_hat = GCN.normalised_adjacency(adj)[0]
    torch.testing.assert_close(a_hat.sum(1), torch.ones(8))
    assert a_hat[0, 1] == pytest.approx(1 / 4)  # node 0: self + 3 neighbours (1, 2, 4)


def test_kendall_tau_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    b[:25] = a[:25] * 2  # partly concordant
    assert float(kendall_tau(torch.tensor(a), torch.tensor(b))) == pytest.approx(kendalltau(a, b).statistic)


def _learnable(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=30)
    X = encode(all_arch_strings())
    idx = rng.choice(len(X), size=n, replace=False)
    return X, X @ score, idx


@pytest.mark.parametrize("predictor", [
    MLPPredictor((64, 64), max_iter=200),
    RandomForestPredictor(n_estimators=50, n_jobs=1),
    GCNPredictor(),  # the defaults: 3 layers of 64, 100 epochs
], ids=["mlp", "rf", "gcn"])
def test_predictors_rank_unseen_cells(predictor):
    X, y, train = _learnable(300)
    predictor.fit(X[train], 90 + 3 * y[train])  # any scale: predictors standardise
    held_out = np.setdiff1d(np.arange(len(X)), train)[:2000]
    tau = kendalltau(predictor.predict(X[held_out]), y[held_out]).statistic
    assert tau > 0.5, tau


def test_gcn_predictor_is_deterministic_given_its_seed():
    X, y, train = _learnable(64, seed=1)
    a = GCNPredictor(hidden=16, layers=2, epochs=5, seed=3).fit(X[train], y[train]).predict(X[:100])
    b = GCNPredictor(hidden=16, layers=2, epochs=5, seed=3).fit(X[train], y[train]).predict(X[:100])
    np.testing.assert_array_equal(a, b)


def test_unknown_predictor():
    with pytest.raises(UserFacingError, match="choose one of"):
        make_predictor("xgboost")


def test_predictions_are_in_accuracy_units():
    X, y, train = _learnable(200, seed=2)
    acc = 90 + 2 * y
    pred = MLPPredictor((64, 64), max_iter=200).fit(X[train], acc[train]).predict(X[train])
    assert abs(pred.mean() - acc[train].mean()) < 0.5 and np.corrcoef(pred, acc[train])[0, 1] > 0.9
