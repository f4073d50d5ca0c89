"""``make gpu-check`` (:mod:`shared.gpu_check`) and the papers' ``gpu_training_step``: harmless without a GPU, its
report from fake measurements, every paper exposing the same step function; the whole check on CUDA (``gpu``)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from shared.bench import GpuStep, optimisation_step, parameter_count, recipe
from shared.gpu_check import (
    NO_GPU,
    OUT,
    PAPERS,
    ROOT,
    assemble,
    junit_counts,
    main,
    measure_paper,
    record_of_tests,
    summary,
    write,
)


def test_without_cuda_it_says_so_and_writes_nothing(tmp_path: Path, monkeypatch, capsys):
    before = OUT.read_bytes() if OUT.is_file() else None
    done = subprocess.run([sys.executable, "-m", "shared.gpu_check"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == NO_GPU
    assert (OUT.read_bytes() if OUT.is_file() else None) == before
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--out", str(tmp_path / "gpu.json")]) == 0
    assert capsys.readouterr().out.strip() == NO_GPU and not (tmp_path / "gpu.json").exists()


def _fake_hardware() -> dict:
    return {"gpu": "NVIDIA Fake 80GB", "memory_gib": 80.0, "compute_capability": "9.0", "gpus": 1, "torch": "2.x",
            "cuda": "12.x"}


def test_report_of_fake_measurements(tmp_path: Path):
    ok = {"model": "a net", "parameters": 2_500_000, "batch": 32, "item": "images", "items_per_s": 640.0,
          "ms_per_step": 50.0, "peak_memory_gib": 3.5}
    tests = record_of_tests(5, {}, "pytest -m gpu projects shared")  # nothing collected: zero tests, not a failure
    assert not tests["failed"] and tests["total"] == {"passed": 0, "failed": 0, "skipped": 0}
    result = assemble(_fake_hardware(), tests, {"dcd": ok}, warmup=3, timed=10)
    assert result["ok"] and result["failed_steps"] == []
    out = tmp_path / "bench" / "gpu.json"
    write(result, out)
    saved = json.loads(out.read_text())
    assert saved["hardware"]["gpu"] == "NVIDIA Fake 80GB" and saved["date"] and saved["steps"]["dcd"] == ok
    text = summary(saved)
    assert "NVIDIA Fake 80GB" in text and "640.0" in text and "32 images: a net" in text and "all passed" in text

    failed_tests = record_of_tests(1, {"dcd": {"passed": 1, "failed": 1, "skipped": 0}}, "pytest -m gpu")
    result = assemble(_fake_hardware(), failed_tests, {"dcd": ok, "hpgan": {"error": "OutOfMemoryError: boom"}}, 3, 10)
    assert not result["ok"] and result["failed_steps"] == ["hpgan"]
    text = summary(result)
    assert "hpgan           FAILED: OutOfMemoryError: boom" in text and "FAILED: gpu tests, hpgan" in text
    assert "dcd 1 passed, 1 failed, 0 skipped" in text


def test_junit_counts_per_paper(tmp_path: Path):
    xml = tmp_path / "junit.xml"
    xml.write_text("""<testsuites><testsuite>
      <testcase classname="projects.dcd.tests.test_gpu" name="test_a"/>
      <testcase classname="projects.dcd.tests.test_gpu" name="test_b"><failure message="x"/></testcase>
      <testcase classname="projects.seed.tests.test_x" name="test_c"><skipped message="no"/></testcase>
      <testcase classname="" name="projects.stgt.tests.test_gpu"><error message="import"/></testcase>
      <testcase classname="shared.tests.test_gpu_check" name="test_d"/>
    </testsuite></testsuites>""")
    assert junit_counts(xml) == {"dcd": {"passed": 1, "failed": 1, "skipped": 0},
                                 "seed": {"passed": 0, "failed": 0, "skipped": 1},
                                 "stgt": {"passed": 0, "failed": 1, "skipped": 0},
                                 "shared": {"passed": 1, "failed": 0, "skipped": 0}}
    assert record_of_tests(0, junit_counts(xml), "pytest")["failed"]


def test_a_failing_step_is_recorded_and_the_others_go_on():
    def load(paper: str):
        if paper == "broken":
            def fails(device, batch_size=None):
                raise RuntimeError("CUDA out of memory")
            return fails

        def works(device, batch_size=None):
            net = nn.Linear(4, 2)
            batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
            step = optimisation_step(net, batch, device, lambda p: torch.optim.SGD(p, 0.1),
                                     loss=lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]))
            return GpuStep(step, 8, "rows", "a linear layer", parameter_count(net))
        return works

    records = {p: measure_paper(p, torch.device("cpu"), warmup=1, steps=2, load=load) for p in ("broken", "fine")}
    assert records["broken"] == {"error": "RuntimeError: CUDA out of memory"}
    fine = records["fine"]
    assert fine["items_per_s"] > 0 and fine["ms_per_step"] > 0 and fine["parameters"] == 10 and fine["batch"] == 8
    assert not assemble(_fake_hardware(), None, records, 1, 2)["ok"]


class _Regressor(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        loss = nn.functional.mse_loss(self.net(batch["x"]), batch["y"])
        self.log("train/loss", loss)
        return loss


class _TwoPlayers(L.LightningModule):
    """Manual optimisation, as the GANs: ``training_step`` steps both optimisers itself."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = nn.Linear(3, 1), nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        opt_a, opt_b = self.optimizers()
        for net, opt in ((self.a, opt_a), (self.b, opt_b)):
            opt.zero_grad()
            self.manual_backward(net(batch["x"]).pow(2).mean())
            opt.step()
        self.log_dict({"a": 0.0})

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), 0.1), torch.optim.SGD(self.b.parameters(), 0.1)]


def test_optimisation_step_automatic_and_manual():
    batch = {"x": torch.randn(4, 3), "y": torch.randn(4, 1)}
    model, calls = _Regressor(), []
    before = model.net.weight.clone()
    optimisation_step(model, batch, torch.device("cpu"), lambda p: torch.optim.SGD(p, 0.1),
                      after=lambda: calls.append(1))()
    assert not torch.equal(before, model.net.weight) and calls == [1]
    gan = _TwoPlayers()
    before = [gan.a.weight.clone(), gan.b.weight.clone()]
    optimisation_step(gan, batch, torch.device("cpu"))()
    assert not torch.equal(before[0], gan.a.weight) and not torch.equal(before[1], gan.b.weight)


def test_recipe_reads_model_arguments_and_batch():
    kwargs, batch = recipe("projects/seed/configs/seed_efficientnet-b0_resnet50_8xb32_imagenet.yaml")
    assert kwargs["student_arch"] == "efficientnet_b0" and batch == 32  # class_path / init_args
    kwargs, batch = recipe("projects/automix/configs/automix_resnet18_1xb100_cifar100.yaml")
    assert kwargs["backbone"] == "cifar_resnet18" and batch == 100  # a plain model section


@pytest.mark.parametrize("paper", PAPERS)
def test_every_paper_exposes_the_same_step_function(paper: str):
    fn = getattr(importlib.import_module(f"projects.{paper}.bench"), "gpu_training_step", None)
    assert fn is not None, f"projects/{paper}/bench.py has no gpu_training_step (make gpu-check needs it)"
    params = inspect.signature(fn).parameters
    assert list(params) == ["device", "batch_size"] and params["batch_size"].default is None
    assert fn.__annotations__["return"] in ("GpuStep", GpuStep)


# One step at batch 2 on the CPU with the paper-size model, for the papers where that takes seconds (32 px images,
# the association network). The others' steps at 224 px, HP-GAN's 12 updates and HERO's 140M parameters take 10 s to
# minutes each on 2 CPU cores: the gpu tier (test_gpu_check_on_cuda) runs every paper's.
@pytest.mark.slow
@pytest.mark.parametrize("paper", ["automix", "stgt", "weaknas"])
def test_paper_step_runs_on_cpu_at_batch_2(paper: str):
    torch.manual_seed(0)
    step = importlib.import_module(f"projects.{paper}.bench").gpu_training_step(torch.device("cpu"), batch_size=2)
    step.run()
    assert step.items == 2 and step.parameters > 0 and step.item and step.model


@pytest.mark.gpu
def test_gpu_check_on_cuda(tmp_path: Path):
    """The whole measurement on CUDA, every paper (2 timed steps). The gpu tests are left out: this test is one of
    them, and ``make gpu-check`` runs them."""
    assert torch.cuda.is_available(), "the gpu tier needs a CUDA device"
    out = tmp_path / "gpu.json"
    code = main(["--skip-tests", "--warmup", "1", "--steps", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert code == 0, summary(result)
    assert list(result["steps"]) == PAPERS and result["hardware"]["gpu"]
    for record in result["steps"].values():
        assert record["items_per_s"] > 0 and record["peak_memory_gib"] > 0
