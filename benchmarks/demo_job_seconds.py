"""Where a workflow run's time went: the job-seconds of each rule (and of each training job) from the
``benchmarks/`` files Snakemake wrote under a dataset's results, for runs compared side by side
(e.g. `make demo` on fresh clones of two commits, one after the other on one machine).

    .venv/bin/python benchmarks/demo_job_seconds.py \\
        --run before=/tmp/a/avcmr/results/synthetic --run after=/tmp/b/avcmr/results/synthetic \\
        --workflow-seconds before=446 after=797 --note "fresh clones, one after the other" \\
        --out benchmarks/results/demo_time_<what>.tsv

Writes ``--out``: version, what, seconds (the workflow's wall seconds where given; each training job;
the extraction jobs together; every rule's total), with the machine and ``--note`` in the header.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

from machine_info import machine_description

EXTRACTION_RULES = ("decode", "logmel", "vggish", "inception")


def job_seconds(results: Path) -> dict[str, float]:
    """'rule' and 'rule name' (one benchmark file) → wall seconds, from ``results/benchmarks``."""
    seconds: dict[str, float] = defaultdict(float)
    for path in sorted((results / "benchmarks").glob("*/*.tsv")):
        with open(path) as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        total = sum(float(row["s"]) for row in rows)
        seconds[path.parent.name] += total
        if path.parent.name == "fit_evaluate":
            seconds[f"fit_evaluate {path.stem}"] += total
    return dict(seconds)


def pairs(values: list[str], what: str) -> dict[str, str]:
    parsed = dict(value.split("=", 1) for value in values if "=" in value)
    if len(parsed) != len(values):
        raise SystemExit(f"--{what}: write each as name=value")
    return parsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", required=True, help="name=results/<dataset> of a finished run")
    parser.add_argument("--workflow-seconds", nargs="*", default=[], help="name=seconds of the whole workflow")
    parser.add_argument("--note", default="", help="how the runs were made (one line)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    runs = {name: Path(path) for name, path in pairs(args.run, "run").items()}
    workflow = pairs(args.workflow_seconds, "workflow-seconds")
    rows = []
    for name, results in runs.items():
        if not (results / "benchmarks").is_dir():
            raise SystemExit(f"{results}: no benchmarks/ folder (not a finished workflow run's results/<dataset>)")
        seconds = job_seconds(results)
        if name in workflow:
            rows.append((name, "workflow", float(workflow[name])))
        rows.append((name, f"extraction jobs ({', '.join(EXTRACTION_RULES)})",
                     sum(seconds.get(rule, 0.0) for rule in EXTRACTION_RULES)))  # fmt: skip
        rows += [(name, what, value) for what, value in sorted(seconds.items())]
    with open(args.out, "w", newline="") as handle:
        handle.write(f"# {args.note}; {machine_description()}\n")
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(("version", "what", "seconds"))
        writer.writerows((name, what, f"{value:.2f}") for name, what, value in rows)
    for name, what, value in rows:
        if not what.startswith("fit_evaluate "):
            print(f"{name}\t{what}\t{value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
