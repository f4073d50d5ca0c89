"""The AutoMix claim end to end in its smoke configuration, through the shared claim command line."""

import json
import math

from projects.automix import claim


def test_claim_smoke_through_the_shared_command_line(tmp_path):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "automix.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke" and saved["budget"] == {"fraction": 1.0, "epochs": 2}
    assert set(saved["per_seed"]) == {"automix", "none", "mixup", "cutmix", "manifold", "best_handcrafted",
                                      "pixels_ncm"}
    for s in range(2):  # the premise arm is the best of the three hand-crafted policies on each seed
        assert saved["per_seed"]["best_handcrafted"][s] == max(saved["per_seed"][p][s]
                                                               for p in ("mixup", "cutmix", "manifold"))
    assert all(len(v) == 2 and all(0 <= x <= 100 for x in v) for v in saved["per_seed"].values())
    assert [c["name"] for c in saved["comparisons"]] == [f"automix vs {b}" for b in ("none", "mixup", "cutmix",
                                                                                     "manifold")]
    assert all(c["higher_is_better"] and c["n"] == 2 for c in saved["comparisons"])
    assert [g["name"] for g in saved["gates"]] == ["no mixing learns beyond raw pixels",
                                                   "mixing helps here: a hand-crafted policy beats no mixing",
                                                   "mask_has_spatial_structure"]
    mask_gate = saved["gates"][2]
    stds = [claim.mean_mask_std(saved["details"]["seeds"][str(s)]["automix"]) for s in range(2)]
    assert mask_gate["per_seed"] == [v > claim.MASK_STD_GATE for v in stds]
    assert saved["references"] == ["pixels_ncm"] and saved["baseline_name"] == "no mixing"
    assert math.isclose(saved["ours"], sum(saved["per_seed"]["automix"]) / 2)
    assert record.verdict in ("holds", "does not hold", "premise absent")
    first = saved["details"]["seeds"]["0"]
    assert 0 <= first["automix"]["ema_top1_median"] <= 100 and set(first["automix"]["mask"]) == {
        "lam_0.2", "lam_0.5", "lam_0.8"}
    trace = first["automix"]["trace"]  # the Mix Block traced over training, from step 0 to the last step
    assert trace[0]["step"] == 0 and trace[-1]["step"] == 2 * 128 // 32
    assert all(set(t) == {"step", "logit_spread", "query_norm", "mask_spatial_std"} for t in trace)
    assert "picture" not in saved["details"]["seeds"]["1"]  # the pictures are drawn for the first seed only
    assert (tmp_path / "mixed_samples.png").stat().st_size > 1000
    assert (tmp_path / "masks_over_training.png").stat().st_size > 1000
    # validation ran only in the last median_of epochs (smoke: 1 of 2)
    assert len(first["none"]["history"]) == 1 and len(first["automix"]["ema_history"]) == 1
    assert "| AutoMix (online network) |" in saved["table_md"] and "nearest class mean" in saved["table_md"]
    assert saved["command"].startswith("python -m projects.automix.claim --scale smoke")
