"""Every committed config through the real CLI: the three CPU stages chained (teacher -> SEED -> probe),
the ImageNet recipes at full size, resume, and DDP on two CPU processes."""

from pathlib import Path

import pytest
import torch

from projects.seed.__main__ import main
from shared.testing import check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[3]
IMAGENET = REPO / "shared" / "tests" / "fixtures" / "imagenet"
TINY = ("--data.init_args.train_subset=64", "--data.init_args.val_subset=32", "--data.init_args.batch_size=16")
SSL_TINY = (*TINY, "--data.init_args.bank_subset=64", "--model.init_args.queue_size=64")
RECIPES = sorted(p for p in CONFIGS.glob("*_imagenet.yaml"))
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32")


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    cli = run_cli(main, [CONFIGS / "demo.yaml"], root, *SSL_TINY, "--trainer.max_epochs=1")
    assert 0 <= float(cli.trainer.callback_metrics["val/knn_acc1"]) <= 1
    return Path(cli.trainer.checkpoint_callback.last_model_path)


def test_seed_demo_distils_from_the_demo_teacher(teacher_ckpt: Path, tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo_seed.yaml"], tmp_path, *SSL_TINY, "--trainer.max_epochs=1",
                  f"--model.init_args.teacher_ckpt={teacher_ckpt}")
    teacher = torch.load(teacher_ckpt, weights_only=False)["state_dict"]
    torch.testing.assert_close(cli.model.teacher[0].state_dict(),
                               {k[len("encoder."):]: v for k, v in teacher.items() if k.startswith("encoder.")})
    assert "val/knn_acc1" in cli.trainer.callback_metrics


@pytest.mark.parametrize("stage", ["teacher", "seed"])
def test_linear_demo_probes_a_checkpoint(stage: str, teacher_ckpt: Path, tmp_path: Path):
    ckpt = teacher_ckpt
    if stage == "seed":
        seed = run_cli(main, [CONFIGS / "demo_seed.yaml"], tmp_path / "seed", *SSL_TINY, "--trainer.max_epochs=1",
                       f"--model.init_args.teacher_ckpt={teacher_ckpt}")
        ckpt = Path(seed.trainer.checkpoint_callback.last_model_path)
    cli = run_cli(main, [CONFIGS / "demo_linear.yaml"], tmp_path / "probe", *TINY, "--trainer.max_epochs=1",
                  f"--model.init_args.encoder_ckpt={ckpt}")
    frozen = torch.load(ckpt, weights_only=False)["state_dict"]
    probed = cli.model.encoder.state_dict()
    torch.testing.assert_close(probed, {k[len("encoder."):]: v for k, v in frozen.items()
                                        if k.startswith("encoder.")})  # the encoder did not move
    assert 0 <= float(cli.trainer.callback_metrics["val/acc1"]) <= 1


def test_missing_teacher_checkpoint_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / "demo_seed.yaml"], tmp_path, f"--model.init_args.teacher_ckpt={tmp_path}/t.ckpt")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1 and "demo.yaml" in err[0]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_imagenet_recipe_builds_full_size_models(recipe: Path, tmp_path: Path):
    cli = main(args=[f"--config={recipe}", f"--data.init_args.root={IMAGENET}",
                     f"--trainer.default_root_dir={tmp_path}", *ON_CPU], run=False)
    assert cli.datamodule.hparams.batch_size * 8 == 256
    cli.model.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 224, 224)
        out = cli.model(x) if hasattr(cli.model, "classifier") else cli.model.embed(x)
    assert out.shape == ((2, 1000) if hasattr(cli.model, "classifier") else (2, 128))


@pytest.mark.parametrize(("trainer_file", "devices"), [("gpu1.yaml", 1), ("ddp_8gpu.yaml", 8)])
def test_gpu_trainer_files_resolve(trainer_file: str, devices: int):
    trainer = resolved_config(main, [RECIPES[0], CONFIGS / "trainer" / trainer_file])["trainer"]
    assert trainer["accelerator"] == "gpu" and trainer["devices"] == devices and trainer["precision"] == "16-mixed"
    if devices == 8:
        assert trainer["strategy"]["init_args"]["broadcast_buffers"] is False


def test_demo_with_the_cpu_trainer_file(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "cpu.yaml"], tmp_path, *SSL_TINY,
                  "--trainer.fast_dev_run=2")
    assert cli.trainer.global_step == 2


def test_imagenet_ssl_data_through_the_cli(tmp_path: Path):
    recipe = CONFIGS / "mocov2_resnet50_8xb32_imagenet.yaml"
    cli = run_cli(main, [recipe], tmp_path, f"--data.init_args.root={IMAGENET}", *ON_CPU,
                  "--data.init_args.batch_size=4", "--data.init_args.num_workers=0", "--data.init_args.image_size=32",
                  "--model.init_args.bn_splits=2", "--model.init_args.queue_size=64", "--trainer.fast_dev_run=1")
    assert cli.trainer.global_step == 1


def test_seed_resumes_exactly(teacher_ckpt: Path, tmp_path: Path):
    check_resume(main, [CONFIGS / "demo_seed.yaml"], tmp_path, *SSL_TINY, "--model.init_args.student_width=4",
                 f"--model.init_args.teacher_ckpt={teacher_ckpt}", epochs=2, stop_after=1)


def test_moco_resumes_exactly(tmp_path: Path):
    check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *SSL_TINY, "--model.init_args.arch=conv4",
                 "--model.init_args.width=4", epochs=2, stop_after=1)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gathers_the_queue(tmp_path: Path):
    _, ckpt = fit_in_subprocess("seed", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"], tmp_path,
                                *SSL_TINY, "--model.init_args.arch=conv4", "--model.init_args.width=4",
                                "--model.init_args.queue_size=40", "--trainer.max_epochs=1")
    # 64 images over 2 processes, 16 a batch: 2 steps, each pushing the 2 x 16 keys of both processes
    assert ckpt["global_step"] == 2 and int(ckpt["state_dict"]["queue.pointer"]) == 2 * 2 * 16 % 40


@pytest.mark.parametrize(("config", "key"), [("demo_seed.yaml", "teacher_ckpt"), ("demo_linear.yaml", "encoder_ckpt")])
def test_required_checkpoint_missing_stops_before_training(config: str, key: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / config], tmp_path, *TINY)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1
    assert f"model.init_args.{key} is required by" in err[0] and "'random'" in err[0]
    assert not list(tmp_path.rglob("*.ckpt")) and not (tmp_path / "logs").exists()


def test_random_encoder_is_an_explicit_choice(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo_linear.yaml"], tmp_path, *TINY, "--trainer.max_epochs=1",
                  "--model.init_args.encoder_ckpt=random")
    assert cli.model.hparams.encoder_ckpt == "random" and cli.trainer.global_step == 4


@pytest.mark.parametrize("key", ["teacher_ckpt", "encoder_ckpt"])
def test_truncated_teacher_or_encoder_checkpoint_is_one_paragraph(key: str, teacher_ckpt: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(teacher_ckpt.read_bytes()[:-300])
    config = "demo_seed.yaml" if key == "teacher_ckpt" else "demo_linear.yaml"
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / config], tmp_path, *SSL_TINY if key == "teacher_ckpt" else TINY,
                f"--model.init_args.{key}={broken}")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1
    assert f"(model.init_args.{key}) {broken} is not a readable checkpoint" in err[0] and "truncated" in err[0]


def test_teacher_cache_command_trains_the_committed_config_and_writes_a_slim_teacher(tmp_path: Path):
    from projects.seed import teacher
    from projects.seed.module import SEED

    # the config as the cache command runs it (on 64 images for the test), then the command's export step
    cli = run_cli(main, [CONFIGS / "mocov2_r10w16_1xb256_fmnist.yaml"], tmp_path / "run", *SSL_TINY,
                  "--trainer.max_epochs=1")
    assert cli.model.hparams.arch == "resnet_small" and cli.model.hparams.width == 16
    slim = teacher.export(Path(cli.trainer.checkpoint_callback.last_model_path), tmp_path / "t.pt", {"test": True})
    saved = torch.load(slim, weights_only=False)
    assert saved["provenance"] == {"test": True}
    assert {v.dtype for v in saved["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    student = SEED(student_arch="conv4", student_width=4, teacher_ckpt=str(slim), teacher_width=16, queue_size=8)
    assert torch.equal(student.teacher[0].state_dict()["body.0.0.weight"],
                       cli.model.encoder.state_dict()["body.0.0.weight"].half().float())


def test_the_committed_cached_teacher_loads_into_seed():
    from projects.seed import teacher
    from projects.seed.module import SEED

    if not teacher.CACHE.is_file():
        pytest.skip(f"{teacher.CACHE} not made yet ({teacher.COMMAND})")
    assert teacher.CACHE.stat().st_size < 2_000_000
    student = SEED(student_arch="conv4", student_width=4, teacher_ckpt=str(teacher.CACHE), teacher_width=16)
    assert student.teacher[0].feature_dim == 128
    assert torch.load(teacher.CACHE, weights_only=False)["provenance"]["command"] == teacher.COMMAND
