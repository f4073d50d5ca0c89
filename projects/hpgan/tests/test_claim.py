"""The HP-GAN claim end to end in its smoke configuration, through the shared claim command line."""

import json
import math

from projects.hpgan import claim


def test_claim_smoke_through_the_shared_command_line(tmp_path, one_thread):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "hpgan.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0,
                                                                                          "gan_epochs": 1}
    per_seed = saved["per_seed"]
    assert set(per_seed) == set(claim.ARMS) and all(len(v) == 2 for v in per_seed.values())
    for arm in ("hpgan", "deterministic", "hpgan_residual", "zero_velocity"):
        assert all(0 < v < 1e4 for v in per_seed[arm]), arm  # ADE in millimetres
    assert per_seed["zero_velocity"][0] == per_seed["zero_velocity"][1]  # the test windows do not depend on the seed
    assert all(1 <= v <= 3 for v in per_seed["critic_epochs"])  # 2 classifier epochs, never reached counts as 3
    assert all(0.5 <= v <= 1 for v in per_seed["scratch_half_epochs"])  # the target comes from the scratch run
    assert all(0 < v <= 100 for v in per_seed["scratch_best_acc"] + per_seed["majority_class_acc"])
    assert [(c["method"], c["baseline"], c["higher_is_better"]) for c in saved["comparisons"]] == [
        ("hpgan", "zero_velocity", False), ("hpgan", "deterministic", False),
        ("critic_epochs", "scratch_half_epochs", False)]
    assert [(g["method"], g["baseline"]) for g in saved["gates"]] == [("scratch_best_acc", "majority_class_acc")]
    assert all(c["n"] == 2 and math.isfinite(c["margin"]) for c in saved["comparisons"] + saved["gates"])
    assert saved["references"] == ["zero_velocity", "majority_class_acc"]
    assert record.verdict == saved["verdict"] in ("holds", "does not hold", "premise absent")
    assert (tmp_path / "futures.png").is_file()  # the picture goes to --out, once
    assert "| zero velocity (reference) |" in saved["table_md"] and "Verdict:" in saved["table_md"]
