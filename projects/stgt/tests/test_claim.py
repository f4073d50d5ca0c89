"""The claim's script end to end at a tiny size (the real run is `make reproduce-stgt`)."""

import json
from pathlib import Path

import numpy as np
import pytest

from projects.stgt import claim
from projects.stgt.claim import main, paired


@pytest.mark.parametrize("extra", [[], pytest.param(["--appearance-dim", "4"], marks=pytest.mark.slow)])
def test_claim_runs_and_records(extra: list[str], tmp_path: Path):
    record = main(["--epochs", "1", "--det-seeds", "2", "--train-sequences", "2", "--dim", "16", "--no-picture",
                   "--methods", "byte", "stgt", "stgt_nocascade", "--out", str(tmp_path), *extra])
    saved = json.loads((tmp_path / "stgt.json").read_text())
    assert saved["ours"] == record.ours and saved["baseline_name"] == "ByteTrack-like"
    assert set(saved["details"]["runs"]) == {"byte", "stgt", "stgt_nocascade"}
    assert len(saved["details"]["runs"]["stgt"]) == 2
    held = saved["details"]["held_out"]
    assert 0 <= held["iou_hungarian"] <= 1 and held["detections"] > 0
    assert "Paired differences" in saved["table_md"] and saved["command"].startswith("python -m projects.stgt.claim")


def test_paired_differences_by_hand():
    runs = {"a": [{"idf1": 0.70}, {"idf1": 0.66}, {"idf1": 0.71}],
            "b": [{"idf1": 0.60}, {"idf1": 0.62}, {"idf1": 0.65}]}
    d = paired(runs, "a", "b", "idf1")  # differences 0.10, 0.04, 0.06
    assert d["mean"] == pytest.approx(0.2 / 3)
    assert d["se"] == pytest.approx(float((((0.1 - 0.2 / 3) ** 2 + (0.04 - 0.2 / 3) ** 2 + (0.06 - 0.2 / 3) ** 2)
                                           / 2) ** 0.5 / 3 ** 0.5))


def test_baselines_never_see_the_simulated_embeddings(monkeypatch: pytest.MonkeyPatch):
    seen = []

    def fake_run(self, seq):
        seen.append((self.method, seq.det_feat is not None))
        return np.zeros((0, 7))

    monkeypatch.setattr(claim.Tracker, "run", fake_run)
    monkeypatch.setattr(claim, "evaluate", lambda tracked, benchmark: {"OVERALL": dict.fromkeys(claim.KEYS, 0.0)})
    model = claim.TransMOT(dim=16, ff=32, appearance_dim=4)
    claim.run_all(model, seeds=1, methods=["sort", "byte", "stgt"])
    assert sorted(set(seen)) == [("byte", False), ("sort", False), ("stgt", True)]
