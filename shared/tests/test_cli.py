"""The shared LightningCLI entry: defaults, resume, and errors that say what to do."""

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
import yaml

from shared.cli import cli_main
from shared.errors import CorruptDataError, user_message
from shared.testing import SimulatedCrash, check_resume, last_checkpoint, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "fashion-mnist"


class TinyClassifier(L.LightningModule):
    """Dropout and a momentum optimiser, so a resumed run only matches if RNG and optimiser state do."""

    def __init__(self, hidden: int = 16, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, hidden), torch.nn.ReLU(),
                                       torch.nn.Dropout(0.2), torch.nn.Linear(hidden, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def tiny_main(args=None, run=True):
    return cli_main(TinyClassifier, run_name="tiny", args=args, run=run)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"hidden": 8},
        "data": {"class_path": "shared.fashion_mnist.FashionMNISTDataModule",
                 "init_args": {"data_dir": str(FIXTURES), "batch_size": 4}},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "deterministic": True},
    }))
    return path


def test_defaults_loggers_last_checkpoint_and_saved_config(config: Path, tmp_path: Path):
    cli = run_cli(tiny_main, [config], tmp_path / "run")
    version = tmp_path / "run" / "logs" / "tiny" / "version_0"
    assert (version / "metrics.csv").is_file()
    assert list(version.glob("events.out.tfevents.*")), "TensorBoard logger did not write"
    assert (version / "checkpoints" / "last.ckpt").is_file()
    saved = yaml.safe_load((version / "config.yaml").read_text())
    assert saved["model"]["hidden"] == 8 and saved["seed_everything"] == 0
    assert cli.trainer.current_epoch == 1


def test_resume_from_last_checkpoint_matches_uninterrupted_run(config: Path, tmp_path: Path):
    metrics = check_resume(tiny_main, [config], tmp_path, epochs=3, stop_after=1)
    assert {"train/loss_epoch", "val/acc"} <= metrics.keys() or {"train/loss", "val/acc"} <= metrics.keys()


def test_unknown_key_on_the_command_line_is_one_paragraph(config: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(tiny_main, [config], tmp_path, "--model.hiden=3")
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 2 and "usage:" not in err and len(errors) == 1
    assert "unrecognized arguments: --model.hiden=3" in errors[0] and "fit --help" in errors[0]


def test_unknown_key_in_a_config_file_names_the_file(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    typo = tmp_path / "typo.yaml"
    typo.write_text("model:\n  hiden: 3\n")
    with pytest.raises(SystemExit):
        run_cli(tiny_main, [config, typo], tmp_path)
    err = capsys.readouterr().err
    assert f"The key 'model.hiden' comes from {typo}." in err and "usage:" not in err


def test_missing_dataset_is_one_paragraph_without_traceback(config: Path, tmp_path: Path):
    code = ("from shared.tests.test_cli import tiny_main; "
            f"tiny_main(args=['fit', '--config={config}', '--data.init_args.data_dir={tmp_path}/none', "
            f"'--trainer.default_root_dir={tmp_path}'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"error: Fashion-MNIST folder {tmp_path}/none does not exist" in proc.stderr
    assert "apt-get install dataset-fashion-mnist" in proc.stderr


def test_key_inside_a_class_path_section_is_named_with_its_file(config: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture):
    typo = tmp_path / "typo.yaml"
    typo.write_text("data:\n  init_args:\n    batch_sise: 3\n")
    with pytest.raises(SystemExit):
        run_cli(tiny_main, [config, typo], tmp_path)
    err = capsys.readouterr().err
    assert "Option 'batch_sise' is not accepted" in err and f"'data.batch_sise' comes from {typo}" in err


def test_truncated_idx_file_stops_the_cli_with_one_paragraph(config: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture):
    data = tmp_path / "fmnist"
    shutil.copytree(FIXTURES, data)
    labels = data / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-5]))
    with pytest.raises(SystemExit) as exc:
        run_cli(tiny_main, [config], tmp_path, f"--data.init_args.data_dir={data}")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1
    assert f"{labels} has 23 bytes but its header announces shape (20,)" in err[0] and "reinstall" in err[0]


def test_checkpointing_can_be_turned_off(config: Path, tmp_path: Path):
    cli = run_cli(tiny_main, [config], tmp_path, "--trainer.enable_checkpointing=false")
    assert cli.trainer.checkpoint_callback is None
    assert not list(tmp_path.rglob("*.ckpt"))


def test_worker_tracebacks_are_cut_to_the_original_message():
    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise CorruptDataError("/data/x.JPEG is not a readable image. Replace or delete the file.")

    loader = torch.utils.data.DataLoader(Broken(), num_workers=1)
    with pytest.raises(CorruptDataError) as exc:
        next(iter(loader))
    assert "Original Traceback" in str(exc.value)
    assert user_message(exc.value) == "/data/x.JPEG is not a readable image. Replace or delete the file."


# ---------------------------------------------------------------------------------------------- interruption


def test_crash_mid_epoch_resumes_from_the_epoch_checkpoint_to_the_same_end_state(config: Path, tmp_path: Path):
    check_resume(tiny_main, [config], tmp_path, epochs=3, stop_after=2, crash=True)


def test_sigkill_mid_epoch_leaves_a_checkpoint_that_resumes_exactly(config: Path, tmp_path: Path):
    """A real signal in a separate process: nothing of Lightning's shutdown runs, only what is on disk counts."""
    code = ("from shared.tests.test_cli import tiny_main; import sys; tiny_main(args=sys.argv[1:])")
    args = ["fit", f"--config={config}", "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false",
            "--trainer.callbacks+=shared.testing.CrashAt", "--trainer.callbacks.epoch=2",
            "--trainer.callbacks.batch=2", "--trainer.callbacks.signal=SIGKILL"]
    proc = subprocess.run([sys.executable, "-c", code, *args, f"--trainer.default_root_dir={tmp_path}/killed"],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == -9, proc.stderr[-2000:]
    folder = tmp_path / "killed" / "logs" / "tiny" / "version_0" / "checkpoints"
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]  # no partial file left beside it
    assert torch.load(folder / "last.ckpt", weights_only=False)["epoch"] == 1
    resumed = run_cli(tiny_main, [config], tmp_path / "resumed", "--trainer.max_epochs=3",
                      f"--ckpt_path={folder / 'last.ckpt'}")
    straight = run_cli(tiny_main, [config], tmp_path / "straight", "--trainer.max_epochs=3")
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=lambda m, n=name: f"{n}: {m}")


def test_checkpoint_every_n_train_steps_as_well_as_every_epoch(config: Path, tmp_path: Path):
    # 5 batches an epoch; a crash before batch 3 of epoch 1 (step 8): the step-7 checkpoint (every 7 steps) is newer
    # than the end of epoch 0 (step 5)
    with pytest.raises(SimulatedCrash):
        run_cli(tiny_main, [config], tmp_path, "--trainer.max_epochs=3", "--checkpoint.every_n_train_steps=7",
                "--trainer.callbacks+=shared.testing.CrashAt", "--trainer.callbacks.epoch=1",
                "--trainer.callbacks.batch=3")
    assert torch.load(last_checkpoint(tmp_path), weights_only=False)["global_step"] == 7
    cli = run_cli(tiny_main, [config], tmp_path / "every-epoch", "--trainer.max_epochs=2",
                  "--checkpoint.every_n_train_steps=7", "--trainer.callbacks+=shared.testing.InterruptAfter",
                  "--trainer.callbacks.epochs=2")
    assert torch.load(cli.trainer.checkpoint_callback.last_model_path, weights_only=False)["global_step"] == 10


class BreakSaveAt(L.Callback):
    """From epoch ``epoch`` on, checkpoint writes put a few bytes on disk and then fail, as a full disk or a kill
    in the middle of the write would."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            def broken(checkpoint, path, storage_options=None):
                Path(path).write_bytes(b"PK\x03\x04 truncated")
                raise OSError(28, "No space left on device")
            trainer.strategy.checkpoint_io.save_checkpoint = broken


def test_a_failed_checkpoint_write_keeps_the_previous_one_intact(config: Path, tmp_path: Path):
    with pytest.raises(OSError, match="No space left"):
        run_cli(tiny_main, [config], tmp_path, "--trainer.max_epochs=3",
                "--trainer.callbacks+=shared.tests.test_cli.BreakSaveAt", "--trainer.callbacks.epoch=1")
    saved = torch.load(last_checkpoint(tmp_path), weights_only=False)
    assert saved["epoch"] == 0 and saved["global_step"] == 5


# ---------------------------------------------------------------------------------------------- NaN stop


def test_nan_loss_stops_with_one_paragraph_and_keeps_the_last_good_checkpoint(config: Path, tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(tiny_main, [config], tmp_path, "--trainer.max_epochs=3",
                "--trainer.callbacks+=shared.testing.ScaleLearningRate", "--trainer.callbacks.epoch=1")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 1 and len(err) == 1
    last = last_checkpoint(tmp_path)
    assert re.search(r"the loss is not finite at epoch 1, batch \d \(optimiser step \d+\): the loss returned by "
                     r"training_step = (nan|inf)", err[0]), err[0]
    assert f"--ckpt_path {last}" in err[0] and "learning rate" in err[0]
    saved = torch.load(last, weights_only=False)
    assert saved["epoch"] == 0 and all(torch.isfinite(v).all() for v in saved["state_dict"].values())


def test_nonfinite_weights_are_never_saved(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    # the loss of the only step is finite, but the weights after it are not: the epoch-end save must refuse
    with pytest.raises(SystemExit):
        run_cli(tiny_main, [config], tmp_path, "--trainer.max_epochs=1", "--trainer.limit_train_batches=1",
                "--trainer.callbacks+=shared.tests.test_cli.PoisonWeightsAfterStep")
    err = capsys.readouterr().err
    assert "the weights hold NaN or infinity after optimiser step 1" in err and "net.1.weight" in err
    assert not list(tmp_path.rglob("*.ckpt"))


class PoisonWeightsAfterStep(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with torch.no_grad():
            pl_module.net[1].weight[0, 0] = float("inf")


# ---------------------------------------------------------------------------------------------- --ckpt_path


@pytest.fixture
def trained(config: Path, tmp_path: Path) -> Path:
    run_cli(tiny_main, [config], tmp_path / "trained", "--trainer.max_epochs=1")
    return last_checkpoint(tmp_path / "trained")


def _error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_resume_with_a_conflicting_model_option_is_refused(config: Path, trained: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        run_cli(tiny_main, [config], tmp_path, "--trainer.max_epochs=2", "--model.hidden=32",
                f"--ckpt_path={trained}")
    err = _error_lines(capsys)
    assert exc.value.code == 1 and len(err) == 1
    assert "model.hidden is 8 in the checkpoint but 32 in the command line" in err[0]
    other = tmp_path / "other.yaml"
    other.write_text("model:\n  lr: 0.5\n")
    with pytest.raises(SystemExit):
        run_cli(tiny_main, [config, other], tmp_path, f"--ckpt_path={trained}")
    assert f"model.lr is 0.05 in the checkpoint but 0.5 in {other}" in _error_lines(capsys)[0]


def test_resume_takes_unset_model_options_from_the_checkpoint(config: Path, trained: Path, tmp_path: Path):
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(config.read_text()).items() if k != "model"}))
    cli = run_cli(tiny_main, [bare], tmp_path / "resumed", "--trainer.max_epochs=2", f"--ckpt_path={trained}")
    assert cli.model.hparams.hidden == 8 and cli.trainer.current_epoch == 2  # the default (16) would not load


@pytest.mark.parametrize("size", [0, 100, -200])
def test_truncated_ckpt_path_is_one_paragraph(config: Path, trained: Path, tmp_path: Path, size: int,
                                              capsys: pytest.CaptureFixture):
    broken = tmp_path / "broken.ckpt"
    data = trained.read_bytes()
    broken.write_bytes(data[:size] if size >= 0 else data[:len(data) + size])
    with pytest.raises(SystemExit) as exc:
        run_cli(tiny_main, [config], tmp_path, f"--ckpt_path={broken}")
    err = _error_lines(capsys)
    assert exc.value.code == 1 and len(err) == 1
    assert f"--ckpt_path {broken} is not a readable checkpoint" in err[0] and "truncated" in err[0]


def test_missing_ckpt_path_is_one_paragraph(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        run_cli(tiny_main, [config], tmp_path, f"--ckpt_path={tmp_path}/nope.ckpt")
    err = _error_lines(capsys)
    assert len(err) == 1 and f"--ckpt_path {tmp_path}/nope.ckpt not found" in err[0] and "logs/tiny/" in err[0]


def test_checkpoint_of_another_paper_is_named(config: Path, trained: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture):
    ckpt = torch.load(trained, weights_only=False)
    assert ckpt["repro_zoo"] == {"paper": "tiny"}
    ckpt["repro_zoo"] = {"paper": "dcd"}
    tagged = tmp_path / "dcd.ckpt"
    torch.save(ckpt, tagged)
    with pytest.raises(SystemExit):
        run_cli(tiny_main, [config], tmp_path, f"--ckpt_path={tagged}")
    assert "was written by `python -m projects.dcd`, not by `python -m projects.tiny`" in _error_lines(capsys)[0]
    del ckpt["repro_zoo"]  # an untagged checkpoint whose options this model does not take
    ckpt["hyper_parameters"] = {"arch": "resnet18", "conv": "dcd"}
    untagged = tmp_path / "untagged.ckpt"
    torch.save(ckpt, untagged)
    with pytest.raises(SystemExit):
        run_cli(tiny_main, [config], tmp_path, f"--ckpt_path={untagged}")
    err = _error_lines(capsys)
    assert len(err) == 1 and f"--ckpt_path {untagged} does not hold a model of `python -m projects.tiny`" in err[0]


# ---------------------------------------------------------------------------------------------- run folders


def test_fast_dev_run_writes_no_checkpoint(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    tiny_main(args=["fit", f"--config={config}", "--trainer.fast_dev_run=1", "--trainer.enable_progress_bar=false"])
    assert not list(tmp_path.rglob("*.ckpt")) and not (tmp_path / "checkpoints").exists()


def test_named_run_and_latest_link(config: Path, tmp_path: Path):
    run_cli(tiny_main, [config], tmp_path, "--version=teacher")
    run_cli(tiny_main, [config], tmp_path, "--version=teacher", "--trainer.max_epochs=2")  # the name again
    run_cli(tiny_main, [config], tmp_path)
    logs = tmp_path / "logs" / "tiny"
    assert [p.name for p in (logs / "teacher" / "checkpoints").iterdir()] == ["last.ckpt"]
    assert torch.load(logs / "teacher" / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 2
    assert (logs / "latest").is_symlink() and os.readlink(logs / "latest") == "version_0"
    assert (logs / "latest" / "checkpoints" / "last.ckpt").is_file()


def test_failed_run_leaves_no_empty_version_folder(config: Path, tmp_path: Path):
    with pytest.raises(SimulatedCrash):
        run_cli(tiny_main, [config], tmp_path, "--trainer.callbacks+=shared.testing.CrashAt",
                "--trainer.callbacks.epoch=0", "--trainer.callbacks.batch=0")
    assert not (tmp_path / "logs" / "tiny" / "version_0").exists()
    run_cli(tiny_main, [config], tmp_path)
    assert (tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt").is_file()
