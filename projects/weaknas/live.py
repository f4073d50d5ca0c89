"""A live NB201 search space: querying a cell trains its network and measures it; answers are cached on disk.

The training setup comes from a YAML file in the Lightning CLI's format (``model:`` init args of
:class:`~projects.weaknas.module.CellClassifier` without ``arch``, ``data:`` a
:class:`~projects.weaknas.data.HoldoutDataModule`, ``trainer:`` arguments), e.g. ``configs/demo.yaml``, so one
file serves ``python -m projects.weaknas fit`` for a single cell and ``search --benchmark live-fmnist`` for a
search. A query returns the last epoch's ``val/acc`` (for selection) and ``test/acc`` (to report).

Cache: one JSON line per trained cell in ``<cache_dir>/<config hash>.jsonl``, where the hash covers the
training setup and the seed (not the device, the data's folder or the number of loader workers, which do
not change a result), so editing the recipe never returns stale answers. Delete the file to retrain.
Default cache dir: ``$REPRO_ZOO_CACHE/weaknas`` or ``~/.cache/repro-zoo/weaknas``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import yaml

from projects.weaknas.benchmarks import Benchmark
from projects.weaknas.space import all_arch_strings, from_string, to_string
from shared.errors import CorruptDataError, UserFacingError

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "demo.yaml"


def default_cache_dir() -> Path:
    root = os.environ.get("REPRO_ZOO_CACHE") or Path.home() / ".cache" / "repro-zoo"
    return Path(root) / "weaknas"


def _load_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserFacingError(f"live benchmark config {path} could not be read: {err}") from None
    for key in ("model", "data", "trainer"):
        if not isinstance(config, dict) or not isinstance(config.get(key), dict):
            raise UserFacingError(f"live benchmark config {path} needs a '{key}:' mapping (see configs/demo.yaml).")
    return config


def _instantiate(spec: dict, where: str):
    if "class_path" not in spec:
        raise UserFacingError(f"{where}: 'data:' needs class_path and init_args.")
    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))


class LiveBenchmark(Benchmark):
    name = "live-fmnist"

    def __init__(self, config: str | os.PathLike = DEFAULT_CONFIG, cache_dir: str | os.PathLike | None = None,
                 seed: int = 0, overrides: dict | None = None, verbose: bool = False):
        self.config_path = Path(config)
        self.config = _load_config(self.config_path)
        model = self.config["model"]
        if "class_path" in model:  # the Lightning CLI's subclass form
            if not model["class_path"].endswith("CellClassifier"):
                raise UserFacingError(f"{self.config_path}: model.class_path must be "
                                      f"projects.weaknas.module.CellClassifier, got {model['class_path']}.")
            self.config["model"] = dict(model.get("init_args") or {})
        for dotted, value in (overrides or {}).items():  # e.g. {"trainer.max_epochs": 1}
            section, _, key = dotted.partition(".")
            target = self.config[section]
            if section == "data":
                target = target.setdefault("init_args", {})
            target[key] = value
        self.config["model"].pop("arch", None)
        self.seed, self.verbose = seed, verbose
        key = json.dumps([self.result_relevant(self.config), seed], sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        self.name = f"live-{self.config['data'].get('init_args', {}).get('dataset', 'fashion-mnist')}"
        self.cache_file = Path(cache_dir or default_cache_dir()) / f"{digest}.jsonl"
        self._archs = all_arch_strings()
        self._cache = self._read_cache()
        self.trained = 0  # networks trained by this object (cache misses)

    #: settings that change where or how fast a cell trains, not its result: left out of the cache key
    NOT_IN_KEY = {"trainer": {"accelerator", "devices", "num_nodes", "strategy", "log_every_n_steps", "logger",
                              "callbacks", "enable_progress_bar", "enable_model_summary", "default_root_dir"},
                  "data": {"data_dir", "num_workers"}}

    @classmethod
    def result_relevant(cls, config: dict) -> dict:
        """The part of the config a cached answer depends on (the cache file's hash covers only this)."""
        out = copy.deepcopy(config)
        for key in cls.NOT_IN_KEY["trainer"]:
            out["trainer"].pop(key, None)
        for key in cls.NOT_IN_KEY["data"]:
            out["data"].get("init_args", {}).pop(key, None)
        return out

    def _read_cache(self) -> dict[str, dict[str, float]]:
        cache: dict[str, dict[str, float]] = {}
        if not self.cache_file.is_file():
            return cache
        for lineno, line in enumerate(self.cache_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                cache[to_string(from_string(row["arch"]))] = {"valid": float(row["valid"]), "test": float(row["test"])}
            except (ValueError, KeyError, TypeError) as err:
                raise CorruptDataError(f"{self.cache_file}, line {lineno}: not a cached query ({err}); delete the line "
                                       "or the file to retrain that cell.") from None
        return cache

    def arch_strings(self) -> list[str]:
        return list(self._archs)

    def cached(self) -> dict[str, dict[str, float]]:
        return dict(self._cache)

    def accuracy(self, arch_string: str, split: str = "test") -> float:
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        arch = to_string(from_string(arch_string))
        if arch not in self._cache:
            result = self.train(arch)
            self._cache[arch] = result
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.cache_file, "a") as f:
                f.write(json.dumps({"arch": arch, **result}) + "\n")
        return self._cache[arch][split]

    def accuracies(self, indices, split: str = "test") -> np.ndarray:
        return np.array([self.accuracy(self._archs[int(i)], split) for i in indices])

    def train(self, arch: str) -> dict[str, float]:
        """Train one cell network with the config and return its final validation and test accuracy."""
        import lightning as L

        from projects.weaknas.module import CellClassifier

        config = copy.deepcopy(self.config)
        L.seed_everything(self.seed, verbose=False)
        data = _instantiate(config["data"], str(self.config_path))
        model = CellClassifier(arch=arch, **config["model"])
        trainer_args = {k: v for k, v in config["trainer"].items() if k not in ("logger", "callbacks")}
        trainer_args.update(logger=False, enable_checkpointing=False, enable_progress_bar=self.verbose,
                            enable_model_summary=False, num_sanity_val_steps=0)
        trainer = L.Trainer(**trainer_args)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            trainer.fit(model, datamodule=data)
            valid = trainer.validate(model, datamodule=data, verbose=False)[0]["val/acc"]
            test = trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"]
        self.trained += 1
        return {"valid": float(valid), "test": float(test)}
