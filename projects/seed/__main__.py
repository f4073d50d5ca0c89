"""``python -m projects.seed fit -c projects/seed/configs/demo.yaml`` (see the README for every stage).

The model is chosen by ``model.class_path``: :class:`~projects.seed.module.MoCoV2` (teacher pretraining,
student baseline), :class:`~projects.seed.module.SEED` (distillation) or
:class:`~projects.seed.module.LinearProbe` (evaluation).
"""

import lightning as L

from shared.cli import cli_main


def main(args=None, run: bool = True):
    return cli_main(L.LightningModule, run_name="seed", args=args, run=run, subclass_mode_model=True)


if __name__ == "__main__":
    main()
