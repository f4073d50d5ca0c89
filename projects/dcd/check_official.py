"""Check our DCD against the official implementation, given a local clone of liyunsheng13/dcd.

    python -m projects.dcd.check_official /path/to/dcd     # the folder holding models/imagenet/

Nothing of the official code is vendored here: it is imported from the path you give. For each
backbone this loads the official model's weights into ours (matching tensors by shape and name,
in registration order) and compares the whole networks' outputs in train mode, and
reports the parameter counts and whether each model's eval-mode output is finite at initialisation.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch

from projects.dcd.nets import build_model


def transfer(official: torch.nn.Module, ours: torch.nn.Module) -> None:
    """Copy the official state dict into ours: the i-th tensor of a given (shape, leaf name) to the i-th."""
    theirs = official.state_dict()
    queues = defaultdict(list)
    for key, value in theirs.items():
        queues[(tuple(value.shape), key.rsplit(".", 1)[-1])].append(value)
    mapped = {}
    for key, value in ours.state_dict().items():
        queue = queues[(tuple(value.shape), key.rsplit(".", 1)[-1])]
        if not queue:
            raise SystemExit(f"no official tensor left for {key} {tuple(value.shape)}: the architectures differ")
        mapped[key] = queue.pop(0)
    ours.load_state_dict(mapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="local clone of liyunsheng13/dcd")
    args = parser.parse_args()
    models = args.official / "models" / "imagenet"
    if not (models / "resnet_dcd.py").is_file():
        raise SystemExit(f"{models}/resnet_dcd.py not found: give the folder of a clone of liyunsheng13/dcd")
    sys.path.insert(0, str(models))
    import mobilenetv2_dcd
    import resnet_dcd

    torch.manual_seed(0)
    cases = [("resnet18", resnet_dcd.resnet18_dcd()), ("resnet50", resnet_dcd.resnet50_dcd()),
             ("mobilenet_v2", mobilenetv2_dcd.mobilenetv2_dcd(fc_squeeze=16))]
    x = torch.randn(4, 3, 224, 224)
    for name, official in cases:
        ours = build_model(name, "dcd", 1000)
        n_official = sum(p.numel() for p in official.parameters())
        n_ours = sum(p.numel() for p in ours.parameters())
        transfer(official, ours)
        with torch.no_grad():
            official.train(), ours.train()
            train_diff = (official(x) - ours(x)).abs().max().item()
            official.eval(), ours.eval()
            finite = torch.isfinite(official(x)).all().item()
        print(f"{name:<13} params official {n_official:,} ours {n_ours:,}; max |difference| in train mode "
              f"{train_diff:.2e}; official eval-mode output at initialisation finite: {finite}")


if __name__ == "__main__":
    main()
