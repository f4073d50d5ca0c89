"""``make gpu-check``: on a CUDA machine, every paper's ``gpu``-marked tests and a short paper-scale training-step
throughput in bf16 per paper, written to ``results/bench/gpu.json``. Whenever a GPU is lent, run this first.

* The tests: one ``pytest -m gpu`` over ``projects/`` and ``shared/``, counted per paper from its JUnit XML; pytest's
  exit status 5 (no test collected) counts as zero tests, not as a failure.
* The steps: ``projects/<paper>/bench.py:gpu_training_step(device)`` gives the paper's complete optimisation step at
  its recipe's model and per-GPU batch on random inputs (:class:`shared.bench.GpuStep`); it is run ``--warmup``
  times, then timed over ``--steps`` steps between two ``torch.cuda.synchronize()``, under bf16 autocast. Recorded
  per paper: items/s, ms/step, peak allocated memory, parameters, batch and what an item is. A paper whose step fails
  is recorded with its error and the others go on.

The exit status is non-zero when a test or a step failed. Without CUDA it prints one line, measures nothing and leaves
``results/bench/gpu.json`` as it is (so ``make gpu-check`` is harmless on a CPU machine).

    python -m shared.gpu_check [--papers dcd seed] [--warmup 3] [--steps 10] [--skip-tests] [--out PATH]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "bench" / "gpu.json"
PAPERS = sorted(p.parent.name for p in (ROOT / "projects").glob("*/__init__.py"))
NO_GPU = "no CUDA device: gpu-check needs a GPU machine; nothing was measured"
# the gpu test that runs this whole check: left out of the check's own pytest run
SELF_TEST = "shared/tests/test_gpu_check.py::test_gpu_check_on_cuda"


# ------------------------------------------------------------------------------------------------------- the tests
def paper_of(test_id: str) -> str:
    """The paper a JUnit ``classname`` (``projects.dcd.tests.test_gpu``) belongs to; ``shared`` otherwise."""
    parts = test_id.split(".")
    return parts[1] if parts[0] == "projects" and len(parts) > 1 else "shared"


def junit_counts(xml: Path) -> dict[str, dict[str, int]]:
    """Passed / failed / skipped tests per paper in a pytest JUnit XML file (errors count as failed)."""
    counts: dict[str, dict[str, int]] = {}
    for case in ET.parse(xml).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "skipped" if case.find("skipped") is not None else "passed"
        paper = paper_of(case.get("classname") or case.get("name", ""))
        counts.setdefault(paper, {"passed": 0, "failed": 0, "skipped": 0})[outcome] += 1
    return counts


def record_of_tests(exit_code: int, per_paper: dict[str, dict[str, int]], command: str) -> dict:
    """What the JSON file says of the test run: exit 5 (nothing collected) is zero tests, not a failure."""
    total = {k: sum(c[k] for c in per_paper.values()) for k in ("passed", "failed", "skipped")}
    return {"command": command, "exit_code": exit_code, "failed": exit_code not in (0, 5) or total["failed"] > 0,
            "total": total, "per_paper": per_paper}


def run_tests(papers: list[str]) -> dict:
    """``pytest -m gpu`` over the papers' folders and ``shared/``, output to the terminal."""
    targets = ["projects", "shared"] if papers == PAPERS else [*(f"projects/{p}" for p in papers), "shared"]
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "gpu-tests.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
               f"--deselect={SELF_TEST}", *targets]
        print("== " + " ".join(["pytest", *cmd[3:5], *targets]), flush=True)
        code = subprocess.run(cmd, cwd=ROOT).returncode
        counts = junit_counts(xml) if xml.is_file() else {}
    return record_of_tests(code, counts, " ".join(["pytest -m gpu", *targets]))


# ------------------------------------------------------------------------------------------------------- the steps
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_loader(paper: str) -> Callable:
    return importlib.import_module(f"projects.{paper}.bench").gpu_training_step


def measure_paper(paper: str, device: torch.device, warmup: int = 3, steps: int = 10,
                  load: Callable[[str], Callable] = step_loader) -> dict:
    """One paper's step: built, run ``warmup`` times, then timed over ``steps`` steps; its error if anything fails."""
    cuda = device.type == "cuda"
    gpu_step = None
    try:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        gpu_step = load(paper)(device)
        for _ in range(warmup):
            gpu_step.run()
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            gpu_step.run()
        _sync(device)
        seconds = (time.perf_counter() - start) / steps
        record = {"model": gpu_step.model, "parameters": gpu_step.parameters, "batch": gpu_step.items,
                  "item": gpu_step.item, "items_per_s": gpu_step.items / seconds, "ms_per_step": 1000 * seconds,
                  "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None}
    except Exception as err:  # a paper's failure is a result: record it and go on with the others
        traceback.print_exc()
        record = {"error": f"{type(err).__name__}: {err}"[:2000]}
        if gpu_step is not None:
            record.update(model=gpu_step.model, batch=gpu_step.items, item=gpu_step.item)
    finally:
        del gpu_step
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return record


# ------------------------------------------------------------------------------------------------------- the report
def hardware() -> dict:
    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}", "gpus": torch.cuda.device_count(),
            "torch": torch.__version__, "cuda": torch.version.cuda}


def assemble(hw: dict, tests: dict | None, steps: dict[str, dict], warmup: int, timed: int) -> dict:
    failed = [p for p, r in steps.items() if "error" in r]
    return {"command": "make gpu-check", "date": datetime.now(UTC).isoformat(timespec="seconds"), "hardware": hw,
            "precision": "bf16 autocast (torch.autocast('cuda', torch.bfloat16))", "warmup_steps": warmup,
            "timed_steps": timed, "tests": tests, "steps": steps, "failed_steps": failed,
            "ok": not failed and not (tests or {}).get("failed", False)}


def summary(result: dict) -> str:
    hw = result["hardware"]
    lines = [f"gpu-check on {hw.get('gpu')} (torch {hw.get('torch')}, CUDA {hw.get('cuda')}), {result['date']}, "
             f"{result['precision']}"]
    tests = result["tests"]
    if tests is None:
        lines.append("gpu tests: not run (--skip-tests)")
    else:
        per = "; ".join(f"{p} {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
                        for p, c in sorted(tests["per_paper"].items()))
        lines.append(f"gpu tests: exit {tests['exit_code']}{' (none collected)' if tests['exit_code'] == 5 else ''}"
                     f" -- {per or 'no test ran'}")
    lines.append(f"{'paper':<16}{'items/s':>10}{'ms/step':>10}{'peak GiB':>10}{'params':>9}  batch")
    for paper, r in result["steps"].items():
        if "error" in r:
            lines.append(f"{paper:<16}FAILED: {r['error'].splitlines()[0][:160]}")
            continue
        peak = "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        lines.append(f"{paper:<16}{r['items_per_s']:>10.1f}{r['ms_per_step']:>10.1f}{peak:>10}"
                     f"{r['parameters'] / 1e6:>8.1f}M  {r['batch']} {r['item']}: {r['model']}")
    lines.append("all passed" if result["ok"] else "FAILED: " + ", ".join(
        [*(["gpu tests"] if (tests or {}).get("failed") else []), *result["failed_steps"]]))
    return "\n".join(lines)


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--papers", nargs="+", default=PAPERS, choices=PAPERS, metavar="PAPER",
                   help=f"default: all ({', '.join(PAPERS)})")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (cuDNN autotuning, allocator)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--skip-tests", action="store_true", help="only the training steps")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    papers = sorted(set(args.papers))
    tests = None if args.skip_tests else run_tests(papers)
    device = torch.device("cuda")
    steps = {}
    for paper in papers:
        print(f"== {paper}: paper-scale training step, bf16", flush=True)
        steps[paper] = measure_paper(paper, device, args.warmup, args.steps)
    result = assemble(hardware(), tests, steps, args.warmup, args.steps)
    write(result, args.out)
    print(summary(result))
    print(f"wrote {args.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
