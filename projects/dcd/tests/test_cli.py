"""Every committed config through the real CLI; resume; DDP on two CPU processes; clear errors."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from projects.dcd.__main__ import main
from projects.dcd.nets import DyConv2d
from shared.testing import check_nan_stop, check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[3]
RECIPES = sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "demo.yaml")
R50 = CONFIGS / "resnet50-dcd_4xb64_imagenet.yaml"
IMAGENET_FIXTURE = REPO / "shared" / "tests" / "fixtures" / "imagenet"  # tiny folders in ImageNet's layout
# epochs, dropout and weight decay of the official training commands (liyunsheng13/dcd README)
RECIPES_OFFICIAL = {"resnet50-dcd_4xb64_imagenet": (120, 0.1, 1e-4),
                    "mobilenetv2-dcd_4xb128_imagenet": (300, 0.2, 2e-5)}
TINY = ("--data.init_args.train_subset=64", "--data.init_args.val_subset=32", "--data.init_args.batch_size=16")
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.num_nodes=1")


@pytest.mark.parametrize("conv", ["static", "dy", "dcd"])
def test_demo_trains_end_to_end(tmp_path: Path, conv: str):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, f"--model.conv={conv}", "--trainer.max_epochs=1")
    assert cli.trainer.current_epoch == 1
    assert 0.0 <= float(cli.trainer.callback_metrics["val/acc1"]) <= 1.0
    if conv == "dy":  # demo anneals 30 -> 1 over one epoch; the last of 4 steps starts at epoch 3/4
        layer = next(m for m in cli.model.modules() if isinstance(m, DyConv2d))
        assert float(layer.temperature) == pytest.approx(30 - 29 * 3 / 4)


def test_demo_with_the_cpu_trainer_file(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "cpu.yaml"], tmp_path, *TINY,
                  "--trainer.fast_dev_run=2")
    assert cli.trainer.global_step == 2


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_paper_recipe_builds_the_full_model_and_runs_a_forward_pass(recipe: Path, tmp_path: Path):
    fixture = IMAGENET_FIXTURE
    cli = main(args=[f"--config={recipe}", f"--data.init_args.root={fixture}",
                     f"--trainer.default_root_dir={tmp_path}", *ON_CPU], run=False)
    hp = cli.model.hparams
    assert hp.num_classes == 1000 and hp.conv == "dcd" and hp.lr_base_batch_size
    gpus, per_gpu = map(int, re.search(r"_(\d+)xb(\d+)_", recipe.name).groups())  # the NxbB in the name
    assert cli.datamodule.hparams.batch_size == per_gpu and gpus * per_gpu == hp.lr_base_batch_size
    # the official training command: label smoothing 0.1 and mixup 0.2 ramped over 100 epochs
    assert hp.label_smoothing == 0.1 and hp.mixup_alpha == 0.2 and hp.mixup_ramp_epochs == 100
    assert RECIPES_OFFICIAL[recipe.stem] == (cli.trainer.max_epochs, hp.dropout, hp.weight_decay)
    cli.model.eval()
    with torch.no_grad():
        assert cli.model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


@pytest.mark.parametrize(("trainer_file", "devices", "strategy"), [("gpu1.yaml", 1, "auto"),
                                                                   ("ddp_4gpu.yaml", 4, "ddp"),
                                                                   ("ddp_8gpu.yaml", 8, "ddp")])
def test_gpu_trainer_files_resolve_through_the_cli(trainer_file: str, devices: int, strategy: str):
    """Parsed and validated by the real CLI (--print_config stops before a GPU would be needed)."""
    trainer = resolved_config(main, [R50, CONFIGS / "trainer" / trainer_file])["trainer"]
    assert trainer["accelerator"] == "gpu" and trainer["devices"] == devices
    assert trainer["strategy"] == strategy and trainer["precision"] == "32-true" and trainer["max_epochs"] == 120


def test_recipe_lr_is_rescaled_to_the_global_batch(tmp_path: Path):
    """resnet50 recipe: lr 0.1 for 256 images; one CPU device with 16 per batch -> 0.1 * 16 / 256."""
    fixture = IMAGENET_FIXTURE
    cli = run_cli(main, [R50], tmp_path, f"--data.init_args.root={fixture}", *ON_CPU,
                  "--data.init_args.batch_size=2", "--data.init_args.num_workers=0",
                  "--data.init_args.image_size=32", "--data.init_args.val_resize=36", "--trainer.fast_dev_run=1")
    assert cli.trainer.optimizers[0].param_groups[0]["initial_lr"] == pytest.approx(0.1 * 2 / 256)


def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(tmp_path: Path):
    # a crash in the middle of the second epoch: the run resumes from the checkpoint written after the first
    check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.conv=dy", "--trainer.deterministic=true",
                 epochs=2, stop_after=1, crash=True)


def test_unknown_or_invalid_config_values_are_named(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, "--model.kernels=4")
    assert exc.value.code == 2 and "--model.kernels=4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, "--model.conv=cond")
    err = capsys.readouterr().err
    assert "model.conv" in err and "'static', 'dy', 'dcd'" in err and "usage:" not in err


def test_missing_imagenet_is_one_paragraph(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "projects.dcd", "fit", f"--config={R50}", f"--data.init_args.root={tmp_path}/x",
         f"--trainer.default_root_dir={tmp_path}", *ON_CPU],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"error: ImageNet folder {tmp_path}/x does not exist" in proc.stderr


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_the_demo_to_the_end(tmp_path: Path):
    proc, ckpt = fit_in_subprocess("dcd", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"], tmp_path,
                                   *TINY, "--trainer.max_epochs=2")
    assert "`Trainer.fit` stopped: `max_epochs=2` reached." in proc.stderr + proc.stdout
    # 64 images split over 2 processes, 16 per batch: 2 steps an epoch, 2 epochs.
    assert ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"] == 2
    assert ckpt["global_step"] == 2 * (64 // 2 // 16)


def test_a_diverging_learning_rate_stops_with_one_paragraph(tmp_path: Path):
    err = check_nan_stop(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.lr=1e30")
    assert "the loss returned by training_step = nan" in err
