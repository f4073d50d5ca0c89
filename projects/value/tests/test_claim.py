"""The claim script end to end at toy size: every model scored by the scorer into the mini leaderboard."""

import json
from pathlib import Path

from projects.value import claim, synthetic

TINY = {"tv": {"train": 5, "val": 2, "test": 2}, "yc2": {"train": 4, "val": 2, "test": 2}}


def test_claim_smoke(tmp_path: Path):
    root = synthetic.mini_value(tmp_path / "cache", TINY, seed=1)
    record = claim.main(["--root", str(root), "--at-steps", "3", "--st-steps", "2", "--ft-steps", "1",
                         "--hidden", "16", "--cross-layers", "1", "--heads", "2", "--retrieval-batch", "4",
                         "--qa-batch", "2", "--caption-batch", "2", "--out", str(tmp_path / "results")])
    saved = json.loads((tmp_path / "results" / "value.json").read_text())
    assert saved["paper"] == "value" and saved["ours"] == record.ours
    scores = saved["details"]["scores"]
    assert set(scores) == {"ST, frames + subtitles", "ST, frames only", "ST, subtitles only",
                           "AT, frames + subtitles", "AT→ST, frames + subtitles"}
    for name, by_task in scores.items():
        assert set(by_task) == {"tvr", "yc2r", "tvqa", "tvc"}, name
        assert saved["details"]["mean"][name] == round(sum(by_task.values()) / 4, 2)
    board = (tmp_path / "results" / "value-mini" / "leaderboard.md").read_text()
    assert board.count("\n") == 2 + 5 and "Mean (4 tasks)" in board
    assert len(list((tmp_path / "results" / "value-mini").glob("*.zip"))) == 5
