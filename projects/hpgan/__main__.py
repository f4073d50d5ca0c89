"""``python -m projects.hpgan fit -c projects/hpgan/configs/demo.yaml`` (see the README for the recipes).

The model is HP-GAN (:class:`projects.hpgan.module.HPGAN`); ``--model.use_z=false`` trains the deterministic
variant. The data is any :class:`projects.hpgan.data.MotionDataModule` (embedded mocap, Human3.6M, NTU RGB+D).
"""

from projects.hpgan.module import HPGAN
from shared.cli import cli_main


def main(args=None, run: bool = True):
    return cli_main(HPGAN, run_name="hpgan", args=args, run=run)


if __name__ == "__main__":
    main()
