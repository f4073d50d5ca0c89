"""The AutoMix claim end to end in its smoke configuration, through the shared claim command line."""

import json
import math

from projects.automix import claim


def test_claim_smoke_through_the_shared_command_line(tmp_path):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "automix.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0, "epochs": 1}
    assert set(saved["per_seed"]) == {"automix", "none", "mixup", "cutmix", "manifold", "pixels_ncm"}
    assert all(len(v) == 2 and all(0 <= x <= 100 for x in v) for v in saved["per_seed"].values())
    assert [c["name"] for c in saved["comparisons"]] == [f"automix vs {b}" for b in ("none", "mixup", "cutmix",
                                                                                     "manifold")]
    assert all(c["higher_is_better"] and c["n"] == 2 for c in saved["comparisons"])
    assert [g["name"] for g in saved["gates"]] == ["no mixing learns beyond raw pixels"]
    assert saved["references"] == ["pixels_ncm"] and saved["baseline_name"] == "no mixing"
    assert math.isclose(saved["ours"], sum(saved["per_seed"]["automix"]) / 2)
    assert record.verdict in ("holds", "does not hold", "premise absent")
    first = saved["details"]["seeds"]["0"]
    assert 0 <= first["automix"]["ema_top1_median"] <= 100 and set(first["automix"]["mask"]) == {
        "lam_0.2", "lam_0.5", "lam_0.8"}
    assert "picture" not in saved["details"]["seeds"]["1"]  # the picture is drawn for the first seed only
    assert (tmp_path / "mixed_samples.png").stat().st_size > 1000
    assert "| AutoMix (online network) |" in saved["table_md"] and "nearest class mean" in saved["table_md"]
    assert saved["command"].startswith("python -m projects.automix.claim --scale smoke")
