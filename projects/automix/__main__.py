"""``python -m projects.automix fit -c projects/automix/configs/demo.yaml`` (see the README for the recipes).

The mixing policy is ``--model.policy``: none, mixup, cutmix, manifold, saliencymix or automix.
"""

from projects.automix.module import MixupClassifier
from shared.cli import cli_main


def main(args=None, run: bool = True):
    return cli_main(MixupClassifier, run_name="automix", args=args, run=run)


if __name__ == "__main__":
    main()
