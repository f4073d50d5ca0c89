"""Every committed config through the real CLI, resume, DDP on two CPU processes, and the track / video entries."""

from pathlib import Path

import numpy as np
import pytest
import torch

from projects.stgt.__main__ import main
from projects.stgt.evaluate import main as evaluate_main
from projects.stgt.mot import read_tracks
from shared.testing import check_nan_stop, check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FIXTURES = Path(__file__).parent / "fixtures"
TINY_DATA = ("--data.init_args.train_sequences=2", "--data.init_args.val_sequences=1",
             "--data.init_args.sequence_length=40", "--data.init_args.batch_size=8")
TINY = ("--model.dim=16", "--model.ff=32", *TINY_DATA, "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2")
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32",
          "--data.init_args.num_workers=0")
RECIPES = ["stgt_1xb32_mot17.yaml", "stgt_1xb32_mot20.yaml"]


def test_demo_trains_and_validates(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--trainer.max_epochs=1")
    metrics = cli.trainer.callback_metrics
    for key in ("train/loss", "val/loss", "val/assign_acc", "val/loss_sink"):
        assert torch.isfinite(metrics[key]), key
    assert (tmp_path / "logs").exists() and list(tmp_path.rglob("last.ckpt"))


def test_demo_with_the_cpu_trainer_file(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "cpu.yaml"], tmp_path, *TINY,
                  "--trainer.fast_dev_run=2")
    assert cli.trainer.global_step == 2


def test_demo_resumes_exactly(tmp_path: Path):
    check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, epochs=2, stop_after=1, crash=True)  # mid-epoch


@pytest.mark.parametrize("recipe", RECIPES)
def test_paper_recipes_on_fixture_mot_folders(recipe: str, tmp_path: Path):
    cli = run_cli(main, [CONFIGS / recipe], tmp_path, f"--data.init_args.root={FIXTURES / 'MOT17' / 'train'}",
                  *ON_CPU, "--data.init_args.batch_size=4", "--trainer.fast_dev_run=1")
    hp = cli.model.hparams
    assert (hp.dim, hp.heads, hp.window, hp.optimizer, hp.lr) == (1024, 8, 5, "sgd", 0.0015)
    assert cli.trainer.global_step == 1


@pytest.mark.parametrize(("trainer_file", "devices"), [("gpu1.yaml", 1), ("ddp_8gpu.yaml", 8)])
@pytest.mark.parametrize("recipe", RECIPES)
def test_gpu_trainer_files_resolve(recipe: str, trainer_file: str, devices: int):
    config = resolved_config(main, [CONFIGS / recipe, CONFIGS / "trainer" / trainer_file])
    assert config["trainer"]["accelerator"] == "gpu" and config["trainer"]["devices"] == devices


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path: Path):
    fit_in_subprocess("stgt", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"], tmp_path, *TINY,
                      "--trainer.max_epochs=1")
    ckpt = next(tmp_path.rglob("last.ckpt"))
    assert torch.load(ckpt, weights_only=False)["global_step"] == 3


def test_window_and_appearance_mismatches_are_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--data.init_args.window=3", "--trainer.fast_dev_run=1")
    err = capsys.readouterr().err
    assert "data.init_args.window=3 but model.window=5" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.appearance_dim=8", "--trainer.fast_dev_run=1")
    assert "data.init_args.appearance_dim=0 but model.appearance_dim=8" in capsys.readouterr().err


def test_demo_with_simulated_appearance_trains_and_tracks(tmp_path: Path, capsys: pytest.CaptureFixture):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.appearance_dim=8",
                  "--data.init_args.appearance_dim=8", "--trainer.max_epochs=1")
    assert cli.model.net.src_embed.in_features == 4 + 8 and torch.isfinite(cli.trainer.callback_metrics["val/loss"])
    ckpt = next(tmp_path.rglob("last.ckpt"))
    main(["track", "--seq", "TUD-Campus", "--ckpt", str(ckpt), "--out", str(tmp_path / "tud.txt")])
    assert len(read_tracks(tmp_path / "tud.txt")) > 0
    seq = FIXTURES / "MOT17" / "train" / "MOT17-02-FRCNN"  # its det.txt has no embeddings
    with pytest.raises(SystemExit):
        main(["track", "--seq", str(seq), "--ckpt", str(ckpt), "--out", str(tmp_path / "x.txt")])
    assert "det/det.txt: the detections carry 0 embedding columns but the checkpoint's model takes 8" in \
        capsys.readouterr().err


def test_missing_mot_root_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        run_cli(main, [CONFIGS / "stgt_1xb32_mot17.yaml"], tmp_path, "--data.init_args.root=/nowhere/MOT17/train",
                *ON_CPU, "--trainer.fast_dev_run=1")
    err = capsys.readouterr().err
    assert "/nowhere/MOT17/train is not a folder" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ckpt")
    run_cli(main, [CONFIGS / "demo.yaml"], root, *TINY, "--trainer.max_epochs=1")
    return next(root.rglob("last.ckpt"))


@pytest.mark.parametrize("method", ["stgt", "byte", "sort", "stgt_nocascade"])
def test_track_then_evaluate_a_mot_folder(method: str, checkpoint: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture):
    seq = FIXTURES / "MOT17" / "train" / "MOT17-02-FRCNN"
    out = tmp_path / "pred" / "MOT17-02-FRCNN.txt"
    main(["track", "--seq", str(seq), "--out", str(out), "--method", method, "--ckpt", str(checkpoint)])
    rows = read_tracks(out)
    assert len(rows) > 0 and rows[:, 0].max() <= 30
    assert all(len(set(rows[rows[:, 0] == f, 1])) == (rows[:, 0] == f).sum() for f in np.unique(rows[:, 0]))
    scores = evaluate_main(["--gt", str(seq), "--pred", str(out)])
    s = scores["MOT17-02-FRCNN"]
    assert np.isfinite(s["mota"]) and s["mota"] <= 1 and 0 < s["hota"] <= 1 and 0 < s["idf1"] <= 1
    assert "MOT17-02-FRCNN" in capsys.readouterr().out


def test_track_embedded_sequence_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture):
    main(["track", "--seq", "TUD-Campus", "--out", str(tmp_path / "tud.txt"), "--method", "byte"])
    assert read_tracks(tmp_path / "tud.txt")[:, 0].max() <= 71
    with pytest.raises(SystemExit) as exc:
        main(["track", "--seq", "TUD-Campus", "--out", str(tmp_path / "x.txt")])  # stgt without --ckpt
    assert exc.value.code == 2 and "--ckpt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["track", "--seq", str(tmp_path), "--out", str(tmp_path / "x.txt"), "--method", "byte"])
    assert "seqinfo.ini" in capsys.readouterr().err


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.mark.skipif(not VTEST.is_file(), reason="make data installs opencv-doc (vtest.avi)")
def test_hog_video_tracking_writes_pictures(tmp_path: Path):
    from projects.stgt.video import main as video_main

    stats = video_main(["--frames", "4", "--method", "byte", "--still", str(tmp_path / "s.png"), "--still-frame",
                        "4", "--gif", str(tmp_path / "a.gif"), "--out", str(tmp_path / "t.txt"),
                        "--det-out", str(tmp_path / "det.txt")])
    assert stats["frames"] == 4 and stats["detections"] > 0
    assert (tmp_path / "s.png").stat().st_size > 1000 and (tmp_path / "a.gif").stat().st_size > 1000
    det = np.loadtxt(tmp_path / "det.txt", delimiter=",")
    assert det.shape[1] == 10 and ((det[:, 6] > 0) & (det[:, 6] < 1)).all()



def test_a_diverging_learning_rate_stops_with_one_paragraph(tmp_path: Path):
    err = check_nan_stop(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--model.lr=1e30")
    assert "the loss returned by training_step = nan" in err


def test_track_with_a_truncated_checkpoint_is_one_paragraph(checkpoint: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(SystemExit) as exc:
        main(["track", "--seq", "TUD-Campus", "--out", str(tmp_path / "x.txt"), "--ckpt", str(broken)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert f"error: --ckpt {broken} is not a readable checkpoint" in err and "logs/stgt/latest" in err


def test_help_names_the_track_entry(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "python -m projects.stgt track --help" in capsys.readouterr().out
