"""The claim end to end at toy size through the shared claim command line: every model scored by the scorer into
the mini leaderboard."""

import json
from pathlib import Path

from projects.value import claim


def test_claim_smoke_through_the_shared_command_line(tmp_path: Path):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path),
                         "--cache-dir", str(tmp_path / "cache")])
    saved = json.loads((tmp_path / "value.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke" and saved["ours"] == record.ours
    assert saved["budget"] == {"fraction": 1.0, "ST steps per task": 2, "AT steps": 3, "AT→ST steps per task": 1}
    assert set(saved["per_seed"]) == set(claim.ARMS) and saved["references"] == ["untrained"]
    assert [c["name"] for c in saved["comparisons"]] == ["at_st vs st_both", "st_both vs st_video",
                                                         "st_both vs st_subtitle"]
    assert [g["name"] for g in saved["gates"]] == ["ST frames + subtitles learns beyond the untrained model"]
    for seed in ("0", "1"):
        scores = saved["details"]["seeds"][seed]["scores"]
        for arm, by_task in scores.items():
            assert set(by_task) == {"tvr", "yc2r", "tvqa", "tvc"}, arm
            assert saved["per_seed"][arm][int(seed)] == round(sum(by_task.values()) / 4, 2)
            assert all(v >= 0 for v in by_task.values())
    board = (tmp_path / "value-mini" / "leaderboard.md").read_text()
    assert board.count("\n") == 2 + 2 * len(claim.ARMS) and "Mean (4 tasks)" in board
    assert len(list((tmp_path / "value-mini").glob("*.zip"))) == 2 * len(claim.ARMS)
    assert "Verdict:" in saved["table_md"] and "(reference, no learning)" in saved["table_md"]
