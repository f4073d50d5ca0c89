"""The shared LightningCLI entry: defaults, resume, and errors that say what to do."""

import gzip
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
from shared.testing import check_resume, run_cli

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
