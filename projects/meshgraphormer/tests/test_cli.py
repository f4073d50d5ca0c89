"""Every committed config through the real CLI, resume, DDP on two CPU processes, user errors."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from projects.meshgraphormer.__main__ import main
from projects.meshgraphormer.tests.test_bodymodels import write_fake_smpl
from shared.testing import check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FIXTURES = Path(__file__).parent / "fixtures"
TINY_MODEL = ("--model.backbone_width=16", "--model.input_dims=[16, 8]", "--model.hidden_dims=[16, 8, 8]",
              "--model.layers=1", "--model.heads=2", "--model.grid_size=2")
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32",
          "--data.init_args.num_workers=0")


@pytest.fixture(scope="module")
def hands_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hands")


def tiny(cache: Path) -> tuple[str, ...]:
    return (*TINY_MODEL, "--data.init_args.size=40", "--data.init_args.val_size=8", "--data.init_args.image_size=32",
            "--data.init_args.batch_size=8", f"--data.init_args.cache_dir={cache}", "--trainer.limit_train_batches=3")


def test_demo_trains_and_validates(tmp_path: Path, hands_cache: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *tiny(hands_cache), "--trainer.max_epochs=1")
    metrics = cli.trainer.callback_metrics
    for key in ("train/loss", "val/loss", "val/mpjpe", "val/pa_mpjpe", "val/mpve", "val/pa_mpvpe", "val/f5",
                "val/f15"):
        assert torch.isfinite(metrics[key]), key
    assert 0 <= metrics["val/f15"] <= 1 and metrics["val/pa_mpjpe"] <= metrics["val/mpjpe"] + 1e-3
    assert list(tmp_path.rglob("last.ckpt"))


def test_demo_builds_the_paper_layout(tmp_path: Path, hands_cache: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "cpu.yaml"], tmp_path, *tiny(hands_cache),
                  "--trainer.fast_dev_run=1")
    net = cli.model.net
    assert (net.num_joints, net.num_vertices) == (21, 101)
    assert [b.layers[0].graph is not None for b in net.blocks] == [False, False, True]
    assert [u.out_features for u in net.upsample] == [403, 1609]


def test_demo_resumes_exactly(tmp_path: Path, hands_cache: Path):
    check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *tiny(hands_cache), "--trainer.limit_val_batches=1",
                 epochs=2, stop_after=1)


def test_freihand_recipe_on_fixture_tsvs(tmp_path: Path, monkeypatch):
    """The paper's hand recipe at full size (HRNet-W64, 1024/256/64) for one step, MANO replaced by a synthetic
    MANO-layout model (smplx reads it)."""
    mano = write_fake_mano(tmp_path / "MANO_RIGHT.pkl")
    cli = run_cli(main, [CONFIGS / "graphormer_8xb32_freihand.yaml"], tmp_path, *ON_CPU, "--model.pretrained=false",
                  f"--model.body_model_path={mano}", f"--model.body_cache_dir={tmp_path}",
                  f"--data.init_args.train_yaml={FIXTURES / 'freihand' / 'train.yaml'}",
                  f"--data.init_args.val_yaml={FIXTURES / 'freihand' / 'test.yaml'}",
                  "--data.init_args.batch_size=2", "--trainer.fast_dev_run=1")
    hp, net = cli.model.hparams, cli.model.net
    assert (hp.backbone, tuple(hp.hidden_dims), hp.layers, hp.heads, hp.lr) == ("hrnet_w64", (1024, 256, 64), 4, 4,
                                                                                1e-4)
    assert net.blocks[0].embed.in_features == 2048 + 3 and cli.trainer.global_step == 1
    assert len(net.upsample) == 1


def test_body_recipe_on_fixture_tsvs(tmp_path: Path):
    write_fake_smpl(tmp_path / "SMPL_NEUTRAL.pkl")
    reg = np.random.default_rng(0).uniform(size=(17, 98))
    np.save(tmp_path / "h36m.npy", reg / reg.sum(1, keepdims=True))
    cli = run_cli(main, [CONFIGS / "graphormer_8xb25_h36m-mix.yaml"], tmp_path, *ON_CPU, *TINY_MODEL,
                  "--model.backbone=small", "--model.pretrained=false",
                  f"--model.body_model_path={tmp_path / 'SMPL_NEUTRAL.pkl'}",
                  f"--model.h36m_regressor={tmp_path / 'h36m.npy'}", f"--model.body_cache_dir={tmp_path}",
                  f"--data.init_args.train_yaml={FIXTURES / 'mixed' / 'train.yaml'}",
                  f"--data.init_args.val_yaml={FIXTURES / 'human3.6m' / 'valid.yaml'}",
                  "--data.init_args.image_size=64", "--data.init_args.batch_size=2", "--trainer.fast_dev_run=2")
    hp = cli.model.hparams
    assert (hp.mask_ratio, hp.joints_weight, hp.vertices_weight, hp.camera_from) == (0.3, 1000.0, 100.0, "vertices")
    assert cli.model.net.num_joints == 14 and cli.trainer.global_step == 2
    assert torch.isfinite(cli.trainer.callback_metrics["val/pa_mpjpe"])
    with pytest.raises(SystemExit):  # without the Human3.6M regressor: 24 SMPL joints cannot meet 14 labels
        run_cli(main, [CONFIGS / "graphormer_8xb25_h36m-mix.yaml"], tmp_path / "noreg", *ON_CPU, *TINY_MODEL,
                "--model.backbone=small", f"--model.body_model_path={tmp_path / 'SMPL_NEUTRAL.pkl'}",
                f"--model.body_cache_dir={tmp_path}",
                f"--data.init_args.train_yaml={FIXTURES / 'mixed' / 'train.yaml'}",
                f"--data.init_args.val_yaml={FIXTURES / 'human3.6m' / 'valid.yaml'}", "--trainer.fast_dev_run=1")


def test_predict_gives_root_centred_meshes(tmp_path: Path, hands_cache: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *tiny(hands_cache), "--trainer.fast_dev_run=1")
    out = cli.trainer.predict(cli.model, datamodule=cli.datamodule)
    assert out[0]["vertices"].shape[1:] == (1609, 3) and out[0]["joints"].shape[1:] == (21, 3)
    torch.testing.assert_close(out[0]["joints"][:, 0], torch.zeros(len(out[0]["joints"]), 3), atol=1e-6, rtol=0)


def write_fake_mano(path: Path) -> Path:
    """A MANO-layout pickle (16 joints, 45 pose values, hands_mean) on a 778-vertex point set: the official
    fingertip vertex ids (up to 745) must exist."""
    from projects.meshgraphormer.tests.meshes import uv_sphere

    rng = np.random.default_rng(0)
    verts, faces = uv_sphere(24, 32)  # 770 vertices
    verts = np.concatenate([verts, rng.normal(0, 0.01, size=(8, 3)) + verts[:8]]) * 0.05
    faces = np.concatenate([faces, [[0, 770 + i, 1] for i in range(8)]])
    n = len(verts)
    parents = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    weights = rng.uniform(size=(n, 16))
    data = {"v_template": verts, "f": faces.astype(np.uint32), "shapedirs": rng.normal(0, 1e-3, size=(n, 3, 10)),
            "posedirs": rng.normal(0, 1e-4, size=(n, 3, 135)), "J_regressor": rng.dirichlet(np.ones(n), size=16),
            "weights": weights / weights.sum(1, keepdims=True), "hands_components": np.eye(45),
            "hands_mean": np.zeros(45), "kintree_table": np.array([[4294967295] + parents[1:], list(range(16))])}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


@pytest.mark.parametrize(("trainer_file", "devices"), [("gpu1.yaml", 1), ("ddp_8gpu.yaml", 8)])
@pytest.mark.parametrize("recipe", ["graphormer_8xb32_freihand.yaml", "graphormer_8xb25_h36m-mix.yaml"])
def test_gpu_trainer_files_resolve(recipe: str, trainer_file: str, devices: int):
    config = resolved_config(main, [CONFIGS / recipe, CONFIGS / "trainer" / trainer_file])
    assert config["trainer"]["accelerator"] == "gpu" and config["trainer"]["devices"] == devices


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path: Path, hands_cache: Path):
    run_cli(main, [CONFIGS / "demo.yaml"], tmp_path / "warm", *tiny(hands_cache), "--data.init_args.size=72",
            "--trainer.fast_dev_run=1")  # render the hands once, outside the two processes
    _, ckpt = fit_in_subprocess("meshgraphormer", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"],
                                tmp_path / "ddp", *tiny(hands_cache), "--data.init_args.size=72",
                                "--trainer.max_epochs=1", "--trainer.limit_val_batches=1")
    assert ckpt["global_step"] == 3  # 64 training hands over 2 processes, batch 8, limit 3


def test_user_errors_are_one_paragraph(tmp_path: Path, hands_cache: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        run_cli(main, [CONFIGS / "graphormer_8xb32_freihand.yaml"], tmp_path, *ON_CPU, "--trainer.fast_dev_run=1")
    err = capsys.readouterr().err
    assert "source=tsv needs train_yaml and val_yaml" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        run_cli(main, [CONFIGS / "graphormer_8xb32_freihand.yaml"], tmp_path, *ON_CPU, "--trainer.fast_dev_run=1",
                f"--data.init_args.train_yaml={FIXTURES / 'freihand' / 'train.yaml'}",
                f"--data.init_args.val_yaml={FIXTURES / 'freihand' / 'test.yaml'}")
    err = capsys.readouterr().err
    assert "body_model: mano needs model.body_model_path" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *tiny(hands_cache), "--model.level_weights=[1.0]",
                "--trainer.fast_dev_run=1")
    assert "model.level_weights has 1 values but the anny-hand mesh has 3 resolutions" in capsys.readouterr().err
