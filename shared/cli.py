"""The LightningCLI entry every paper uses: ``python -m projects.<paper> fit -c configs/demo.yaml``.

Defaults every paper wants, so that no recipe has to repeat them:

* a fixed seed (``seed_everything: 0``), re-applied when every epoch starts as ``seed + epoch``
  (:class:`ReseedEveryEpoch`) so that a run resumed from a checkpoint draws the same augmentations
  and dropout masks as an uninterrupted one (data order: :mod:`shared.sampling`);
* CSV and TensorBoard loggers writing to ``<default_root_dir>/logs/<name>/version_<n>`` when the
  config leaves ``trainer.logger`` unset (``logger: false`` turns logging off, an explicit list wins);
* ``--version NAME`` names the run's folder (``logs/<name>/NAME``; default ``version_<n>``), and
  ``logs/<name>/latest`` links to the newest run that wrote a checkpoint; a run that fails before its first
  optimiser step removes the folder it created (:class:`RunFolder`);
* a checkpoint callback (:class:`shared.checkpoints.LastCheckpoint`, configurable under the ``checkpoint:`` key)
  that writes ``last.ckpt`` atomically after every epoch (and every ``checkpoint.every_n_train_steps`` steps), so
  an interrupted run can be resumed with ``--ckpt_path``;
* training stops with one paragraph at the first NaN or infinite loss (:class:`shared.checkpoints.StopOnNonFiniteLoss`),
  keeping the last good checkpoint;
* ``--ckpt_path`` checked before use: a missing or truncated file, a checkpoint of another paper, or a model
  option on the command line or in a config file that contradicts the checkpoint stop with one paragraph (the
  checkpoint's model options are used when resuming; options left unset are taken from it);
* model arguments a paper marks as required to run (``cli_required`` on the LightningModule, e.g. SEED's
  teacher checkpoint) must be set;
* the resolved config saved as ``config.yaml`` beside the logs;
* errors meant for users (:class:`shared.errors.UserFacingError`) printed as one paragraph.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from shared.checkpoints import LastCheckpoint, StopOnNonFiniteLoss, read_checkpoint
from shared.errors import UserFacingError, user_message

CHECKPOINT_TAG = "repro_zoo"  # checkpoint key recording which paper's CLI wrote it
SPECIAL_CKPT_PATHS = ("last", "best", "hpc")  # Lightning's named checkpoints, passed through unchanged


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


class RunFolder(Callback):
    """The run's folder under ``logs/<paper>/``: records which paper wrote each checkpoint, points
    ``logs/<paper>/latest`` at the newest run that wrote one, and removes the folder of a run that failed before
    its first optimiser step (so that failed attempts leave no empty ``version_<n>`` behind)."""

    def __init__(self, paper: str, log_dir: str | None):
        self.paper, self.log_dir, self.linked = paper, log_dir, False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_TAG] = {"paper": self.paper}
        if self.linked or self.log_dir is None or not trainer.is_global_zero:
            return
        self.linked = True
        link = Path(self.log_dir).parent / "latest"
        try:
            if link.is_symlink() or link.is_file():
                link.unlink()
            if not link.exists():
                link.symlink_to(Path(self.log_dir).name, target_is_directory=True)
        except OSError:
            pass  # a file system without links: the numbered folder still works

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        folder = Path(self.log_dir) if self.log_dir else None
        if (folder is None or not trainer.is_global_zero or trainer.global_step > 0 or not folder.is_dir()
                or any(folder.rglob("*.ckpt"))):
            return
        for logger in trainer.loggers:  # close the event and metrics files before their folder goes
            try:
                logger.finalize("failed")
            except Exception:  # noqa: BLE001 - cleanup must not hide the error that stopped the run
                pass
        shutil.rmtree(folder, ignore_errors=True)


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
    raise_errors = False  # set while checking a checkpoint's options: errors become _ParseFailure

    def error(self, message: str, ex: Exception | None = None):
        if type(self).raise_errors:
            raise _ParseFailure(" ".join(message.split()))
        if not self.exit_on_error:
            return super().error(message, ex)
        message, key = _simplify(" ".join(message.split()))
        where = _origin(key, self.given_args) if key else None
        hint = f" The key '{key}' comes from {where}." if where else ""
        print(f"error: {message}.{hint} List the accepted keys with `{self.program} fit --help`, and see the "
              f"resolved configuration with `{self.program} fit -c <config> --print_config`.", file=sys.stderr)
        raise SystemExit(2)


class _ParseFailure(Exception):
    """A parser error caught by :meth:`ZooCLI._parse_ckpt_path` instead of printed."""


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
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        # a rerun under the same --version replaces its last.ckpt instead of adding last-v1.ckpt, last-v2.ckpt...
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 0,
                             "checkpoint.enable_version_counter": False})
        parser.add_argument("--version", type=str | None, default=None,
                            help="name of this run's folder logs/<paper>/VERSION (default: version_<n>, the next "
                                 "free number); logs/<paper>/latest links to the newest run with a checkpoint")

    def _instantiate_trainer(self, config: dict, callbacks: list) -> L.Trainer:
        if config.get("enable_checkpointing") is False:  # the user turned checkpoints off: drop ours
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        log_dir = None
        if config.get("logger") in (None, True) and not config.get("fast_dev_run"):
            root = Path(config.get("default_root_dir") or ".") / "logs"
            csv = CSVLogger(root, name=self.run_name, version=self._get(self.config, "version"))
            # Both loggers write into the same version folder, beside config.yaml and checkpoints/.
            config["logger"] = [csv, TensorBoardLogger(root, name=self.run_name, version=csv.version,
                                                       default_hp_metric=False)]
            log_dir = str(Path(root) / self.run_name / (csv.version if isinstance(csv.version, str)
                                                         else f"version_{csv.version}"))
        callbacks = [*callbacks, StopOnNonFiniteLoss(), RunFolder(self.run_name, log_dir)]
        seed = self._get(self.config, "seed_everything")
        if isinstance(seed, int) and not isinstance(seed, bool):
            callbacks = [*callbacks, ReseedEveryEpoch(seed)]
        return super()._instantiate_trainer(config, callbacks)

    def before_instantiate_classes(self) -> None:
        """Model arguments a paper marks as required to run (``cli_required``: name -> what to give) are set."""
        if self.subcommand is None:  # run=False: building the classes only (tests, notebooks)
            return
        class_path, values, prefix = _model_values(self._get(self.config, "model"))
        cls = self.model_class
        if class_path:
            module, _, name = class_path.rpartition(".")
            cls = getattr(importlib.import_module(module), name, cls)
        for name, what in getattr(cls, "cli_required", {}).items():
            if values.get(name) is None:
                raise UserFacingError(f"{prefix}{name} is required by {getattr(cls, '__name__', cls)}: {what}")

    def _parse_ckpt_path(self) -> None:
        """``--ckpt_path`` checked before Lightning uses it (see the module docstring)."""
        sub = self.config.get("subcommand")
        ckpt_path = self.config[sub].get("ckpt_path") if sub else None
        if not ckpt_path or ckpt_path in SPECIAL_CKPT_PATHS or str(ckpt_path).startswith("registry"):
            return
        program = f"python -m projects.{self.run_name}"
        hint = (f"Resume from a last.ckpt that `{program} fit` wrote under logs/{self.run_name}/<run>/checkpoints/ "
                f"(logs/{self.run_name}/latest/checkpoints/last.ckpt is the newest).")
        ckpt = read_checkpoint(ckpt_path, "--ckpt_path", weights_only=True, hint=hint)
        paper = (ckpt.get(CHECKPOINT_TAG) or {}).get("paper")
        if paper and paper != self.run_name:
            raise UserFacingError(f"--ckpt_path {ckpt_path} was written by `python -m projects.{paper}`, not by "
                                  f"`{program}`: give it to projects.{paper}, or give a checkpoint of this paper. "
                                  f"{hint}")
        hparams = dict(ckpt.get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        saved_class = hparams.pop("_class_path", None)
        self._refuse_conflicts(str(ckpt_path), self.config[sub].get("model"), saved_class, hparams)
        model = {"class_path": saved_class, "dict_kwargs": hparams} if saved_class else hparams
        parser_class = type(self.parser)
        parser_class.raise_errors = True
        try:
            self.config = self.parser.parse_object({sub: {"model": model}}, self.config)
        except _ParseFailure as err:
            message, _ = _simplify(str(err))
            raise UserFacingError(f"--ckpt_path {ckpt_path} does not hold a model of `{program}` ({message}): it was "
                                  f"probably written by another paper's CLI or by an older version of this one. "
                                  f"{hint}") from None
        finally:
            parser_class.raise_errors = False

    def _refuse_conflicts(self, ckpt_path: str, model, saved_class: str | None, hparams: dict) -> None:
        """Stop when a model option the user set (command line or config file) differs from the checkpoint's."""
        class_path, values, prefix = _model_values(model)
        given = type(self.parser).given_args
        saved = dict(hparams)
        if saved_class and class_path:
            values, saved = {**values, "class_path": class_path}, {**saved, "class_path": saved_class}
        conflicts = []
        for name, value in saved.items():
            if values.get(name) is None or _plain(values[name]) == _plain(value):
                continue  # unset (None: "work it out", e.g. from the data) or the same
            key = f"model.{name}"
            where = _origin(key, given)
            if where is not None:
                shown = "model.class_path" if name == "class_path" else f"{prefix}{name}"
                conflicts.append(f"{shown} is {_plain(value)!r} in the checkpoint but {_plain(values[name])!r} "
                                 f"in {where}")
        if conflicts:
            raise UserFacingError(
                f"--ckpt_path {ckpt_path} was trained with other model options than this command gives: "
                f"{'; '.join(conflicts)}. A checkpoint's weights only fit the model they were trained with, so "
                "resuming uses the checkpoint's model options: remove the conflicting setting(s) to resume, or "
                "start a new run without --ckpt_path to train the other model.")


def _model_values(model) -> tuple[str | None, dict, str]:
    """(class_path or None, the model's arguments, the key prefix users write) of a parsed ``model`` section."""
    data = model.as_dict() if hasattr(model, "as_dict") else dict(model or {})
    if "class_path" in data:
        return data["class_path"], {**(data.get("init_args") or {}), **(data.get("dict_kwargs") or {})}, \
            "model.init_args."
    return None, data, "model."


def _plain(value):
    """``value`` with tuples as lists and namespaces as dicts, to compare a parsed config with saved hparams."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


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
