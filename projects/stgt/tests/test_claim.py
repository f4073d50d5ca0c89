"""The claim end to end at a tiny size through the shared claim command line (the real run is
`make reproduce-stgt`)."""

import json
from pathlib import Path

import numpy as np
import pytest

from projects.stgt import claim


@pytest.mark.parametrize("extra", [[], pytest.param(["--appearance-dim", "4"], marks=pytest.mark.slow)])
def test_claim_smoke_through_the_shared_command_line(extra: list[str], tmp_path: Path):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path), *extra])
    saved = json.loads((tmp_path / "stgt.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0, "epochs": 1}
    arms = set(claim.METHODS) | {f"{m}_hota" for m in claim.HOTA_ARMS}
    assert set(saved["per_seed"]) == arms and saved["ours"] == record.ours
    assert all(len(v) == 2 and -100 <= min(v) and max(v) <= 100 for v in saved["per_seed"].values())
    assert [c["name"] for c in saved["comparisons"]] == [c.name for c in claim.SPEC.comparisons]
    assert all(c["n"] == 2 for c in saved["comparisons"])
    gate = saved["gates"][0]
    assert gate["name"] == "learned_association" and len(gate["per_seed"]) == 2
    assert saved["references"] == ["sort", "byte", "sort_hota", "byte_hota"]
    seed1 = saved["details"]["seeds"]["1"]
    assert seed1["det_seeds"] == [100] and 0 <= seed1["held_out"]["iou_hungarian"] <= 1
    assert seed1["held_out"]["detections"] > 0 and seed1["video"] is None
    assert "Verdict:" in saved["table_md"] and "(reference, no learning)" in saved["table_md"]
    assert not list(tmp_path.glob("vtest.*"))  # the smoke scale makes no picture


def test_detector_draws_differ_across_seeds():
    assert claim.det_seeds(0, 3) == [0, 1, 2] and claim.det_seeds(2, 2) == [200, 201]


def test_baselines_never_see_the_simulated_embeddings(monkeypatch: pytest.MonkeyPatch):
    seen = []

    def fake_run(self, seq):
        seen.append((self.method, seq.det_feat is not None))
        return np.zeros((0, 7))

    monkeypatch.setattr(claim.Tracker, "run", fake_run)
    monkeypatch.setattr(claim, "evaluate", lambda tracked, benchmark: {"OVERALL": dict.fromkeys(claim.KEYS, 0.0)})
    model = claim.TransMOT(dim=16, ff=32, appearance_dim=4)
    claim.run_all(model, seeds=[0], methods=["sort", "byte", "stgt"])
    assert sorted(set(seen)) == [("byte", False), ("sort", False), ("stgt", True)]
