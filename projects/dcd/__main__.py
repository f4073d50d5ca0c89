"""``python -m projects.dcd fit -c projects/dcd/configs/demo.yaml`` (see the README for the recipes)."""

from projects.dcd.module import DCDClassifier
from shared.cli import cli_main


def main(args=None, run: bool = True):
    return cli_main(DCDClassifier, run_name="dcd", args=args, run=run)


if __name__ == "__main__":
    main()
