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

import sys
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from shared.errors import UserFacingError


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


class ZooCLI(LightningCLI):
    """LightningCLI with the repository's defaults (see the module docstring)."""

    def __init__(self, *args, run_name: str = "run", **kwargs):
        self.run_name = run_name
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 0})

    def _instantiate_trainer(self, config: dict, callbacks: list) -> L.Trainer:
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
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
