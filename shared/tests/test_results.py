"""Claim records and the tables rendered from them."""

import json
from pathlib import Path

import pytest

from shared.results import (
    BEGIN,
    END,
    PAPERS,
    ROOT,
    ClaimRecord,
    claim_command,
    load_records,
    render_all,
    render_table,
    splice,
)


def _record(**kw) -> ClaimRecord:
    base = dict(paper="dcd", claim="c", metric="top-1", ours=81.5, baseline=80.0, baseline_name="static",
                paper_value=None, paper_baseline=70.4, verdict="holds", command="make reproduce-dcd", seconds=1.0,
                seeds=[0, 1, 2], per_seed={"dcd": [81.0, 81.5, 82.0], "static": [80.0, 80.0, 80.0]},
                comparisons=[{"name": "dcd vs static", "margin": 1.5, "se": 0.29, "n": 3, "holds": True}])
    return ClaimRecord(**{**base, **kw})


def test_record_round_trip(tmp_path: Path):
    path = _record().save(tmp_path)
    assert json.loads(path.read_text())["ours"] == 81.5
    assert load_records(tmp_path)["dcd"] == _record(hardware=load_records(tmp_path)["dcd"].hardware)


def test_unknown_or_missing_key_in_a_record_is_named(tmp_path: Path):
    (tmp_path / "x.json").write_text(json.dumps({**_record().__dict__, "oops": 1}))
    with pytest.raises(ValueError, match=r"x.json: unknown keys \['oops'\], missing keys \[\]"):
        load_records(tmp_path)
    old = {k: v for k, v in _record().__dict__.items() if k != "verdict"} | {"holds": True}  # the old layout
    (tmp_path / "x.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"unknown keys \['holds'\], missing keys \['verdict'\].*reproduce"):
        load_records(tmp_path)


def test_table_has_every_paper_and_the_numbers():
    table = render_table({"dcd": _record()})
    assert table.count("\n") == 11  # header, rule, ten papers
    assert "| 81.5 / 80 (static) | +1.5 ± 0.29 (3 seeds) | holds |" in table and "| – / 70.4 |" in table
    assert all(name in table for name in PAPERS) and "planned" in table


def test_splice_replaces_only_the_marked_block():
    text = f"intro\n{BEGIN}\nold\n{END}\noutro"
    assert splice(text, "new") == f"intro\n{BEGIN}\nnew\n{END}\noutro"
    inline = f"see `{BEGIN}` here\n"  # a marker quoted inside a line is prose, not a block boundary
    assert splice(inline + text, "new") == inline + f"intro\n{BEGIN}\nnew\n{END}\noutro"
    with pytest.raises(ValueError, match="markers"):
        splice("no markers", "x")


def test_committed_readme_and_results_md_agree_with_results_json():
    assert render_all(ROOT, check=True), "run `python -m shared.results` and commit RESULTS.md and README.md"


def test_claim_command_names_make_target_or_arguments():
    assert claim_command("stgt", []) == "make reproduce-stgt"
    assert claim_command("stgt", ["--epochs", "2"]) == "python -m projects.stgt.claim --epochs 2"
