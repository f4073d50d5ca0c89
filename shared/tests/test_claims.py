"""The claim protocol: the paired rule, gates, the shared command line and where records go."""

import json
import math
from pathlib import Path

import pytest

from shared import claims
from shared.claims import Check, ClaimSpec, Comparison, SeedRun, paired_margin, verdict
from shared.results import ClaimRecord, load_records, render_table


def test_paired_margin_by_hand():
    # differences 2, 1, 3: mean 2, sd 1, se 1/sqrt(3) = 0.577; 2 > 2 * 0.577 -> holds
    m = paired_margin([12.0, 11.0, 13.0], [10.0, 10.0, 10.0])
    assert m["margin"] == pytest.approx(2.0) and m["se"] == pytest.approx(1 / math.sqrt(3))
    assert m["holds"] and m["differences"] == [2.0, 1.0, 3.0] and m["n"] == 3


def test_margin_inside_two_standard_errors_does_not_hold():
    # differences 3, -1, 1: mean 1, sd 2, se 2/sqrt(3) = 1.155; 1 < 2.31 -> does not hold
    m = paired_margin([13.0, 9.0, 11.0], [10.0, 10.0, 10.0])
    assert m["margin"] == pytest.approx(1.0) and m["se"] == pytest.approx(2 / math.sqrt(3))
    assert not m["holds"]


def test_lower_is_better_flips_the_sign_and_one_seed_never_holds():
    m = paired_margin([5.0, 6.0, 4.0], [8.0, 8.0, 8.0], higher_is_better=False)  # errors: fewer is better
    assert m["margin"] == pytest.approx(3.0) and m["holds"]
    one = paired_margin([20.0], [10.0])
    assert one["margin"] == 10.0 and math.isnan(one["se"]) and not one["holds"]


def test_non_inferiority_tolerance_by_hand():
    # differences -0.5, -1.5, -1.0: mean -1, sd 0.5, se 0.289; lower bound -1 - 0.577 = -1.577
    method, baseline = [9.5, 8.5, 9.0], [10.0, 10.0, 10.0]
    assert not paired_margin(method, baseline)["holds"]  # superiority fails
    assert paired_margin(method, baseline, tolerance=2.0)["holds"]  # -1.577 > -2
    tight = paired_margin(method, baseline, tolerance=1.5)  # -1.577 < -1.5
    assert not tight["holds"] and tight["tolerance"] == 1.5
    assert Comparison("a", "b", tolerance=2.0).measure({"a": method, "b": baseline})["holds"]
    with pytest.raises(ValueError, match="tolerance"):
        paired_margin(method, baseline, tolerance=-1.0)


def test_non_finite_value_fails_the_comparison_and_unpaired_values_are_refused():
    assert not paired_margin([12.0, float("nan"), 13.0], [10.0, 10.0, 10.0])["holds"]
    with pytest.raises(ValueError, match="same seeds"):
        paired_margin([1.0, 2.0], [1.0])


def test_verdict_premise_absent_before_anything_else():
    ok, bad = {"holds": True}, {"holds": False}
    assert verdict([ok, ok], [{"passed": True}]) == "holds"
    assert verdict([ok, bad], []) == "does not hold"
    assert verdict([ok, ok], [{"passed": False}]) == "premise absent"
    assert verdict([], []) == "does not hold"


SPEC = ClaimSpec(paper="dcd", claim="a beats b", metric="top-1", method="a", baseline="b", baseline_name="B",
                 comparisons=[Comparison("a", "b")], references=["chance"],
                 gates=[Comparison("b", "chance", label="b learns"), Check("small", "a is smaller")])


def fake_seed(values: dict[int, tuple[float, float]], small: bool = True):
    def run_seed(ctx, seed):
        epochs = ctx.scaled("epochs", 8)
        a, b = values[seed]
        return SeedRun(values={"a": a * ctx.fraction, "b": b * ctx.fraction, "chance": 10.0},
                       checks={"small": small}, details={"epochs": epochs})
    return run_seed


def test_run_writes_the_record_with_seeds_margins_and_gates(tmp_path: Path):
    rec = claims.run(SPEC, fake_seed({0: (80, 70), 1: (82, 71), 2: (81, 70)}),
                     ["--seeds", "0", "1", "2", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "dcd.json").read_text())
    assert saved["verdict"] == "holds" == rec.verdict and saved["seeds"] == [0, 1, 2]
    assert saved["per_seed"] == {"a": [80, 82, 81], "b": [70, 71, 70], "chance": [10, 10, 10]}
    assert saved["comparisons"][0]["margin"] == pytest.approx(32 / 3)
    assert [g["passed"] for g in saved["gates"]] == [True, True]
    assert saved["budget"] == {"fraction": 1.0, "epochs": 8} and saved["scale"] == "cpu"
    assert saved["ours"] == pytest.approx(81.0) and saved["baseline"] == pytest.approx(211 / 3)
    assert "(reference, no learning)" in rec.table_md and "Verdict: **holds**" in rec.table_md


def test_failed_check_is_premise_absent(tmp_path: Path):
    rec = claims.run(SPEC, fake_seed({0: (80, 70), 1: (82, 71), 2: (81, 70)}, small=False),
                     ["--out", str(tmp_path)])
    assert rec.verdict == "premise absent" and rec.seeds == [0, 1, 2]


def test_out_leaves_results_untouched(tmp_path: Path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setattr(claims, "RESULTS_DIR", results)
    claims.run(SPEC, fake_seed({7: (1, 0), 8: (2, 0)}), ["--seeds", "7", "8", "--out", str(tmp_path / "x")])
    assert list(results.iterdir()) == [] and (tmp_path / "x" / "dcd.json").is_file()
    claims.run(SPEC, fake_seed({0: (1, 0), 1: (2, 0), 2: (3, 0)}), [])
    assert (results / "dcd.json").is_file()  # without --out: the committed place


def test_sweep_records_the_margin_at_each_budget(tmp_path: Path):
    claims.run(SPEC, fake_seed({0: (80, 70), 1: (82, 71), 2: (81, 70)}), ["--sweep", "--out", str(tmp_path)])
    sweep = json.loads((tmp_path / "dcd-sweep" / "cpu" / "sweep.json").read_text())
    assert [r["budget"]["epochs"] for r in sweep["rows"]] == [2, 4, 8]
    margins = [r["comparisons"][0]["margin"] for r in sweep["rows"]]
    assert margins == pytest.approx([32 / 12, 32 / 6, 32 / 3])  # the fake scales with the budget
    assert sweep["command"].startswith("python -m projects.dcd.claim --sweep")
    assert (tmp_path / "dcd-sweep" / "cpu" / "budget-0.25" / "dcd.json").is_file()


def test_command_line_errors(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        claims.run(SPEC, fake_seed({}), ["--seeds", "1", "1", "--out", str(tmp_path)])
    assert "repeats a seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        claims.run(SPEC, fake_seed({}), ["--scale", "smoke"])
    assert "--out" in capsys.readouterr().err


def test_table_renders_margin_and_verdict_and_gpu_rows(tmp_path: Path):
    rec = claims.run(SPEC, fake_seed({0: (80, 70), 1: (82, 71), 2: (81, 70)}), ["--out", str(tmp_path)])
    loaded = load_records(tmp_path)["dcd"]
    assert isinstance(loaded, ClaimRecord) and loaded.verdict == rec.verdict
    gpu = ClaimRecord(**{**loaded.__dict__, "scale": "gpu", "verdict": "premise absent"})
    table = render_table({"dcd": loaded}, {"dcd": gpu})
    assert "| +10.7 ± 0.33 (3 seeds) | holds |" in table
    assert "| gpu |" in table and "| premise absent |" in table
    with pytest.raises(ValueError, match="verdict"):
        ClaimRecord(**{**loaded.__dict__, "verdict": "maybe"})


def test_settings_take_the_scale_then_the_options_given():
    import argparse

    scales = {"cpu": {"epochs": 3, "width": 0.25}, "smoke": {"epochs": 1, "width": 0.1}}
    ctx = claims.ClaimContext(args=argparse.Namespace(epochs=None, width=0.5, other=7), scale="smoke")
    assert ctx.settings(scales) == {"epochs": 1, "width": 0.5}  # an option not among the settings is ignored
    assert scales["smoke"] == {"epochs": 1, "width": 0.1}  # the table itself is left as it was


def test_table_margin_is_the_headline_pair_not_the_first_comparison(tmp_path: Path):
    spec = ClaimSpec(paper="dcd", claim="a beats b and c", metric="top-1", method="a", baseline="b", baseline_name="B",
                     comparisons=[Comparison("a", "c"), Comparison("a", "b")])

    def run_seed(ctx, seed):
        return SeedRun(values={"a": 10.0 + seed, "b": 9.0, "c": 1.0})

    rec = claims.run(spec, run_seed, ["--out", str(tmp_path)])
    assert rec.details["headline"] == ["a", "b"]
    assert "| +2 ± 0.58 (3 seeds) | holds |" in render_table({"dcd": rec})  # a - b = 1, 2, 3 (a - c would be +10)
