"""The claim end to end in its smoke configuration, through the shared claim command line."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from projects.meshgraphormer import claim
from projects.meshgraphormer.claim import paired


def test_claim_smoke_through_the_shared_command_line(tmp_path: Path):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path), "--cache-dir",
                         str(tmp_path)])
    saved = json.loads((tmp_path / "meshgraphormer.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0, "epochs": 1}
    arms = {f"{m}_{k}" for m in ("graphormer", "no_graph", "mean", "ridge", "template")
            for k in ("pa_mpvpe", "pa_mpjpe", "f5")}
    assert set(saved["per_seed"]) == arms | {"mean_gate_pa_mpvpe"}
    assert all(len(v) == 2 and all(math.isfinite(x) for x in v) for v in saved["per_seed"].values())
    for ref in ("mean", "ridge", "template"):  # same hands and features for every seed
        assert saved["per_seed"][f"{ref}_pa_mpvpe"][0] == saved["per_seed"][f"{ref}_pa_mpvpe"][1]
    gate = saved["per_seed"]["mean_gate_pa_mpvpe"]
    assert gate == pytest.approx([v - claim.GATE_MM for v in saved["per_seed"]["mean_pa_mpvpe"]])
    assert [(c["method"], c["baseline"], c["higher_is_better"]) for c in saved["comparisons"]] == [
        ("graphormer_pa_mpvpe", "no_graph_pa_mpvpe", False), ("graphormer_pa_mpjpe", "no_graph_pa_mpjpe", False)]
    assert [(g["method"], g["baseline"]) for g in saved["gates"]] == [
        ("graphormer_pa_mpvpe", "mean_gate_pa_mpvpe"), ("no_graph_pa_mpvpe", "mean_gate_pa_mpvpe")]
    assert set(saved["references"]) == arms - {f"{m}_{k}" for m in ("graphormer", "no_graph")
                                               for k in ("pa_mpvpe", "pa_mpjpe", "f5")} | {"mean_gate_pa_mpvpe"}
    assert saved["ours"] == record.ours and saved["baseline_name"] == "no graph residual block"
    for seed in ("0", "1"):
        results = saved["details"]["seeds"][seed]["results"]
        for name in ("graphormer", "no_graph", "mean", "ridge"):
            assert results[name]["pa_mpvpe"] <= results[name]["mpve"] + 1e-6
            assert 0 <= results[name]["f5"] <= results[name]["f15"] <= 1
        assert set(saved["details"]["seeds"][seed]["paired_over_hands"]) == {"pa_mpjpe", "pa_mpvpe", "f5", "f15"}
    assert "picture" not in saved["details"]["seeds"]["1"]  # drawn for the first seed only
    assert (tmp_path / "hands.png").stat().st_size > 1000
    assert "over test hands" in saved["table_md"] and saved["command"].startswith("python -m projects.")


def test_paired_differences_by_hand():
    d = paired(np.array([3.0, 5.0, 4.0]), np.array([1.0, 2.0, 3.0]))  # differences 2, 3, 1
    assert d["mean"] == pytest.approx(2.0)
    assert d["se"] == pytest.approx(1.0 / np.sqrt(3))


def test_ridge_recovers_a_linear_map_and_shrinks_with_the_penalty():
    torch.manual_seed(0)
    x = torch.randn(200, 5, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0, 0.5, 1.0], dtype=torch.float64)
    w = torch.randn(5, 4, dtype=torch.float64)
    y = x @ w + 0.3
    fit = claim.ridge_fit(x, y, 1e-6)
    torch.testing.assert_close(claim.ridge_predict(fit, x[:7]), y[:7], atol=1e-5, rtol=1e-5)
    heavy = claim.ridge_predict(claim.ridge_fit(x, y, 1e9), x[:7])  # infinite penalty: the mean of y
    torch.testing.assert_close(heavy, y.mean(0).expand(7, -1), atol=1e-3, rtol=1e-3)


def test_references_are_the_training_mean_and_a_ridge_fit_on_training_hands_only():
    rng = np.random.default_rng(0)
    n, v = 60, 10
    verts = rng.normal(size=(n, 30, 3)).astype(np.float32) * 0.01
    arrays = {"vertices": verts}
    feats = {"global_features": torch.from_numpy(rng.normal(size=(n, 4)).astype(np.float32)),
             "grid_features": torch.from_numpy(rng.normal(size=(n, 2, 4)).astype(np.float32))}
    setting = {"size": n, "val_size": v, "image_size": 8, "feature_size": 8}
    refs = claim.references(setting, arrays, feats, "test-references")
    assert refs["mean"].shape == (v, 30, 3) and refs["ridge"].shape == (v, 30, 3)
    torch.testing.assert_close(refs["mean"][0], torch.from_numpy(verts[:n - v].mean(0)))
    arrays2 = {"vertices": verts.copy()}
    arrays2["vertices"][n - v:] += 1.0  # changing the held-out hands changes neither reference
    claim._REFERENCES.clear()
    refs2 = claim.references(setting, arrays2, feats, "test-references")
    torch.testing.assert_close(refs2["mean"], refs["mean"])
    torch.testing.assert_close(refs2["ridge"], refs["ridge"])
    claim._REFERENCES.clear()
