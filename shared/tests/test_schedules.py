"""Learning-rate schedule values against their formulas."""

import pytest

from shared.schedules import lr_factor


def test_lr_schedules():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)  # warm-up: (step + 1) / warmup
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert [lr_factor(s, 100, 0, "step", (30, 60, 90)) for s in (29, 30, 60, 95)] == pytest.approx(
        [1.0, 0.1, 0.01, 0.001])
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, 10, 0, "linear")
