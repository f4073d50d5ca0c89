"""The claim's script end to end at a tiny size (the real run is `make reproduce-stgt`)."""

import json
from pathlib import Path

import pytest

from projects.stgt.claim import main


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
