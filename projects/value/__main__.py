"""``python -m projects.value fit -c projects/value/configs/demo.yaml`` trains the HERO-style VALUE baseline
(LightningCLI: fit / validate / test / predict)."""

from __future__ import annotations

from projects.value.module import HeroModule
from shared.cli import cli_main


def main(args=None, run: bool = True):
    return cli_main(HeroModule, run_name="value", args=args, run=run)


if __name__ == "__main__":
    main()
