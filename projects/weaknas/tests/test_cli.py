"""Every committed config through the real CLIs (Lightning's and ``search``), resume, DDP on two CPU
processes, and the live search space's disk cache."""

import json
from pathlib import Path

import pytest
import yaml

from projects.weaknas.__main__ import main
from projects.weaknas.live import LiveBenchmark
from shared.errors import CorruptDataError
from shared.testing import check_resume, fit_in_subprocess, resolved_config, run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[3]
CIFAR = REPO / "shared" / "tests" / "fixtures" / "cifar"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
TINY = ("--data.init_args.train_size=128", "--data.init_args.valid_size=64", "--data.init_args.test_size=64",
        "--data.init_args.batch_size=32")
ON_CPU = ("--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32")


def test_demo_trains_one_cell(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, "--trainer.max_epochs=1",
                  f"--model.init_args.arch={BEST}")
    assert cli.model.hparams.arch == BEST and 0 <= float(cli.trainer.callback_metrics["val/acc"]) <= 100


def test_demo_with_the_cpu_trainer_file(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "cpu.yaml"], tmp_path, *TINY,
                  "--trainer.fast_dev_run=2")
    assert cli.trainer.global_step == 2


def test_demo_resumes_exactly(tmp_path: Path):
    check_resume(main, [CONFIGS / "demo.yaml"], tmp_path, *TINY, epochs=2, stop_after=1)


def test_gcn_predictor_config(tmp_path: Path):
    cli = run_cli(main, [CONFIGS / "gcn-predictor_1xb64_nb201.yaml"], tmp_path, "--trainer.max_epochs=30")
    assert float(cli.trainer.callback_metrics["val/kendall_tau"]) > 0.3  # ranks 1000 unseen cells


def test_cifar_recipe_at_full_size_on_fixture_files(tmp_path: Path):
    recipe = CONFIGS / "nb201-cell_1xb256_cifar10.yaml"
    cli = run_cli(main, [recipe], tmp_path, f"--data.init_args.data_dir={CIFAR}", *ON_CPU,
                  "--data.init_args.train_size=8", "--data.init_args.valid_size=8", "--data.init_args.batch_size=4",
                  "--data.init_args.num_workers=0", "--trainer.fast_dev_run=1")
    assert cli.trainer.global_step == 1
    assert sum(p.numel() for p in cli.model.parameters()) > 1_000_000  # C=16, N=5


@pytest.mark.parametrize(("trainer_file", "devices"), [("gpu1.yaml", 1), ("ddp_8gpu.yaml", 8)])
def test_gpu_trainer_files_resolve(trainer_file: str, devices: int):
    config = resolved_config(main, [CONFIGS / "nb201-cell_1xb256_cifar10.yaml", CONFIGS / "trainer" / trainer_file])
    assert config["trainer"]["accelerator"] == "gpu" and config["trainer"]["devices"] == devices
    assert config["model"]["init_args"]["lr_base_batch_size"] == 256


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path: Path):
    _, ckpt = fit_in_subprocess("weaknas", [CONFIGS / "demo.yaml", CONFIGS / "trainer" / "ddp_sim.yaml"], tmp_path,
                                *TINY, "--trainer.max_epochs=1")
    assert ckpt["global_step"] == 2  # 128 images / (2 processes × 32)


def test_search_cli_on_the_embedded_table(tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "runs.json"
    code = main(args=["search", "--benchmark", "nb201-cifar10-analog", "--predictor", "mlp", "--hidden", "32",
                      "--budget", "30", "--runs", "2", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and text.count("run ") == 2 and "validation-selected" in text
    runs = json.loads(out.read_text())["runs"]
    assert [len(r["queried"]) for r in runs] == [30, 30] and runs[0]["queried"] != runs[1]["queried"]


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_search_cli_baselines(method: str, capsys: pytest.CaptureFixture):
    assert main(args=["search", "--method", method, "--budget", "40", "--runs", "1"]) == 0
    assert "40 queries" in capsys.readouterr().out


def test_search_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        main(args=["search", "--budget", "0"])
    assert exc.value.code == 2 and "--budget must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args=["search", "--predictor", "xgb"])
    assert "invalid choice: 'xgb'" in capsys.readouterr().err


def test_search_cli_missing_nb201_file_is_one_line(monkeypatch, capsys: pytest.CaptureFixture):
    monkeypatch.delenv("REPRO_ZOO_NB201", raising=False)
    assert main(args=["search", "--benchmark", "nb201-cifar100"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "REPRO_ZOO_NB201" in err[0]


def _tiny_live_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    config["data"]["init_args"].update(train_size=64, valid_size=32, test_size=32, batch_size=32)
    config["trainer"]["max_epochs"] = 1
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_live_search_trains_each_cell_once_and_reuses_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture):
    config, cache = _tiny_live_config(tmp_path), tmp_path / "cache"
    args = ["search", "--benchmark", "live-fmnist", "--live-config", str(config), "--cache-dir", str(cache),
            "--method", "random", "--budget", "3"]
    assert main(args=args) == 0
    lines = next(cache.glob("*.jsonl")).read_text().splitlines()
    assert len(lines) == 3
    bench = LiveBenchmark(config, cache_dir=cache)
    first = json.loads(lines[0])
    assert bench.accuracy(first["arch"], "valid") == first["valid"] and bench.trained == 0  # from disk
    assert main(args=args) == 0 and len(next(cache.glob("*.jsonl")).read_text().splitlines()) == 3
    # another training setup is another cache file
    other = LiveBenchmark(config, cache_dir=cache, overrides={"trainer.max_epochs": 2})
    assert other.cache_file != bench.cache_file and other.cached() == {}


def test_live_cache_with_a_bad_line_names_file_and_line(tmp_path: Path):
    config, cache = _tiny_live_config(tmp_path), tmp_path / "cache"
    bench = LiveBenchmark(config, cache_dir=cache)
    bench.cache_file.parent.mkdir(parents=True)
    bench.cache_file.write_text(json.dumps({"arch": BEST, "valid": 1.0, "test": 2.0}) + "\n{oops\n")
    with pytest.raises(CorruptDataError, match=r"\.jsonl, line 2"):
        LiveBenchmark(config, cache_dir=cache)


def test_search_cli_rejects_hidden_for_other_predictors(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        main(args=["search", "--predictor", "rf", "--hidden", "10"])
    assert exc.value.code == 2 and "does not apply to --predictor rf" in capsys.readouterr().err


def test_live_cache_key_ignores_device_and_data_folder(tmp_path: Path):
    config, cache = _tiny_live_config(tmp_path), tmp_path / "cache"
    a = LiveBenchmark(config, cache_dir=cache)
    b = LiveBenchmark(config, cache_dir=cache, overrides={"trainer.accelerator": "gpu", "data.num_workers": 4,
                                                          "data.data_dir": "/elsewhere"})
    c = LiveBenchmark(config, cache_dir=cache, overrides={"data.train_size": 100})
    assert a.cache_file == b.cache_file != c.cache_file and a.name == "live-fashion-mnist"


def test_weaknas_on_the_live_space(tmp_path: Path, capsys: pytest.CaptureFixture):
    config, cache = _tiny_live_config(tmp_path), tmp_path / "cache"
    out = tmp_path / "runs.json"
    assert main(args=["search", "--benchmark", "live-fmnist", "--live-config", str(config), "--cache-dir",
                      str(cache), "--method", "weaknas", "--predictor", "mlp", "--hidden", "8", "--init", "2",
                      "--per-iter", "2", "--top-k", "5", "--budget", "4", "--json", str(out)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    assert len(run["queried"]) == len(set(run["queried"])) == 4 and all(0 <= v <= 100 for v in run["valid"])
    assert len(next(cache.glob("*.jsonl")).read_text().splitlines()) == 4  # every query trained once, cached


def test_help_names_the_search_entry(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "python -m projects.weaknas search --help" in capsys.readouterr().out


def test_a_command_line_run_prints_no_args_warning(tmp_path: Path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "projects.weaknas", "fit", f"--config={CONFIGS / 'demo.yaml'}",
                           *TINY, "--trainer.fast_dev_run=1", "--trainer.enable_progress_bar=false",
                           f"--model.init_args.arch={BEST}"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "args parameter is intended" not in proc.stderr
