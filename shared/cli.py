"""The LightningCLI entry every paper uses: ``python -m projects.<paper> fit -c configs/demo.yaml``.

Defaults every paper wants, so that no recipe has to repeat them:

* a fixed seed (``seed_everything: 0``), re-applied when every epoch starts as ``seed + epoch``
  (:class:`ReseedEveryEpoch`) so that a run resumed from a checkpoint draws the same augmentations
  and dropout masks as an uninterrupted one (data order: :mod:`shared.sampling`);
* CSV and TensorBoard loggers writing to ``<default_root_dir>/logs/<name>/version_<n>`` when the
  config leaves ``trainer.logger`` unset (``logger: false`` turns logging off, an explicit list wins);
* a ``ModelCheckpoint`` that always keeps ``last.ckpt`` (configurable under the ``checkpoint:`` key);
* the resolved config saved as ``config.yaml`` beside the logs;
* errors meant for users (:class:`shared.errors.UserFacingError`) printed as one paragraph.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from shared.errors import UserFacingError, user_message


class ReseedEveryEpoch(Callback):
    """Seed every generator with ``seed + epoch`` when each training epoch starts.

    Lightning's checkpoints do not hold the random generators' states, so without this a resumed run
    would augment and drop out differently from the run it continues. Data order is made
    independent of the global generator by :func:`shared.sampling.make_loader`.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        L.seed_everything(self.seed + trainer.current_epoch, workers=True, verbose=False)
        os.environ["PL_GLOBAL_SEED"] = str(self.seed)  # keep the run's seed visible (shared.sampling reads it)


def _config_files(args: Sequence[str]) -> list[str]:
    """The files given with ``-c``/``--config`` in ``args``."""
    files, it = [], iter(args)
    for token in it:
        if token in ("-c", "--config"):
            files.append(next(it, ""))
        elif token.startswith("--config="):
            files.append(token.split("=", 1)[1])
    return files


def _file_with_key(files: Sequence[str], dotted: str) -> str | None:
    """The last of ``files`` whose YAML holds the nested key ``a.b.c`` (init_args levels skipped)."""
    for path in reversed(files):
        try:
            node = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        for part in dotted.split("."):
            if isinstance(node, dict) and part not in node and isinstance(node.get("init_args"), dict):
                node = node["init_args"]
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return path
    return None


class ZooArgumentParser(LightningArgumentParser):
    """Argument errors as one paragraph (which key, which file, what to do) instead of a usage dump."""

    given_args: Sequence[str] = ()
    program = "python -m projects.<paper>"

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:
            return super().error(message, ex)
        message, key = _simplify(" ".join(message.split()))
        where = _origin(key, self.given_args) if key else None
        hint = f" The key '{key}' comes from {where}." if where else ""
        print(f"error: {message}.{hint} List the accepted keys with `{self.program} fit --help`, and see the "
              f"resolved configuration with `{self.program} fit -c <config> --print_config`.", file=sys.stderr)
        raise SystemExit(2)


def _simplify(message: str) -> tuple[str, str | None]:
    """Shorten jsonargparse's report on a ``class_path`` section to its one relevant line, and find the
    offending dotted key."""
    nested = re.search(r"Parser key \"([^\"]+)\":.*?Problem with given class_path '([^']+)': (.*?)(?: - Expected a "
                       r"<class 'NoneType'>.*)?$", message)
    if nested:
        outer, class_path, inner = nested.groups()
        inner_key = re.search(r"(?:Option|Parser key) [\"']([^\"']+)[\"']", inner)
        key = f"{outer}.{inner_key.group(1)}" if inner_key else outer
        return f"in '{outer}' ({class_path}): {inner}", key
    found = re.search(r"(?:option|key) [\"']([^\"']+)[\"']|unrecognized arguments: --([^\s=]+)", message, re.I)
    return message, (found.group(1) or found.group(2)) if found else None


def _origin(key: str, args: Sequence[str]) -> str | None:
    """Where ``key`` was set: "the command line", the last config file holding it, or None."""
    flat = key.replace(".init_args.", ".")
    if any(a.lstrip("-").split("=")[0].replace(".init_args.", ".") == flat for a in args if a.startswith("--")):
        return "the command line"
    return _file_with_key(_config_files(args), key)


class ZooCLI(LightningCLI):
    """LightningCLI with the repository's defaults (see the module docstring)."""

    def __init__(self, *args, run_name: str = "run", **kwargs):
        self.run_name = run_name
        given = kwargs.get("args")
        parser_class = type("ZooArgumentParser", (ZooArgumentParser,), {
            "given_args": list(sys.argv[1:] if given is None else given),
            "program": f"python -m projects.{run_name}"})
        super().__init__(*args, parser_class=parser_class, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 0})

    def _instantiate_trainer(self, config: dict, callbacks: list) -> L.Trainer:
        if config.get("enable_checkpointing") is False:  # the user turned checkpoints off: drop ours
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        if config.get("logger") in (None, True):
            root = Path(config.get("default_root_dir") or ".") / "logs"
            csv = CSVLogger(root, name=self.run_name)
            # Both loggers write into the same version folder, beside config.yaml and checkpoints/.
            config["logger"] = [csv, TensorBoardLogger(root, name=self.run_name, version=csv.version,
                                                       default_hp_metric=False)]
        seed = self._get(self.config, "seed_everything")
        if isinstance(seed, int) and not isinstance(seed, bool):
            callbacks = [*callbacks, ReseedEveryEpoch(seed)]
        return super()._instantiate_trainer(config, callbacks)


def cli_main(model_class=None, datamodule_class=None, *, run_name: str = "run",
             args: Sequence[str] | None = None, run: bool = True, **kwargs) -> ZooCLI:
    """Build and run the CLI. ``args`` replaces ``sys.argv[1:]`` (tests call it in-process)."""
    kwargs.setdefault("seed_everything_default", 0)
    kwargs.setdefault("save_config_kwargs", {"overwrite": True})
    kwargs.setdefault("subclass_mode_data", datamodule_class is None)
    kwargs.setdefault("parser_kwargs", {"default_env": False})
    try:
        return ZooCLI(model_class, datamodule_class, run_name=run_name, args=args, run=run, **kwargs)
    except Exception as err:
        cause = _user_facing(err)
        if cause is None:
            raise
        print(f"error: {user_message(cause)}", file=sys.stderr)
        raise SystemExit(1) from None


def _user_facing(err: BaseException | None) -> UserFacingError | None:
    """The UserFacingError behind ``err``, also when a library re-raised it as another type (jsonargparse
    turns errors raised while instantiating a ``class_path`` into ValueError)."""
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, UserFacingError):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None
