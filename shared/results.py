"""Claim records (``results/<paper>.json``) and the tables rendered from them.

Each paper's ``claim.py`` writes one :class:`ClaimRecord` through the protocol of :mod:`shared.claims`
(``results/<paper>.json`` at CPU scale, ``results/gpu/<paper>.json`` at GPU scale). ``python -m shared.results`` renders
from those files ``RESULTS.md``, the zoo table inside the top-level ``README.md`` and each paper's
own table (``table_md``) inside ``projects/<paper>/README.md``, always between the
``results:begin`` and ``results:end`` markers, so the committed numbers and the READMEs agree;
a test checks that they do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# The ten papers of the zoo, in the order of the README. A paper without a record shows as planned.
PAPERS: dict[str, str] = {
    "value": "VALUE benchmark, HERO-style baseline (2106.04632)",
    "distillvlm": "DistillVLM: attention MSE + token-wise NCE distillation (2104.02096)",
    "meshgraphormer": "Mesh Graphormer (2104.00272)",
    "stgt": "Spatial-Temporal Graph Transformer for MOT (2104.00194)",
    "dcdfa": "Disentanglement-based cross-domain feature augmentation, UDA re-ID (2103.13917)",
    "automix": "AutoMix: learned mixup policy (2103.13027)",
    "dcd": "Dynamic convolution decomposition (2103.08756)",
    "weaknas": "Stronger NAS with weaker predictors (2102.10490)",
    "seed": "SEED: self-supervised distillation for small models (2101.04731)",
    "hpgan": "HP-GAN: probabilistic human motion prediction (2012.15378)",
}


VERDICTS = ("holds", "does not hold", "premise absent")


@dataclasses.dataclass
class ClaimRecord:
    """One paper's key claim rerun at small scale, by the protocol of :mod:`shared.claims`.

    ``per_seed`` holds every arm's value on each of ``seeds`` (the same order); ``ours`` and ``baseline`` are
    the means of the claim's two headline arms; ``comparisons`` and ``gates`` carry each paired margin ± SE
    and its outcome; ``verdict`` is one of :data:`VERDICTS`. ``paper`` and ``paper_baseline`` are the paper's
    numbers for the same comparison at full scale (None where the paper has none).
    """

    paper: str
    claim: str
    metric: str
    ours: float
    baseline: float | None
    baseline_name: str
    paper_value: float | None
    paper_baseline: float | None
    verdict: str
    command: str
    seconds: float
    hardware: str = dataclasses.field(default_factory=lambda: hardware())
    seeds: list[int] = dataclasses.field(default_factory=list)
    per_seed: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    comparisons: list[dict] = dataclasses.field(default_factory=list)
    gates: list[dict] = dataclasses.field(default_factory=list)
    references: list[str] = dataclasses.field(default_factory=list)
    scale: str = "cpu"
    budget: dict = dataclasses.field(default_factory=dict)
    note: str = ""
    table_md: str = ""  # the paper's own results table, rendered into projects/<paper>/README.md
    details: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"{self.paper}: verdict {self.verdict!r} is not one of {VERDICTS}")

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def save(self, results_dir: Path = RESULTS_DIR) -> Path:
        """Write ``<results_dir>/<paper>.json``; NaN and infinities become null (strict JSON)."""
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{self.paper}.json"
        path.write_text(json.dumps(finite_json(dataclasses.asdict(self)), indent=2, allow_nan=False) + "\n")
        return path


def finite_json(value):
    """``value`` with every NaN or infinity replaced by None, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def claim_command(paper: str, argv: list[str] | None) -> str:
    """The command a claim was run with, for :attr:`ClaimRecord.command`: ``make reproduce-<paper>`` when run
    without arguments, else ``python -m projects.<paper>.claim <args>`` (``argv`` None: the process's own)."""
    import sys

    given = sys.argv[1:] if argv is None else argv
    return f"python -m projects.{paper}.claim " + " ".join(given) if given else f"make reproduce-{paper}"


def hardware() -> str:
    """A one-line description of where the numbers were measured."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return f"{device}, torch {torch.__version__}"


def load_records(results_dir: Path = RESULTS_DIR) -> dict[str, ClaimRecord]:
    """The records of one folder (``results/`` for the CPU-scale claims, ``results/gpu/`` for GPU scale)."""
    records = {}
    fields = {f.name for f in dataclasses.fields(ClaimRecord)}
    required = {f.name for f in dataclasses.fields(ClaimRecord)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        unknown, missing = set(data) - fields, required - set(data)
        if unknown or missing:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}; a claim "
                             "record is written by shared.claims: rerun `make reproduce-<paper>`")
        records[data["paper"]] = ClaimRecord(**data)
    return records


def _fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"


def margin_text(record: ClaimRecord) -> str:
    """The headline comparison's ``margin ± SE (n seeds)``; positive favours the paper's method."""
    if not record.comparisons:
        return "–"
    c = headline_comparison(record)
    m, se = c.get("margin"), c.get("se")
    if m is None or not math.isfinite(m):
        return f"– ({len(record.seeds)} seeds)"
    se_text = f"{se:.2g}" if se is not None and math.isfinite(se) else "–"
    return f"{m:+.3g} ± {se_text} ({len(record.seeds)} seed{'s' if len(record.seeds) != 1 else ''})"


def headline_comparison(record: ClaimRecord) -> dict:
    """The comparison of the table's two arms (``details["headline"]``: method and baseline), else the first."""
    arms = record.details.get("headline")
    return next((c for c in record.comparisons if [c.get("method"), c.get("baseline")] == arms), record.comparisons[0])


def render_table(records: dict[str, ClaimRecord], gpu: dict[str, ClaimRecord] | None = None) -> str:
    """The zoo's table: one row per paper (and one more where a GPU-scale record exists), paper's number
    beside ours, the headline margin ± SE over seeds and the verdict."""
    gpu = gpu or {}
    lines = ["| paper | scale | metric | paper: method / baseline | ours: method / baseline | "
             "margin ± SE (seeds) | verdict |",
             "|---|---|---|---|---|---|---|"]
    for name, title in PAPERS.items():
        link = f"[{name}](projects/{name})" if (ROOT / "projects" / name).is_dir() else name
        rows = [r for r in (records.get(name), gpu.get(name)) if r is not None]
        if not rows:
            lines.append(f"| {link}: {title} | planned | | | | | |")
        for r in rows:
            lines.append(
                f"| {link}: {title} | {r.scale} | {r.metric} | {_fmt(r.paper_value)} / {_fmt(r.paper_baseline)} "
                f"| {_fmt(r.ours)} / {_fmt(r.baseline)} ({r.baseline_name}) | {margin_text(r)} | {r.verdict} |")
    return "\n".join(lines)


def render_results_md(records: dict[str, ClaimRecord], gpu: dict[str, ClaimRecord] | None = None) -> str:
    parts = ["# Results", "", "Rendered by `python -m shared.results` from `results/*.json` (and `results/gpu/*.json`);"
             " do not edit by hand. Margins are paired over seeds, positive favours the paper's method; a claim "
             "holds when every required margin exceeds two standard errors and every premise gate passes.",
             "", render_table(records, gpu), ""]
    for r in [*records.values(), *(gpu or {}).values()]:
        parts += [f"## {r.paper} ({r.scale} scale)", "", f"**Claim.** {r.claim}", "",
                  f"- metric: {r.metric}; ours {_fmt(r.ours)} vs {r.baseline_name} {_fmt(r.baseline)}; "
                  f"paper {_fmt(r.paper_value)} vs {_fmt(r.paper_baseline)}; verdict: {r.verdict}"]
        for c in r.comparisons:
            parts.append(f"- comparison {c['name']}: margin {_margin(c)} over {c['n']} seeds: "
                         f"{'holds' if c['holds'] else 'does not hold'}")
        for g in r.gates:
            parts.append(f"- premise {g['name']}: " + (f"margin {_margin(g)}: " if "margin" in g else "")
                         + ("passed" if g["passed"] else "failed"))
        budget = ", ".join(f"{k} {v}" for k, v in r.budget.items())
        parts.append(f"- command: `{r.command}` ({r.seconds:.0f} s, seeds {r.seeds}, budget {budget or '–'}, "
                     f"{r.hardware})")
        if r.note:
            parts.append(f"- note: {r.note}")
        parts.append("")
    return "\n".join(parts)


def _margin(c: dict) -> str:
    m, se = c.get("margin"), c.get("se")
    if m is None or not math.isfinite(m):
        return "–"
    return f"{m:+.3g} ± " + (f"{se:.2g}" if se is not None and math.isfinite(se) else "–")


def splice(text: str, block: str) -> str:
    """Replace what stands between the results markers in ``text`` by ``block``."""
    pattern = re.compile("^" + re.escape(BEGIN) + "$.*?^" + re.escape(END) + "$", re.S | re.M)
    if not pattern.search(text):
        raise ValueError(f"a README has no {BEGIN} ... {END} markers to render the results table into")
    return pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text)


def render_all(root: Path = ROOT, check: bool = False) -> bool:
    """Write (or, with ``check``, compare) RESULTS.md and the READMEs' tables. True when up to date."""
    records = load_records(root / "results")
    gpu = load_records(root / "results" / "gpu") if (root / "results" / "gpu").is_dir() else {}
    wanted = {root / "RESULTS.md": render_results_md(records, gpu),
              root / "README.md": splice((root / "README.md").read_text(), render_table(records, gpu))}
    for name, record in records.items():
        readme = root / "projects" / name / "README.md"
        if record.table_md and readme.is_file():
            wanted[readme] = splice(readme.read_text(), record.table_md)
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if not check:
        for path in stale:
            path.write_text(wanted[path])
    return not stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if RESULTS.md or README.md are out of date")
    args = parser.parse_args()
    gpu_dir = RESULTS_DIR / "gpu"
    print(render_table(load_records(), load_records(gpu_dir) if gpu_dir.is_dir() else {}))
    if not render_all(check=args.check) and args.check:
        raise SystemExit("RESULTS.md or README.md is out of date with results/*.json: run `python -m shared.results`")


if __name__ == "__main__":
    main()
