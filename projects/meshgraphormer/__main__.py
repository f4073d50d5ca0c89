"""``python -m projects.meshgraphormer fit -c projects/meshgraphormer/configs/demo.yaml`` trains Mesh Graphormer
(LightningCLI: fit / validate / test / predict)."""

from __future__ import annotations

from projects.meshgraphormer.module import MeshGraphormerModule
from shared.cli import cli_main


def main(args=None, run: bool = True):
    return cli_main(MeshGraphormerModule, run_name="meshgraphormer", args=args, run=run)


if __name__ == "__main__":
    main()
