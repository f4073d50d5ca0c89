"""The claim end to end in its smoke configuration, through the shared claim command line."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from projects.meshgraphormer import claim
from projects.meshgraphormer.claim import paired


def test_claim_smoke_through_the_shared_command_line(tmp_path: Path):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path), "--cache-dir",
                         str(tmp_path)])
    saved = json.loads((tmp_path / "meshgraphormer.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0, "epochs": 1}
    assert set(saved["per_seed"]) == {f"{m}_{k}" for m in ("graphormer", "no_graph", "template")
                                      for k in ("pa_mpvpe", "pa_mpjpe", "f5")}
    assert all(len(v) == 2 and all(math.isfinite(x) and x >= 0 for x in v) for v in saved["per_seed"].values())
    assert saved["per_seed"]["template_pa_mpvpe"][0] == saved["per_seed"]["template_pa_mpvpe"][1]  # same hands
    assert [(c["method"], c["baseline"], c["higher_is_better"]) for c in saved["comparisons"]] == [
        ("graphormer_pa_mpvpe", "no_graph_pa_mpvpe", False), ("graphormer_pa_mpjpe", "no_graph_pa_mpjpe", False)]
    assert [g["baseline"] for g in saved["gates"]] == ["template_pa_mpvpe"] * 2 + ["template_f5"] * 2
    assert saved["references"] == ["template_pa_mpvpe", "template_pa_mpjpe", "template_f5"]
    assert saved["ours"] == record.ours and saved["baseline_name"] == "no graph residual block"
    for seed in ("0", "1"):
        results = saved["details"]["seeds"][seed]["results"]
        for name in ("graphormer", "no_graph"):
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
