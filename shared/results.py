"""Claim records (``results/<paper>.json``) and the tables rendered from them.

Each paper's ``claim.py`` writes one :class:`ClaimRecord`. ``python -m shared.results`` renders
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


@dataclasses.dataclass
class ClaimRecord:
    """One paper's key claim rerun at small scale.

    ``ours`` and ``baseline`` are measured by ``command``; ``paper`` and ``paper_baseline`` are the
    paper's numbers for the same comparison at full scale (None where the paper has none).
    """

    paper: str
    claim: str
    metric: str
    ours: float
    baseline: float | None
    baseline_name: str
    paper_value: float | None
    paper_baseline: float | None
    holds: bool
    command: str
    seconds: float
    hardware: str = dataclasses.field(default_factory=lambda: hardware())
    runs: int = 1
    note: str = ""
    table_md: str = ""  # the paper's own results table, rendered into projects/<paper>/README.md
    details: dict = dataclasses.field(default_factory=dict)

    def save(self, results_dir: Path = RESULTS_DIR) -> Path:
        """Write ``<results_dir>/<paper>.json``; NaN and infinities become null (strict JSON)."""
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{self.paper}.json"
        path.write_text(json.dumps(_finite(dataclasses.asdict(self)), indent=2, allow_nan=False) + "\n")
        return path


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
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
    records = {}
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(ClaimRecord)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected only {sorted(fields)}")
        records[data["paper"]] = ClaimRecord(**data)
    return records


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def render_table(records: dict[str, ClaimRecord]) -> str:
    """The zoo's table: one row per paper, paper's number beside ours."""
    lines = ["| paper | status | metric | paper: method / baseline | ours: method / baseline | holds here |",
             "|---|---|---|---|---|---|"]
    for name, title in PAPERS.items():
        link = f"[{name}](projects/{name})" if (ROOT / "projects" / name).is_dir() else name
        r = records.get(name)
        if r is None:
            lines.append(f"| {link}: {title} | planned | | | | |")
            continue
        lines.append(
            f"| {link}: {title} | claim measured | {r.metric} | {_fmt(r.paper_value)} / {_fmt(r.paper_baseline)} "
            f"| {_fmt(r.ours)} / {_fmt(r.baseline)} ({r.baseline_name}) | {'yes' if r.holds else 'no'} |")
    return "\n".join(lines)


def render_results_md(records: dict[str, ClaimRecord]) -> str:
    parts = ["# Results", "", "Rendered by `python -m shared.results` from `results/*.json`; do not edit by hand.",
             "", render_table(records), ""]
    for r in records.values():
        parts += [f"## {r.paper}", "", f"**Claim.** {r.claim}", "",
                  f"- metric: {r.metric}; ours {_fmt(r.ours)} vs {r.baseline_name} {_fmt(r.baseline)}; "
                  f"paper {_fmt(r.paper_value)} vs {_fmt(r.paper_baseline)}; holds here: {'yes' if r.holds else 'no'}",
                  f"- command: `{r.command}` ({r.seconds:.0f} s, {r.runs} run(s), {r.hardware})"]
        if r.note:
            parts.append(f"- note: {r.note}")
        parts.append("")
    return "\n".join(parts)


def splice(text: str, block: str) -> str:
    """Replace what stands between the results markers in ``text`` by ``block``."""
    pattern = re.compile("^" + re.escape(BEGIN) + "$.*?^" + re.escape(END) + "$", re.S | re.M)
    if not pattern.search(text):
        raise ValueError(f"a README has no {BEGIN} ... {END} markers to render the results table into")
    return pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text)


def render_all(root: Path = ROOT, check: bool = False) -> bool:
    """Write (or, with ``check``, compare) RESULTS.md and the READMEs' tables. True when up to date."""
    records = load_records(root / "results")
    wanted = {root / "RESULTS.md": render_results_md(records),
              root / "README.md": splice((root / "README.md").read_text(), render_table(records))}
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
    records = load_records()
    print(render_table(records))
    if not render_all(check=args.check) and args.check:
        raise SystemExit("RESULTS.md or README.md is out of date with results/*.json: run `python -m shared.results`")


if __name__ == "__main__":
    main()
