"""The DCD claim end to end in its smoke configuration, through the shared claim command line."""

import json

from projects.dcd import claim


def test_claim_smoke_through_the_shared_command_line(tmp_path):
    record = claim.main(["--scale", "smoke", "--seeds", "3", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "dcd.json").read_text())
    assert saved["seeds"] == [3] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0, "epochs": 1}
    assert set(saved["per_seed"]) == {"static", "dy", "dcd", "pixels_ncm"}
    assert all(0 <= v[0] <= 100 for v in saved["per_seed"].values())
    assert [c["name"] for c in saved["comparisons"]] == ["dcd vs static", "dcd vs dy"]
    assert saved["gates"][0] == {"name": "dcd_fewer_params", "description": claim.SPEC.gates[0].description,
                                 "per_seed": [True], "passed": True}
    assert record.verdict in ("does not hold", "premise absent")  # one seed never holds by the rule
    assert "| DCD |" in saved["table_md"] and "nearest class mean" in saved["table_md"]
