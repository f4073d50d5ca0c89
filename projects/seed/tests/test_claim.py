"""The SEED claim end to end in its smoke configuration, through the shared claim command line."""

import json
import math

from projects.seed import claim


def test_claim_smoke_through_the_shared_command_line(tmp_path, one_thread):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "seed.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke"
    assert saved["budget"] == {"fraction": 1.0, "teacher_epochs": 1, "student_epochs": 1}
    assert set(saved["per_seed"]) == set(claim.ARMS)
    assert all(len(v) == 2 and all(0 <= x <= 100 and math.isfinite(x) for x in v) for v in saved["per_seed"].values())
    assert [c["name"] for c in saved["comparisons"]] == ["SEED vs MoCo-v2 student, linear top-1",
                                                        "SEED vs MoCo-v2 student, kNN top-1"]
    assert [(g["method"], g["baseline"]) for g in saved["gates"]] == [("teacher_moco", "student_moco"),
                                                                     ("teacher_moco_knn", "student_moco_knn")]
    assert all(c["n"] == 2 and math.isfinite(c["margin"]) for c in saved["comparisons"] + saved["gates"])
    assert saved["references"] == ["random_student", "random_student_knn", "pixels", "pixels_knn"]
    assert record.verdict == saved["verdict"] in ("holds", "does not hold", "premise absent")
    details = saved["details"]["seeds"]["0"]
    assert details["teacher_moco"]["params"] > 10 * details["student_moco"]["params"] > 0
    assert details["student_seed"]["params"] == details["student_moco"]["params"] == details["random_student"]["params"]
    assert "| raw pixels (784) (reference, no learning) |" in saved["table_md"] and "Verdict:" in saved["table_md"]
