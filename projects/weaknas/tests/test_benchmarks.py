"""Benchmark readers: the embedded analog-nasbench table checked by hand, and the official-API adapter on a
fixture dict in the NAS-Bench-201 ``.pth`` layout."""

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from projects.weaknas import benchmarks as B
from projects.weaknas.space import all_arch_strings, all_cells, is_connected, to_string
from shared.errors import CorruptDataError, DatasetNotFoundError, UserFacingError

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def analog():
    return B.load_benchmark("nb201-cifar10-analog")


def test_analog_table_cells_checked_by_hand(analog):
    # Values read from analognasbench/data.anb with a plain unpickler; keys are analog-nasbench's
    # (edges 0-1, 0-2, 0-3, 1-2, 1-3, 2-3; ops skip, none, conv3, conv1, pool).
    assert analog.accuracy(BEST) == pytest.approx(94.0664)                      # key (2, 2, 0, 2, 3, 2)
    assert analog.accuracy("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == 10.0          # (1,) * 6
    assert analog.accuracy("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|") == pytest.approx(91.7024)
    assert analog.accuracy("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
                           "skip_connect~2|") == pytest.approx(60.7836)
    assert analog.accuracy(BEST, "valid") == analog.accuracy(BEST, "test")       # one number per cell
    assert B.analog_key(("nor_conv_3x3",) * 3 + ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")) == (2, 2, 0, 2,
                                                                                                       3, 2)


def test_analog_best_cell_and_size(analog):
    acc = analog.table["test"]
    assert len(analog) == 15625 and analog.arch_strings() == all_arch_strings()
    assert analog.arch_strings()[int(acc.argmax())] == BEST and acc.max() == pytest.approx(94.0664)


def test_analog_edge_order_agrees_with_connectivity(analog):
    """If the key's edge order were mapped wrongly, cut-off cells would not be exactly those at chance."""
    chance = {a for a, v in zip(analog.arch_strings(), analog.table["test"], strict=True) if v == 10.0}
    cut = {to_string(c) for c in all_cells() if not is_connected(c)}
    assert chance == cut and len(cut) == 341


def test_analog_reader_rejects_foreign_pickles(tmp_path: Path):
    evil = tmp_path / "data.anb"
    evil.write_bytes(pickle.dumps({(0,) * 6: Path("x")}))
    with pytest.raises(CorruptDataError, match="unexpected global"):
        B.read_analog_table(evil)
    evil.write_bytes(b"\x80\x04garbage")
    with pytest.raises(CorruptDataError, match=str(evil)):
        B.read_analog_table(evil)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        B.read_analog_table(tmp_path / "missing.anb")


def test_unknown_names_and_arches(analog):
    with pytest.raises(UserFacingError, match="choose one of"):
        B.load_benchmark("nb101")
    small = B.TabularBenchmark("t", all_arch_strings()[:2], [1, 2], [3, 4])
    with pytest.raises(B.UnknownArchError, match="not in benchmark t"):
        small.accuracy(BEST)
    with pytest.raises(ValueError, match="split"):
        analog.accuracy(BEST, "train")


# ------------------------------------------------------------------- the official API on a fixture dict

def _nb201_dict(archs: list[str], results: dict[str, dict[str, tuple[float, float]]]) -> dict:
    """A dict in the NB201 v1.0 .pth layout, built with the nas-bench-201 package's own classes.

    ``results[arch][dataset] = (valid, test)`` for seeds 777 and 888 (valid ± 1, test ± 1 so the seed
    average is the given number); the 12-epoch ("less") entry holds different, wrong-on-purpose numbers.
    """
    from nas_201_api.api_utils import ArchResults, ResultsCount

    eval_sets = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": (None, "ori-test"),
                 "cifar100": ("x-valid", "x-test"), "ImageNet16-120": ("x-valid", "x-test")}

    def arch_results(index, arch, epochs, shift):
        res = ArchResults(index, arch)
        for dataset, (vname, tname) in eval_sets.items():
            res.dataset_seed[dataset] = [777, 888]
            for seed, delta in ((777, -1.0), (888, 1.0)):
                valid, test = results[arch][dataset]
                rc = ResultsCount(dataset, None, {e: 50.0 for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
                                  0.5, 50.0, {"arch_str": arch}, seed, epochs, None)
                accs, losses, times = {}, {}, {}
                for name, value in ((vname, valid), (tname, test)):
                    if name is None:
                        continue
                    for e in range(epochs):
                        accs[f"{name}@{e}"] = value + delta + shift if e == epochs - 1 else 0.0
                        losses[f"{name}@{e}"], times[f"{name}@{e}"] = 1.0, 0.1
                rc.update_eval(accs, losses, times)
                res.all_results[(dataset, seed)] = rc
        return res.state_dict()

    arch2infos = OrderedDict((i, {"less": arch_results(i, a, 12, -30.0), "full": arch_results(i, a, 200, 0.0)})
                             for i, a in enumerate(archs))
    return {"meta_archs": archs, "arch2infos": arch2infos, "evaluated_indexes": list(range(len(archs)))}


ARCHS = [BEST, "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|", "|avg_pool_3x3~0|+|none~0|none~1|+"
         "|none~0|none~1|none~2|"]
RESULTS = {a: {"cifar10-valid": (90.0 - i, 93.0 - i), "cifar10": (0.0, 94.0 - i), "cifar100": (70.0 - i, 71.0 - i),
               "ImageNet16-120": (45.0 - i, 46.0 - i)} for i, a in enumerate(ARCHS)}


@pytest.mark.parametrize("name, valid, test", [
    ("nb201-cifar10", [90, 89, 88], [94, 93, 92]),          # valid: cifar10-valid x-valid; test: cifar10 ori-test
    ("nb201-cifar100", [70, 69, 68], [71, 70, 69]),
    ("nb201-imagenet16-120", [45, 44, 43], [46, 45, 44]),
])
def test_nb201_adapter_reads_200_epoch_seed_averages(name, valid, test):
    bench = B.load_benchmark(name, path=_nb201_dict(ARCHS, RESULTS))
    assert bench.arch_strings() == ARCHS
    np.testing.assert_allclose([bench.accuracy(a, "valid") for a in ARCHS], valid)
    np.testing.assert_allclose([bench.accuracy(a, "test") for a in ARCHS], test)


def test_nb201_adapter_reads_a_pth_file_and_env_var(tmp_path: Path, monkeypatch):
    path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save(_nb201_dict(ARCHS, RESULTS), path)
    monkeypatch.setenv(B.NB201_ENV, str(path))
    assert B.load_benchmark("nb201-cifar10").accuracy(ARCHS[1]) == pytest.approx(93.0)


def test_nb201_adapter_errors(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(B.NB201_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError, match="REPRO_ZOO_NB201"):
        B.load_benchmark("nb201-cifar100")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        B.load_benchmark("nb201-cifar100", path=tmp_path / "none.pth")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CorruptDataError, match="broken.pth"):
        B.load_benchmark("nb201-cifar10", path=broken)
    with pytest.raises(CorruptDataError, match="arch2infos"):
        B.load_benchmark("nb201-cifar10", path={"meta_archs": ARCHS})
