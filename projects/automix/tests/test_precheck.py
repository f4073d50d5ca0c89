"""The pre-check: a fresh Mix Block trained alone against a frozen network leaves uniform attention."""

import pytest

from projects.automix import precheck


@pytest.mark.slow
def test_mix_block_alone_learns_a_non_uniform_mask_against_a_frozen_network(tmp_path):
    # the script's defaults (x0.25, 1,000 images, lr 0.1), 450 Mix Block steps: ~3 min on one core
    out = precheck.main(["--steps", "450", "--every", "50", "--out", str(tmp_path / "trace.json")])
    first, last = out["trace"][0], out["trace"][-1]
    assert first["step"] == 0 and last["step"] == 450 and (tmp_path / "trace.json").is_file()
    assert first["mask_spatial_std"] < 1e-3  # openmixup's N(0, 0.01) init: uniform attention, a flat mask
    assert last["logit_spread"] > 10 * first["logit_spread"] and last["query_norm"] > first["query_norm"]
    assert last["mask_spatial_std"] > 0.02  # the claim's gate: a mask with spatial structure
