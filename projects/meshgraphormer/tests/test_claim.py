"""The claim's script end to end at a tiny size (the real run is `make reproduce-meshgraphormer`)."""

import json
from pathlib import Path

import numpy as np
import pytest

from projects.meshgraphormer.claim import main, paired


def test_claim_runs_and_records(tmp_path: Path):
    record = main(["--epochs", "1", "--size", "40", "--val-size", "8", "--image-size", "32", "--batch-size", "8",
                   "--width", "16", "--dims", "16", "16", "8", "--layers", "1", "--cache-dir", str(tmp_path),
                   "--out", str(tmp_path), "--picture", str(tmp_path / "hands.png")])
    saved = json.loads((tmp_path / "meshgraphormer.json").read_text())
    assert saved["ours"] == record.ours and saved["baseline_name"] == "no graph residual block"
    results = saved["details"]["results"]
    assert set(results) == {"graphormer", "no_graph", "template"}
    for name in ("graphormer", "no_graph"):
        assert results[name]["pa_mpvpe"] <= results[name]["mpve"] + 1e-6
        assert 0 <= results[name]["f5"] <= results[name]["f15"] <= 1
    assert set(saved["details"]["paired"]) == {"pa_mpjpe", "pa_mpvpe", "f5", "f15"}
    t = results["template"]
    learned = all(results[n]["pa_mpvpe"] < t["pa_mpvpe"] and results[n]["f5"] > t["f5"] for n in ("graphormer",
                                                                                                   "no_graph"))
    assert saved["details"]["learned_beyond_template"] == learned
    assert not saved["holds"] or learned, "the ablation cannot hold when the models do not beat the template"
    assert "Paired differences" in saved["table_md"] and saved["command"].startswith("python -m projects.")
    assert (tmp_path / "hands.png").stat().st_size > 1000


def test_paired_differences_by_hand():
    d = paired(np.array([3.0, 5.0, 4.0]), np.array([1.0, 2.0, 3.0]))  # differences 2, 3, 1
    assert d["mean"] == pytest.approx(2.0)
    assert d["se"] == pytest.approx(1.0 / np.sqrt(3))
