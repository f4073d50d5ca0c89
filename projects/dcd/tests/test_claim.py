"""The DCD claim end to end in its smoke configuration, through the shared claim command line."""

import json

from projects.dcd import claim


def test_claim_smoke_through_the_shared_command_line(tmp_path):
    record = claim.main(["--scale", "smoke", "--seeds", "3", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "dcd.json").read_text())
    assert saved["seeds"] == [3] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0, "epochs": 1}
    assert set(saved["per_seed"]) == {"static", "dy", "dcd", "pixels_ncm"}
    assert all(0 <= v[0] <= 100 for v in saved["per_seed"].values())
    assert [c["name"] for c in saved["comparisons"]] == ["dcd vs static", "DCD within 1 point of DY-Conv"]
    assert saved["comparisons"][1]["tolerance"] == 1.0 and "tolerance" not in saved["comparisons"][0]
    assert [g["name"] for g in saved["gates"][1:]] == ["static conv learns beyond raw pixels",
                                                       "dynamic convolution helps here (DY-Conv ahead of static)"]
    # every trained arm reports train accuracy and test accuracy with train-mode BN
    arms = saved["details"]["seeds"]["3"]
    assert all(0 <= arms[c]["train_acc1"] <= 1 and 0 <= arms[c]["val_acc1_batch_stats"] <= 1
               for c in ("static", "dy", "dcd"))
    assert saved["gates"][0] == {"name": "dcd_fewer_params", "description": claim.SPEC.gates[0].description,
                                 "per_seed": [True], "passed": True}
    assert record.verdict in ("does not hold", "premise absent")  # one seed never holds by the rule
    assert "| DCD |" in saved["table_md"] and "nearest class mean" in saved["table_md"]
    assert "margin − 2 SE > −1" in saved["table_md"]
