"""Every committed config through the real CLI, the median-of-last-epochs evaluation, resume, and DDP on two
CPU processes."""

from pathlib import Path

import pytest

from projects.automix.__main__ import main
from shared.testing import check_nan_stop, check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[3]
CIFAR = REPO / "shared" / "tests" / "fixtures" / "cifar"
IMAGENET = REPO / "shared" / "tests" / "fixtures" / "imagenet"
TINY = ("--data.init_args.train_subset=64", "--data.init_args.val_subset=32", "--data.init_args.batch_size=16",
        "--model.width=0.125")
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32")


@pytest.mark.parametrize("policy", ["automix", "mixup", "none"])
def test_demo_trains(policy: str, tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--trainer.max_epochs=1",
                  f"--model.policy={policy}")
    metrics = cli.trainer.callback_metrics
    assert 0 <= float(metrics["val/acc"]) <= 100
    assert ("val/acc_ema" in metrics) == (policy == "automix")


def test_demo_with_the_cpu_trainer_file(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "cpu.yaml"], tmp_path, *TINY,
                  "--trainer.fast_dev_run=2")
    assert cli.trainer.global_step == 2


def test_automix_resumes_exactly_with_its_ema_network_and_medians(tmp_path: Path):
    metrics = check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY,
                           "--trainer.callbacks+=projects.automix.module.MedianOfLastEpochs",
                           "--trainer.callbacks.epochs=2", epochs=2, stop_after=1)
    assert "val/acc_ema_median" in metrics and "val/acc_median" in metrics


def test_cifar100_recipe_on_fixture_files(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "automix_resnet18_1xb100_cifar100.yaml"], tmp_path,
                  f"--data.init_args.data_dir={CIFAR}", *ON_CPU, "--data.init_args.batch_size=3",
                  "--data.init_args.num_workers=0", "--trainer.fast_dev_run=1")
    assert cli.trainer.global_step == 1 and cli.model.hparams.min_lr_ratio == 0.5
    assert sum(p.numel() for p in cli.model.backbone.parameters()) == 11_168_832  # CIFAR ResNet-18


def test_imagenet_recipe_on_fixture_folders(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "automix_resnet50_8xb32_imagenet.yaml"], tmp_path,
                  f"--data.init_args.root={IMAGENET}", *ON_CPU, "--data.init_args.batch_size=2",
                  "--data.init_args.num_workers=0", "--data.init_args.image_size=64", "--data.init_args.val_resize=72",
                  "--trainer.fast_dev_run=1")
    assert cli.trainer.global_step == 1 and cli.model.mix_block.lam_concat


@pytest.mark.parametrize(("trainer_file", "devices"), [("gpu1.yaml", 1), ("ddp_8gpu.yaml", 8)])
@pytest.mark.parametrize("recipe", ["automix_resnet18_1xb100_cifar100.yaml", "automix_resnet50_8xb32_imagenet.yaml"])
def test_gpu_trainer_files_resolve(recipe: str, trainer_file: str, devices: int):
    config = resolved_config(main, [CONFIGS / recipe, CONFIGS / "trainer" / trainer_file])
    assert config["trainer"]["accelerator"] == "gpu" and config["trainer"]["devices"] == devices


def test_unknown_policy_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, "--model.policy=puzzlemix")
    err = capsys.readouterr().err
    assert exc.value.code != 0 and "puzzlemix" in err


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path: Path):
    _, ckpt = fit_in_subprocess("automix", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"], tmp_path,
                                *TINY, "--trainer.max_epochs=1")
    assert ckpt["global_step"] == 2  # 64 images / (2 processes × 16)
    state = ckpt["state_dict"]
    assert any(k.startswith("backbone_k.") for k in state) and any(k.startswith("mix_block.") for k in state)


def test_fine_grained_data_through_the_cli(tmp_path: Path):
    fixtures = Path(__file__).parent / "fixtures"
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, "--model.width=0.125", "--model.in_channels=3",
                  "--model.num_classes=3", "--data=projects.automix.data.ImageListDataModule",
                  "--data.dataset=aircraft", f"--data.root={fixtures / 'fgvc-aircraft-2013b'}",
                  "--data.batch_size=2", "--data.num_workers=0", "--data.image_size=32", "--trainer.fast_dev_run=1")
    assert cli.trainer.global_step == 1


def test_num_classes_mismatch_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    fixtures = Path(__file__).parent / "fixtures"
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, "--model.width=0.125", "--model.in_channels=3",
                "--data=projects.automix.data.ImageListDataModule", "--data.dataset=cub200",
                f"--data.root={fixtures / 'CUB_200_2011'}", "--data.num_workers=0", "--data.image_size=32",
                "--trainer.fast_dev_run=1")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1 and "num_classes is 10 but the data has 2" in err[0]


def test_a_diverging_learning_rate_stops_with_one_paragraph(tmp_path: Path):
    err = check_nan_stop(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.lr=1e30")
    assert "the loss returned by training_step = nan" in err
