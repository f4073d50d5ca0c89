"""The claim's summaries on hand-made traces, and the claim end to end through the shared command line."""

import json

import numpy as np
import pytest

from projects.weaknas import claim
from projects.weaknas.claim import official_metric, rank_test, summarise
from projects.weaknas.search import SearchTrace


def _trace(queried, acc, batch_ends, top1=(), top1_at=()):
    return SearchTrace("x", 0, queried=list(queried), valid=list(acc), test=list(acc), batch_ends=list(batch_ends),
                       top1=list(top1), top1_at=list(top1_at))


def test_summarise_censors_runs_that_never_found_the_optimum():
    # optimum = cell 99; run a finds it as its 15th query (batch ends at 20), b at 5th (batch 10), c never
    a = _trace(list(range(14)) + [99] + list(range(100, 105)), [50.0] * 14 + [99.0] + [60.0] * 5, [10, 20])
    b = _trace([1, 2, 3, 4, 99, 5, 6, 7, 8, 9], [50.0] * 4 + [99.0] + [60.0] * 5, [10])
    c = _trace(range(20), [70.0] * 20, [10, 20])
    row = summarise([a, b, c], optimum=[99], top=[99, 3], budget=20)
    assert row["queries_to_optimum"] == [20, 10, None] and row["found_optimum"] == 2
    assert row["median_queries_to_optimum"] == 20.0  # sorted: 10, 20, inf
    assert row["mean_queries_to_optimum_when_found"] == 15.0
    assert row["queries_to_top_0.1%"] == [10, 10, 10]  # cell 3 is in the first batch of every run
    row4 = summarise([a, c, c, c], optimum=[99], top=[99], budget=20)
    assert row4["median_queries_to_optimum"] is None  # more than half never found it


def test_censored_value_is_budget_plus_a_batch():
    assert claim.censored(None, 500) == 510.0 and claim.censored(150, 500) == 150.0


def test_official_metric_counts_the_unqueried_top1():
    table = np.zeros(200)
    table[150] = 95.0
    t = _trace(range(20), [60.0] * 20, [10, 20], top1=[150], top1_at=[10])
    assert official_metric([t], table, 10) == 95.0
    t.top1_at = [20]
    assert official_metric([t], table, 10) == 60.0


def test_rank_test_direction():
    assert rank_test([10, 20, 30, 40], [100, 200, 300, None]) < 0.05
    assert rank_test([100, 200, 300, None], [10, 20, 30, 40]) > 0.9
    assert rank_test([10, 20], [10, 20]) == pytest.approx(0.5, abs=0.2)


def test_claim_smoke_through_the_shared_command_line(tmp_path):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "weaknas.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke"
    assert saved["budget"] == {"fraction": 1.0, "queries": 30, "extra queries": 20}
    assert set(saved["per_seed"]) == {"weaknas", "random", "evolution"} and saved["references"] == ["random"]
    assert all(1 <= v <= 30 + claim.BATCH for vals in saved["per_seed"].values() for v in vals)
    assert [c["name"] for c in saved["comparisons"]] == ["weaknas vs random", "weaknas vs evolution"]
    assert all(not c["higher_is_better"] and c["n"] == 2 for c in saved["comparisons"])
    assert saved["gates"] == [] and record.verdict in ("holds", "does not hold")
    extra = saved["details"]["seeds"]
    assert "weaknas_gcn" in extra["0"]["queries_to_optimum"] and "weaknas_gcn" not in extra["1"]["queries_to_optimum"]
    assert "| WeakNAS, GCN | 1 |" in saved["table_md"] and "Verdict:" in saved["table_md"]
    assert (tmp_path / claim.PLOT_NAME).is_file()
