"""Every committed config through the real CLI: the demo on a tiny mini-VALUE (train, validate with the official
metrics, test into a leaderboard zip, resume), the paper recipes on the release-format fixtures, the GPU trainer
files resolved, DDP on two CPU processes."""

import json
from pathlib import Path

import pytest
import torch

from projects.value.__main__ import main
from projects.value.submission import score_submission
from shared.testing import check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RELEASE = Path(__file__).parent / "fixtures" / "release"
TINY_SIZES = {"tv": {"train": 6, "val": 3, "test": 3}, "yc2": {"train": 6, "val": 3, "test": 3}}
TINY_MODEL = ("--model.hidden=16", "--model.cross_layers=1", "--model.temporal_layers=1", "--model.heads=2",
              "--model.decoder_layers=1", "--model.max_caption_len=4", "--model.hard_negative_start=1")
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32",
          "--data.init_args.num_workers=0", "--data.init_args.tokenizer=minilm")
RECIPES = ["hero_8xb32_tvr.yaml", "hero_8xb4_tvqa.yaml", "hero_8xb4_tvc.yaml"]


@pytest.fixture(scope="module")
def mini_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mini-value")


def tiny(cache: Path) -> tuple[str, ...]:
    return (*TINY_MODEL, f"--data.init_args.data_cache_dir={cache}",
            f"--data.init_args.mini_sizes={json.dumps(TINY_SIZES)}", "--data.init_args.steps_per_epoch=3",
            "--data.init_args.batch_sizes={tvr: 4, yc2r: 4, tvqa: 2, tvc: 3}")


def test_demo_trains_validates_and_tests_into_a_submission(tmp_path: Path, mini_cache: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *tiny(mini_cache), "--trainer.max_epochs=1")
    metrics = cli.trainer.callback_metrics
    for key in ("train/loss", "val/tvr", "val/yc2r", "val/tvqa", "val/tvc", "val/mean", "val/tvr_0.7_r1"):
        assert torch.isfinite(metrics[key]), key
    assert 0 <= metrics["val/tvqa"] <= 100 and metrics["val/yc2r_r5"] == 100  # 3 videos: the answer is in the top 5
    assert metrics["val/yc2r"] == pytest.approx((float(metrics["val/yc2r_r1"]) + 200) / 3, abs=0.01)
    ckpt = next(tmp_path.rglob("last.ckpt"))
    zip_path = tmp_path / "submission.zip"
    test = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path / "test", *tiny(mini_cache), f"--ckpt_path={ckpt}",
                   f"--data.init_args.submission_path={zip_path}", subcommand="test")
    report = score_submission(zip_path, "test", test.datamodule.data_root, meteor=False)
    assert set(report.scores) == {"tvr", "yc2r", "tvqa", "tvc"}
    for task, score in report.scores.items():  # the scorer agrees with what the test loop logged
        assert score == pytest.approx(float(test.trainer.callback_metrics[f"test/{task}"]), abs=0.01), task


def test_demo_resumes_exactly(tmp_path: Path, mini_cache: Path):
    check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *tiny(mini_cache), epochs=2, stop_after=1)


@pytest.mark.parametrize("recipe", RECIPES)
def test_paper_recipes_on_release_fixtures(tmp_path: Path, recipe: str):
    """Each single-task recipe at full size (hidden 768, 6 + 3 layers) for one step and one validation, on the
    DataRelease-format fixtures (ResNet + SlowFast folders concatenated)."""
    cli = run_cli(main, [CONFIGS / recipe], tmp_path, *ON_CPU, f"--data.init_args.root={RELEASE}",
                  "--data.init_args.batch_size=2", "--trainer.fast_dev_run=1", "--trainer.accumulate_grad_batches=1")
    hp = cli.model.hparams
    assert (hp.hidden, hp.cross_layers, hp.temporal_layers, hp.heads) == (768, 6, 3, 12)
    assert hp.feature_dim == 6 + 4 and cli.trainer.global_step == 1
    task = cli.datamodule.hparams.tasks[0]
    assert torch.isfinite(cli.trainer.callback_metrics[f"val/{task}"])


def test_all_task_recipe(tmp_path: Path):
    """The AT recipe resolves with StarterCode's 11 tasks and batch sizes; run on the fixtures' TV tasks."""
    config = resolved_config(main, [CONFIGS / "hero-at_8xb32_value.yaml"])
    data = config["data"]["init_args"]
    assert len(data["tasks"]) == 11 and data["batch_sizes"]["vatex_en_c"] == 128 and data["task_every"] == 2
    cli = run_cli(main, [CONFIGS / "hero-at_8xb32_value.yaml"], tmp_path, *ON_CPU, *TINY_MODEL,
                  f"--data.init_args.root={RELEASE}", "--data.init_args.tasks=[tvr, tvqa, tvc]",
                  "--data.init_args.batch_sizes={tvr: 2, tvqa: 2, tvc: 2}", "--trainer.fast_dev_run=2",
                  "--trainer.accumulate_grad_batches=1")
    assert cli.trainer.global_step == 2


@pytest.mark.parametrize("trainer", ["gpu1.yaml", "ddp_8gpu.yaml"])
def test_gpu_trainer_files_resolve(trainer: str):
    config = resolved_config(main, [CONFIGS / "hero_8xb32_tvr.yaml", CONFIGS / "trainer" / trainer])
    assert config["trainer"]["accelerator"] == "gpu" and config["trainer"]["precision"] == "16-mixed"
    if trainer == "ddp_8gpu.yaml":
        assert config["trainer"]["devices"] == 8 and config["trainer"]["strategy"] == "ddp_find_unused_parameters_true"


def test_init_from_and_bad_settings(tmp_path: Path, mini_cache: Path, capsys):
    first = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path / "at", *tiny(mini_cache), "--trainer.max_epochs=1")
    ckpt = next((tmp_path / "at").rglob("last.ckpt"))
    st = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path / "st", *tiny(mini_cache), f"--model.init_from={ckpt}",
                 "--data.init_args.tasks=[tvr]", "--trainer.max_epochs=1", "--trainer.limit_train_batches=0",
                 "--trainer.limit_val_batches=0")
    for (name, a), b in zip(first.model.state_dict().items(), st.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    with pytest.raises(SystemExit):
        main(args=["fit", f"--config={CONFIGS / 'demo.yaml'}", "--data.init_args.tasks=[tvr, nope]"])
    assert "unknown task" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path: Path, mini_cache: Path):
    _, ckpt = fit_in_subprocess("value", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"], tmp_path,
                                *tiny(mini_cache), "--trainer.max_epochs=1")
    assert ckpt["global_step"] == 3 and ckpt["hyper_parameters"]["feature_dim"] == 2560  # 3 steps on each process


def test_task_mix_gives_each_process_its_own_slice(mini_cache: Path):
    from projects.value.data import TaskMixDataset, ValueDataModule

    dm = ValueDataModule(tasks=["tvr", "tvc"], data_cache_dir=str(mini_cache), mini_sizes=TINY_SIZES)
    tasks = {t: dm.task_data(t, "train") for t in ("tvr", "tvc")}
    plans = [TaskMixDataset(tasks, {"tvr": 1, "tvc": 1}, {"tvr": 2, "tvc": 2}, 6, seed=0, rank=r, world_size=2).plan(0)
             for r in (0, 1)]
    assert [n for n, _ in plans[0]] == [n for n, _ in plans[1]]  # the same task at every step on both
    for (_, a), (_, b) in zip(plans[0], plans[1], strict=True):
        assert not set(a) & set(b)  # different records
