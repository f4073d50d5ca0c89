"""Score VALUE submissions as the leaderboard does, after checking them.

    python -m projects.value.evaluate SUBMISSION.zip [MORE.zip ...] --split val|test --gt DIR
        [--tasks tvr tvqa ...] [--no-meteor] [--check] [--table-md FILE] [--table-csv FILE] [--json FILE]

``DIR`` holds the ground truth (EvaluationTools' ``reference_data`` layout or DataRelease's ``ann/``; file names
in :mod:`projects.value.tasks`). Every problem of a submission is printed at once, with its task, file and id;
the exit status is 1 when any is an error. With several submissions the leaderboard table ranks them by the
meta-average. Captioning needs ``java`` (the PTB tokenizer and METEOR of pycocoevalcap).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from projects.value.release import find_file
from projects.value.submission import Report, SubmissionError, load_ground_truth, read_files, score_submission, validate
from projects.value.tasks import GROUPS, TASK_NAMES, TASKS
from shared.errors import UserFacingError, user_message


def leaderboard_rows(reports: Sequence[Report]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (best meta-average first) of the leaderboard table: one column per task scored, then the
    meta-average (all 11 tasks: the paper's; fewer: the mean of those scored) and the official 14-value mean."""
    tasks = [t for group in GROUPS.values() for t in group if any(t in r.scores for r in reports)]
    full = all(r.meta_average is not None for r in reports)
    header = ["submission", *[TASKS[t].title for t in tasks], "Meta-Ave" if full else f"Mean ({len(tasks)} tasks)",
              "evaluate.py average"]
    rows = []
    for r in sorted(reports, key=lambda r: -(r.meta_average if full else r.mean_of_scored)):
        meta = r.meta_average if full else r.mean_of_scored
        rows.append([r.name, *[f"{r.scores[t]:.2f}" if t in r.scores else "–" for t in tasks], f"{meta:.2f}",
                     f"{r.official_average:.2f}"])
    return header, rows


def table_markdown(reports: Sequence[Report]) -> str:
    header, rows = leaderboard_rows(reports)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table_csv(reports: Sequence[Report]) -> str:
    header, rows = leaderboard_rows(reports)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def details(report: Report) -> str:
    lines = [f"{report.name} ({report.phase} phase)"]
    for task, m in report.metrics.items():
        shown = ", ".join(f"{k} {v:.2f}" for k, v in m.items())
        lines.append(f"  {TASKS[task].title:11s} {TASKS[task].score_name} {report.scores[task]:.2f}   ({shown})")
    for p in report.problems:
        lines.append(f"  {p}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m projects.value.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("submissions", nargs="+", type=Path, help="submission zips (or folders laid out the same way)")
    p.add_argument("--split", required=True, choices=("val", "test"), help="leaderboard phase")
    p.add_argument("--gt", required=True, type=Path, help="folder holding the ground truth")
    p.add_argument("--tasks", nargs="+", choices=TASK_NAMES, help="score only these (default: every task whose "
                                                                  "ground truth is in --gt)")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (its JVM takes seconds to start)")
    p.add_argument("--check", action="store_true", help="validate only: list every problem, score nothing")
    p.add_argument("--table-md", type=Path, help="write the leaderboard table as markdown")
    p.add_argument("--table-csv", type=Path, help="write the leaderboard table as CSV")
    p.add_argument("--json", type=Path, help="write every metric as JSON")
    args = p.parse_args(argv)
    try:
        reports, failed = [], False
        ground_truth = None
        for path in args.submissions:
            try:
                if ground_truth is None:  # read the ground truth once for all submissions
                    names = args.tasks or [t for t in TASK_NAMES
                                           if any(find_file(args.gt, n, t) for n in TASKS[t].ground_truth[args.split])]
                    if not names:
                        raise UserFacingError(f"{args.gt}: no VALUE ground truth found for the {args.split} phase "
                                              f"(file names: projects/value/tasks.py)")
                    ground_truth = {t: load_ground_truth(TASKS[t], args.split, args.gt) for t in names}
                if args.check:  # validate only, score nothing
                    _, problems = validate(read_files(path), args.split, ground_truth)
                    if any(prob.severity == "error" for prob in problems):
                        raise SubmissionError(problems)
                    print(f"{path}: OK ({len(problems)} warning(s))")
                    for prob in problems:
                        print(f"  {prob}")
                    continue
                report = score_submission(path, args.split, args.gt, list(ground_truth), meteor=not args.no_meteor,
                                          ground_truth=ground_truth)
            except SubmissionError as err:
                failed = True
                print(f"{path}: {user_message(err)}", file=sys.stderr)
                continue
            except UserFacingError as err:
                if ground_truth is None:  # the ground truth itself is unusable: nothing can be scored
                    raise
                failed = True  # this submission only (e.g. not a zip): score the others
                print(f"{path}: error: {user_message(err)}", file=sys.stderr)
                continue
            reports.append(report)
            print(details(report))
        if reports and not args.check:
            print()
            print(table_markdown(reports))
            if args.table_md:
                args.table_md.write_text(table_markdown(reports))
            if args.table_csv:
                args.table_csv.write_text(table_csv(reports))
            if args.json:
                args.json.write_text(json.dumps([{"submission": r.name, "phase": r.phase, "metrics": r.metrics,
                                                  "scores": r.scores, "meta_average": r.meta_average,
                                                  "mean_of_scored": r.mean_of_scored,
                                                  "official_average": r.official_average,
                                                  "warnings": [str(w) for w in r.problems]} for r in reports],
                                                indent=2) + "\n")
        return 1 if failed else 0
    except UserFacingError as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
