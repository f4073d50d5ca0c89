"""The claim protocol every paper's ``claim.py`` runs on: one command line, one rule, one record.

A paper declares its claim as a :class:`ClaimSpec` (the arms it trains or measures, the comparisons
the claim needs, the premise gates, the no-learning reference rows) and a function that runs *one
seed* of the experiment and returns every arm's value on that seed (:class:`SeedRun`). :func:`run`
does the rest, the same way for every paper::

    python -m projects.<paper>.claim [--seeds 0 1 2] [--out DIR] [--scale cpu|gpu] [--sweep]

The rule, fixed before anything runs: for a comparison of ``method`` against ``baseline``, the
per-seed paired differences ``d_s = sign * (method_s - baseline_s)`` (``sign`` = +1 when higher is
better) give a margin ``mean(d)`` and a standard error ``std(d, ddof=1) / sqrt(n)``; the comparison
holds when ``n >= 2`` and ``mean(d) > 2 * SE``. A gate is the same test on a premise (a teacher ahead
of its student, a model ahead of the mean prediction) or a yes/no check every seed must pass. The
verdict is "premise absent" when a gate fails, else "holds" when every comparison holds, else
"does not hold".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from shared.errors import UserFacingError
from shared.results import RESULTS_DIR, ClaimRecord, claim_command, finite_json, headline_comparison

# cpu: the committed claim; gpu: a larger run for about 10 minutes on one GPU; smoke: seconds, for the tests
# (tiny data and budget, never a result: it must be written with --out).
SCALES = ("cpu", "gpu", "smoke")
SWEEP_FRACTIONS = (0.25, 0.5, 1.0)
HOLDS, DOES_NOT_HOLD, PREMISE_ABSENT = "holds", "does not hold", "premise absent"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``method`` against ``baseline`` (two arm names) on paired seeds; holds when margin > 2 SE.

    ``tolerance`` > 0 makes it a non-inferiority test, fixed before running: holds when
    ``margin - 2 SE > -tolerance``, i.e. ``method`` is at most ``tolerance`` worse (for claims such as
    "matches the baseline with fewer parameters"). At 0 it is the superiority rule above.
    """

    method: str
    baseline: str
    higher_is_better: bool = True
    label: str = ""
    tolerance: float = 0.0

    @property
    def name(self) -> str:
        return self.label or f"{self.method} vs {self.baseline}"

    def measure(self, per_seed: dict[str, list[float]]) -> dict:
        """Margin, standard error and verdict from the arms' per-seed values (same seed order in each)."""
        measured = paired_margin(per_seed[self.method], per_seed[self.baseline], self.higher_is_better,
                                 self.tolerance)
        return measured | {"name": self.name, "method": self.method, "baseline": self.baseline,
                           "higher_is_better": self.higher_is_better}


@dataclasses.dataclass(frozen=True)
class Check:
    """A yes/no premise every seed reports in :attr:`SeedRun.checks` under ``name``; passes when all are true."""

    name: str
    description: str = ""

    def measure(self, checks: list[dict[str, bool]]) -> dict:
        values = [bool(c[self.name]) for c in checks]
        return {"name": self.name, "description": self.description, "per_seed": values,
                "passed": bool(values) and all(values)}


def paired_margin(method: Sequence[float], baseline: Sequence[float], higher_is_better: bool = True,
                  tolerance: float = 0.0) -> dict:
    """The rule: paired differences (oriented so that positive favours ``method``), their mean and standard
    error; ``holds`` when there are at least two pairs and the mean exceeds two standard errors
    (``mean - 2 SE > -tolerance``; ``tolerance`` 0 unless a non-inferiority test). A missing or non-finite
    value on either side makes the comparison fail (nothing is dropped silently)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance}")
    if len(method) != len(baseline):
        raise ValueError(f"paired values need the same seeds: {len(method)} vs {len(baseline)} values")
    sign = 1.0 if higher_is_better else -1.0
    pairs = [(m, b) for m, b in zip(method, baseline, strict=True)]
    finite = all(v is not None and math.isfinite(v) for p in pairs for v in p)
    diffs = [sign * (m - b) for m, b in pairs] if finite else []
    n = len(diffs)
    mean = float(np.mean(diffs)) if n else math.nan
    se = float(np.std(diffs, ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    holds = bool(finite and n >= 2 and mean - 2 * se > -tolerance)
    out = {"margin": mean, "se": se, "n": len(pairs), "differences": diffs, "holds": holds}
    return out | ({"tolerance": tolerance} if tolerance else {})


def verdict(comparisons: list[dict], gates: list[dict]) -> str:
    """premise absent (a gate failed) / holds (every comparison holds) / does not hold."""
    if any(not g["passed"] for g in gates):
        return PREMISE_ABSENT
    return HOLDS if comparisons and all(c["holds"] for c in comparisons) else DOES_NOT_HOLD


@dataclasses.dataclass
class SeedRun:
    """One seed of a claim: each arm's value (``values``), the yes/no premises (``checks``), anything else
    worth keeping (``details``: per-arm secondary metrics, timings)."""

    values: dict[str, float]
    checks: dict[str, bool] = dataclasses.field(default_factory=dict)
    details: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ClaimContext:
    """What a seed's run needs to know: the parsed arguments, the scale, the budget fraction, where
    figures go (the paper's ``docs/`` for the committed result, the ``--out`` folder otherwise) and a
    scratch folder for checkpoints."""

    args: argparse.Namespace
    scale: str = "cpu"
    fraction: float = 1.0
    figures_dir: Path = Path(".")
    workdir: Path = Path(".")
    budget: dict = dataclasses.field(default_factory=dict)

    def settings(self, scales: dict[str, dict]) -> dict:
        """The paper's settings at this scale (``scales[self.scale]``), each replaced by the command-line option
        of the same name where one was given (not None)."""
        chosen = dict(scales[self.scale])
        for key in chosen:
            given = getattr(self.args, key, None)
            if given is not None:
                chosen[key] = given
        return chosen

    def scaled(self, axis: str, full: int) -> int:
        """``full`` (an epoch or step count of the whole budget) times the budget fraction, at least 1;
        recorded under ``axis`` in the claim's ``budget``."""
        value = max(1, round(full * self.fraction))
        self.budget[axis] = value
        return value


@dataclasses.dataclass
class ClaimSpec:
    """A paper's claim, declared before it runs.

    ``method`` / ``baseline`` are the two arms shown in the zoo table (the first comparison is theirs);
    ``comparisons`` must all hold; ``gates`` are the premises (a :class:`Comparison` whose margin must exceed
    two standard errors, or a :class:`Check`); ``references`` name the no-learning rows (raw input, template,
    mean prediction, heuristics) among the arms.
    """

    paper: str
    claim: str
    metric: str
    method: str
    baseline: str
    baseline_name: str
    comparisons: list[Comparison]
    gates: list[Comparison | Check] = dataclasses.field(default_factory=list)
    references: list[str] = dataclasses.field(default_factory=list)
    arm_names: dict[str, str] = dataclasses.field(default_factory=dict)
    paper_value: float | None = None
    paper_baseline: float | None = None
    default_seeds: tuple[int, ...] = (0, 1, 2)
    budget_axis: str = "training budget"

    def label(self, arm: str) -> str:
        return self.arm_names.get(arm, arm)


RunSeed = Callable[[ClaimContext, int], SeedRun]
Describe = Callable[[ClaimContext, ClaimSpec, dict[int, SeedRun], ClaimRecord], tuple[str, str]]


def parser(spec: ClaimSpec, description: str = "") -> argparse.ArgumentParser:
    """The command line shared by every claim; a paper adds its own options to it."""
    p = argparse.ArgumentParser(prog=f"python -m projects.{spec.paper}.claim",
                                description=description or f"{spec.paper}: {spec.claim}")
    p.add_argument("--seeds", type=int, nargs="+", default=list(spec.default_seeds),
                   help=f"seeds to run, each a full repetition (default: {' '.join(map(str, spec.default_seeds))})")
    p.add_argument("--out", type=Path, default=None,
                   help="write the record (and figures) to this folder; results/ and docs/ stay untouched")
    p.add_argument("--scale", choices=SCALES, default="cpu",
                   help="cpu: the committed small-scale claim; gpu: a larger one for about 10 minutes on one GPU; "
                   "smoke: a seconds-long run that checks the pipeline (needs --out; its numbers mean nothing)")
    p.add_argument("--sweep", action="store_true",
                   help=f"rerun at {', '.join(map(str, SWEEP_FRACTIONS))}x the {spec.budget_axis} and record the "
                   "margin at each (results/extra/<paper>-sweep/)")
    return p


def record_dir(spec: ClaimSpec, args: argparse.Namespace) -> Path:
    """Where the record goes: ``--out``; else results/ (cpu) or results/gpu/ (gpu); a sweep under extra/."""
    if args.out is not None:
        base = Path(args.out)
    else:
        base = RESULTS_DIR if args.scale == "cpu" else RESULTS_DIR / "gpu"
    if args.sweep:
        base = (RESULTS_DIR / "extra" if args.out is None else base) / f"{spec.paper}-sweep" / args.scale
    return base


def measure(spec: ClaimSpec, ctx: ClaimContext, seeds: list[int], run_seed: RunSeed,
            describe: Describe | None, command: str) -> tuple[ClaimRecord, dict[int, SeedRun]]:
    """Run ``seeds`` at ``ctx.fraction`` of the budget and build the record by the rule."""
    start = time.perf_counter()
    runs: dict[int, SeedRun] = {}
    for seed in seeds:
        t0 = time.perf_counter()
        runs[seed] = run_seed(ctx, seed)
        shown = "  ".join(f"{spec.label(k)} {v:.4g}" for k, v in runs[seed].values.items())
        print(f"[{spec.paper}] seed {seed} ({time.perf_counter() - t0:.0f} s): {shown}", flush=True)
    arms = list(runs[seeds[0]].values)
    missing = [(s, a) for s in seeds for a in arms if a not in runs[s].values]
    if missing:
        raise ValueError(f"every seed must report every arm; missing (seed, arm): {missing}")
    per_seed = {arm: [float(runs[s].values[arm]) for s in seeds] for arm in arms}
    comparisons = [c.measure(per_seed) for c in spec.comparisons]
    gates = []
    for g in spec.gates:
        if isinstance(g, Check):
            gates.append(g.measure([runs[s].checks for s in seeds]))
        else:
            m = g.measure(per_seed)
            gates.append(m | {"passed": m["holds"]})
    record = ClaimRecord(
        paper=spec.paper, claim=spec.claim, metric=spec.metric,
        ours=_mean(per_seed[spec.method]), baseline=_mean(per_seed[spec.baseline]),
        baseline_name=spec.baseline_name, paper_value=spec.paper_value, paper_baseline=spec.paper_baseline,
        verdict=verdict(comparisons, gates), command=command, seconds=0.0, seeds=list(seeds),
        per_seed=per_seed, comparisons=comparisons, gates=gates, references=list(spec.references),
        scale=ctx.scale, budget={"fraction": ctx.fraction, **ctx.budget},
        details={"headline": [spec.method, spec.baseline], "arm_names": {a: spec.label(a) for a in arms},
                 "seeds": {str(s): {"checks": runs[s].checks, **runs[s].details} for s in seeds}})
    if describe is not None:
        record.table_md, record.note = describe(ctx, spec, runs, record)
    else:
        record.table_md = arms_table(spec, record)
    record.seconds = round(time.perf_counter() - start, 1)
    return record, runs


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else math.nan


def arms_table(spec: ClaimSpec, record: ClaimRecord) -> str:
    """Every arm's mean ± standard deviation over seeds, then every comparison and gate with its margin."""
    seeds = record.seeds
    lines = [f"| arm | mean over {len(seeds)} seeds | ± SD | per seed ({', '.join(map(str, seeds))}) |",
             "|---|---|---|---|"]
    for arm, values in record.per_seed.items():
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        ref = " (reference, no learning)" if arm in record.references else ""
        lines.append(f"| {spec.label(arm)}{ref} | {_num(_mean(values))} | {_num(sd)} | "
                     + ", ".join(_num(v) for v in values) + " |")
    lines += ["", comparisons_table(spec, record)]
    return "\n".join(lines)


def comparisons_table(spec: ClaimSpec, record: ClaimRecord) -> str:
    lines = ["| test | margin ± SE (paired over seeds) | needed | result |", "|---|---|---|---|"]
    for g in record.gates:
        if "margin" in g:
            lines.append(f"| premise: {spec.label(g['method'])} ahead of {spec.label(g['baseline'])} | "
                         f"{format_margin(g)} | > 2 SE | {'passed' if g['passed'] else 'failed'} |")
        else:
            lines.append(f"| premise: {g['description'] or g['name']} | – | every seed | "
                         f"{'passed' if g['passed'] else 'failed'} |")
    for c in record.comparisons:
        if c.get("tolerance"):
            test, needed = "no worse than", f"margin − 2 SE > −{c['tolerance']:g}"
        else:
            test, needed = "ahead of", "> 2 SE"
        lines.append(f"| {spec.label(c['method'])} {test} {spec.label(c['baseline'])} | {format_margin(c)} "
                     f"| {needed} | {'holds' if c['holds'] else 'does not hold'} |")
    lines.append(f"\nVerdict: **{record.verdict}** ({record.scale} scale, budget {budget_text(record.budget)}).")
    return "\n".join(lines)


def _num(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"


def format_margin(c: dict) -> str:
    """``+1.23 ± 0.45`` (positive favours the method), ``–`` where undefined."""
    m, se = c.get("margin"), c.get("se")
    if m is None or not math.isfinite(m):
        return "–"
    return f"{m:+.3g} ± {se:.2g}" if se is not None and math.isfinite(se) else f"{m:+.3g} ± –"


def budget_text(budget: dict) -> str:
    rest = ", ".join(f"{k} {v}" for k, v in budget.items() if k != "fraction")
    return f"{budget.get('fraction', 1.0):g}x" + (f": {rest}" if rest else "")


def run(spec: ClaimSpec, run_seed: RunSeed, argv: list[str] | None = None, *,
        add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        describe: Describe | None = None, docs_dir: Path | None = None,
        description: str = "") -> ClaimRecord:
    """The whole claim: parse the shared command line, run every seed (at every budget with ``--sweep``),
    apply the rule, save the record and print it. Returns the (last) record."""
    p = parser(spec, description)
    if add_arguments is not None:
        add_arguments(p)
    args = p.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds repeats a seed: {args.seeds}")
    if args.scale == "smoke" and args.out is None:
        p.error("--scale smoke checks the pipeline only: give --out DIR so that results/ is not overwritten")
    if args.scale == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise UserFacingError("--scale gpu needs a CUDA device and none is visible here; run it on a GPU "
                                  "machine, or drop --scale for the CPU-scale claim.")
    out = record_dir(spec, args)
    figures = (docs_dir if docs_dir is not None and args.out is None and not args.sweep and args.scale == "cpu"
               else out)
    command = claim_command(spec.paper, argv)
    fractions = SWEEP_FRACTIONS if args.sweep else (1.0,)
    records = []
    with tempfile.TemporaryDirectory(prefix=f"claim-{spec.paper}-") as tmp:
        for fraction in fractions:
            ctx = ClaimContext(args=args, scale=args.scale, fraction=fraction, figures_dir=Path(figures),
                               workdir=Path(tmp) / f"budget-{fraction:g}")
            ctx.workdir.mkdir(parents=True)
            record, _ = measure(spec, ctx, list(args.seeds), run_seed, describe, command)
            records.append(record)
            folder = out / f"budget-{fraction:g}" if args.sweep else out
            path = record.save(folder)
            print(summary_line(record))
            print(f"wrote {path}", flush=True)
    if args.sweep:
        write_sweep(spec, records, out, command)
    return records[-1]


def summary_line(record: ClaimRecord) -> str:
    first = headline_comparison(record) if record.comparisons else {}
    return (f"{record.paper}: {record.verdict} — {record.metric}: ours {_num(record.ours)} vs "
            f"{record.baseline_name} {_num(record.baseline)}, margin {format_margin(first)} over seeds "
            f"{record.seeds} ({record.scale}, budget {budget_text(record.budget)}, {record.seconds:.0f} s)")


def write_sweep(spec: ClaimSpec, records: list[ClaimRecord], out: Path, command: str) -> Path:
    """``sweep.json`` and ``sweep.md``: each comparison's margin ± SE at each budget, with the command."""
    rows = [{"budget": r.budget, "verdict": r.verdict,
             "comparisons": [{k: c[k] for k in ("name", "margin", "se", "holds")} for c in r.comparisons],
             "gates": [{"name": g["name"], "passed": g["passed"]} for g in r.gates]} for r in records]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    path.write_text(json.dumps(finite_json({"paper": spec.paper, "command": command, "seeds": records[-1].seeds,
                                            "rows": rows}), indent=2, allow_nan=False) + "\n")
    names = [c["name"] for c in records[-1].comparisons]
    md = [f"Budget sweep of `{command}` (seeds {records[-1].seeds}): margin ± SE, positive favours the method.", "",
          "| budget | " + " | ".join(names) + " | verdict |", "|---|" + "---|" * (len(names) + 1)]
    for r in records:
        md.append(f"| {budget_text(r.budget)} | " + " | ".join(format_margin(c) for c in r.comparisons)
                  + f" | {r.verdict} |")
    (out / "sweep.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return path


def main_guard(fn: Callable[[], object]) -> None:
    """Run a claim's ``main``; a :class:`UserFacingError` prints one paragraph and exits 2."""
    try:
        fn()
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
