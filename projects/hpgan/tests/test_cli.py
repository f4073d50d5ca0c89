"""Every committed config through the real CLI, resume from a checkpoint, DDP on two CPU processes, the
evaluation of a trained model, and errors a user meets."""

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from projects.hpgan.__main__ import main
from projects.hpgan.data import DEFAULT_BVH_DIR
from projects.hpgan.module import HPGAN, ActionRecognition
from shared.testing import check_nan_stop, check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FIXTURES = Path(__file__).parent / "fixtures"
TINY_MODEL = ("--model.hidden=16", "--model.embed=8", "--model.z_dim=8", "--model.critic_embed=8",
              "--model.critic_hidden=16", "--model.critic_steps=2", "--model.num_samples=3")
TINY = (*TINY_MODEL, "--data.init_args.batch_size=8", "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2")
SHORT = ("--model.n_obs=2", "--model.n_pred=3", "--data.init_args.n_obs=2", "--data.init_args.n_pred=3",
         "--data.init_args.batch_size=4", "--data.init_args.num_workers=0")
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32")
EMBEDDED = pytest.mark.skipif(not Path(DEFAULT_BVH_DIR).is_dir(), reason="make data installs assimp-testmodels")


@EMBEDDED
@pytest.mark.parametrize("variant", ["--model.use_z=true", "--model.use_z=false", "--model.residual=true"])
def test_demo_trains_and_evaluates(variant: str, tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--trainer.max_epochs=1", variant)
    metrics = cli.trainer.callback_metrics
    for key in ("val/ade", "val/fde", "val/apd", "val/zv_ade", "val/mpjpe_80ms", "val/looks_real_generated"):
        assert torch.isfinite(metrics[key]), key
    if variant == "--model.use_z=false":
        assert float(metrics["val/apd"]) < 1e-3  # no z: the K futures coincide (to rounding, in mm)
    assert float(metrics["val/zv_mpjpe_80ms"]) < float(metrics["val/zv_mpjpe_800ms"])
    assert torch.count_nonzero(cli.model.std) == 14 * 3  # the statistics came from the data (pelvis: 0)


@EMBEDDED
def test_demo_with_the_cpu_trainer_file(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "cpu.yaml"], tmp_path, *TINY,
                  "--trainer.fast_dev_run=1")
    assert cli.trainer.global_step == 2 + 1 + 2  # critic, quality and generator optimiser steps of one batch


@EMBEDDED
def test_hpgan_resumes_exactly(tmp_path: Path):
    check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, epochs=2, stop_after=1, crash=True)  # mid-epoch


@pytest.mark.parametrize(("recipe", "data_dir"), [("hpgan_1xb16_h36m.yaml", FIXTURES / "h3.6m" / "dataset"),
                                                  ("hpgan_1xb16_ntu.yaml", FIXTURES / "nturgbd_skeletons")])
def test_paper_recipes_on_fixture_files(recipe: str, data_dir: Path, tmp_path: Path):
    if "h36m" in recipe:
        extra = ["--data.init_args.actions=[walking]", "--data.init_args.train_subjects=[1]",
                 "--data.init_args.test_protocol=all"]
    else:
        extra = ["--data.init_args.min_frames=10", "--data.init_args.actions=[1,8]",
                 "--data.init_args.train_performers=[1,2]"]
    cli = run_cli(main, [CONFIGS / recipe], tmp_path, f"--data.init_args.data_dir={data_dir}", *SHORT, *ON_CPU,
                  "--data.init_args.train_stride=1", "--data.init_args.test_stride=1", *extra,
                  "--trainer.fast_dev_run=1")
    model = cli.model
    assert model.generator.encoder.hidden_size == 1024 and model.critic.feature_dim == 512
    assert model.hparams.lr == 5e-5 and cli.trainer.global_step == 9 + 1 + 2


@pytest.mark.parametrize(("trainer_file", "devices"), [("gpu1.yaml", 1), ("ddp_8gpu.yaml", 8)])
@pytest.mark.parametrize("recipe", ["hpgan_1xb16_h36m.yaml", "hpgan_1xb16_ntu.yaml"])
def test_gpu_trainer_files_resolve(recipe: str, trainer_file: str, devices: int):
    config = resolved_config(main, [CONFIGS / recipe, CONFIGS / "trainer" / trainer_file])
    assert config["trainer"]["accelerator"] == "gpu" and config["trainer"]["devices"] == devices


def test_window_mismatch_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / "hpgan_1xb16_h36m.yaml"], tmp_path,
                f"--data.init_args.data_dir={FIXTURES / 'h3.6m' / 'dataset'}", "--data.init_args.actions=[walking]",
                "--data.init_args.train_subjects=[1]", "--data.init_args.test_protocol=all",
                "--data.init_args.n_obs=2", "--data.init_args.n_pred=3",
                *ON_CPU, *TINY_MODEL,
                "--trainer.fast_dev_run=1")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1 and "predicts 20 frames from 10" in err[0]


@EMBEDDED
def test_frame_rate_mismatch_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.fps=30", "--trainer.fast_dev_run=1")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1 and "25.0 fps" in err[0] and "model.fps" in err[0]


def test_missing_data_folder_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [CONFIGS / "hpgan_1xb16_ntu.yaml"], tmp_path, f"--data.init_args.data_dir={tmp_path / 'none'}",
                *ON_CPU, "--trainer.fast_dev_run=1")
    err = capsys.readouterr().err
    assert exc.value.code == 1 and "nturgbd_skeletons archive" in err


@EMBEDDED
def test_action_classifier_starts_from_a_trained_critic(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--trainer.max_epochs=1")
    ckpt = Path(cli.trainer.checkpoint_callback.last_model_path)
    classes = len(cli.datamodule.classes)
    transferred = ActionRecognition(classes, critic_checkpoint=str(ckpt))  # sizes come from the checkpoint
    poses = cli.datamodule.val_set[0]["poses"][None]
    gan = HPGAN.load_from_checkpoint(ckpt)
    normalised = gan.normalise(poses)
    assert torch.equal(transferred.classifier.trunk.features(normalised), gan.critic.features(normalised))
    assert transferred(poses).shape == (1, classes)
    # a checkpoint of the classifier reloads without the GAN's checkpoint, which may be gone by then
    trainer = L.Trainer(logger=False, enable_progress_bar=False, max_epochs=0)
    trainer.strategy.connect(transferred)
    trainer.save_checkpoint(tmp_path / "classifier.ckpt")
    ckpt.unlink()
    reloaded = ActionRecognition.load_from_checkpoint(tmp_path / "classifier.ckpt")
    torch.testing.assert_close(reloaded(poses), transferred(poses))


class WriteWeightSums(L.Callback):
    """Each process writes the sum of each network's weights when training ends (DDP must keep them equal) and
    of its first batch (the processes must see different data, or equal weights would prove nothing)."""

    first_batch = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == 0:
            self.first_batch = float(batch["poses"].double().sum())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        sums = {name: float(sum(p.double().sum() for p in getattr(pl_module, name).parameters()))
                for name in ("generator", "critic", "quality")}
        sums["first_batch"] = self.first_batch
        Path(trainer.default_root_dir, f"sums_rank{trainer.global_rank}.yaml").write_text(yaml.safe_dump(sums))


@EMBEDDED
@pytest.mark.slow
def test_ddp_on_two_cpu_processes_keeps_the_networks_in_step(tmp_path: Path):
    _, ckpt = fit_in_subprocess("hpgan", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"], tmp_path,
                                *TINY, "--trainer.max_epochs=1",
                                "--trainer.callbacks+=projects.hpgan.tests.test_cli.WriteWeightSums")
    assert ckpt["global_step"] == 3 * (2 + 1 + 2)  # 3 batches a process, 5 optimiser steps each
    assert any(k.startswith("quality.") for k in ckpt["state_dict"]) and "mean" in ckpt["state_dict"]
    rank0, rank1 = (yaml.safe_load((tmp_path / f"sums_rank{r}.yaml").read_text()) for r in (0, 1))
    assert rank0.pop("first_batch") != pytest.approx(rank1.pop("first_batch"))
    assert rank0 == pytest.approx(rank1, rel=1e-6)  # gradients were averaged at every one of the backward passes


def test_a_diverging_learning_rate_stops_the_gan_with_one_paragraph(tmp_path: Path):
    # manual optimisation: training_step returns nothing, the logged losses are checked
    err = check_nan_stop(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.lr=1e30", "--model.quality_lr=1e30")
    assert "train/critic_step = nan" in err and "train/generator_step = nan" in err
