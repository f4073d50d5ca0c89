"""Paper-scale recipes on a CUDA device (selected with `pytest -m gpu`; CI's GPU job)."""

from pathlib import Path

import pytest
import torch

from projects.dcd.__main__ import main
from shared.testing import run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "tests" / "fixtures" / "imagenet"


@pytest.mark.gpu
@pytest.mark.parametrize("recipe", sorted(p.name for p in CONFIGS.glob("*_imagenet.yaml")))
def test_recipe_trains_on_one_gpu_at_paper_resolution(recipe: str, tmp_path: Path):
    assert torch.cuda.is_available(), "the gpu tier needs a CUDA device"
    cli = run_cli(main, [CONFIGS / recipe, CONFIGS / "trainer" / "gpu1.yaml"], tmp_path,
                  f"--data.init_args.root={FIXTURE}", "--data.init_args.batch_size=4",
                  "--data.init_args.num_workers=2", "--trainer.max_steps=3", "--trainer.limit_val_batches=1")
    assert cli.trainer.global_step == 3 and next(cli.model.parameters()).is_cuda
