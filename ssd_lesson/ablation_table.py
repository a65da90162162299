"""The ablation table: each variant's mean and spread over seeds, and verdicts the numbers decide.

Runs with different seeds (other training images, other starting weights, another batch order)
give different numbers. So a variant is compared with its experiment's first variant (the
package's choice) by the mean and the standard deviation over seeds, and the code, not the
prose, says what the difference means:

* "higher" or "lower" when the two ranges mean ± std do not overlap: the difference between the
  means is larger than the two spreads together;
* "no measurable difference" otherwise, however the means compare;
* "one seed: cannot tell" with a single seed: there is no spread to compare with.

Then the verdict is set beside the paper's direction: "agrees", "disagrees" or "cannot tell".
``save_results`` and ``load_results`` keep what ``run_ablations`` returns in a JSON file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

from ssd_lesson import checks

# Columns whose difference gets a verdict (higher is better for both).
JUDGED = ("mAP", "small")
HEADINGS = {
    "mAP": "mAP@0.5",
    "small": "recall small",
    "medium": "medium",
    "large": "large",
    "no anchor": "no anchor",
    "negatives' share": "neg. share",
}
COLUMN_WIDTH = 13
NAME_WIDTH = 27


class Spread(NamedTuple):
    """The seeds' values of one number, summarised."""

    mean: float
    std: float  # sample standard deviation (n - 1); 0 for a single seed
    low: float  # the smallest seed's value
    high: float  # the largest
    count: int  # how many seeds


def spread(values) -> Spread:
    """Mean, standard deviation, min and max of one number over seeds."""
    values = checks.seed_values(values)
    mean = sum(values) / len(values)
    if len(values) > 1:
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    else:
        std = 0.0
    return Spread(mean, std, min(values), max(values), len(values))


def verdict(package_values, values) -> str:
    """ "higher", "lower", "no measurable difference" or "one seed: cannot tell"."""
    ours, theirs = spread(package_values), spread(values)
    if ours.count < 2 or theirs.count < 2:
        return "one seed: cannot tell"
    gap = theirs.mean - ours.mean
    if abs(gap) <= ours.std + theirs.std:  # the ranges mean ± std overlap
        return "no measurable difference"
    return "higher" if gap > 0 else "lower"


def agreement(our_verdict: str, paper_direction: str | None) -> str:
    """Our verdict beside the paper's direction: "agrees", "disagrees" or "cannot tell"."""
    checks.choice(paper_direction, "paper_direction", ("higher", "lower", None))
    if paper_direction is None:
        return "not measured in the paper"
    if our_verdict not in ("higher", "lower"):
        return "cannot tell"
    return "agrees" if our_verdict == paper_direction else "disagrees"


def experiment_rows(experiment, runs: dict) -> list[dict]:
    """One row per variant: its spreads per column, its verdicts and the paper's direction."""
    checks.experiment_runs(experiment, runs)
    package = experiment.variants[0].name
    rows = []
    for variant in (v for v in experiment.variants if v.name in runs):
        seeds = runs[variant.name]
        columns = {c: spread([m[c] for m in seeds]) for c in experiment.columns}
        judged = [c for c in experiment.columns if c in JUDGED]
        verdicts = {}
        if variant.name != package:
            for c in judged:
                base = [m[c] for m in runs[package]]
                verdicts[c] = verdict(base, [m[c] for m in seeds])
        direction, source = experiment.paper.get(variant.name, (None, ""))
        paper = agreement(verdicts.get("mAP", ""), direction) if variant.name != package else ""
        seconds = spread([m["seconds"] for m in seeds]).mean
        rows.append(
            {"variant": variant.name, "columns": columns, "verdicts": verdicts,
             "paper": paper, "paper_direction": direction, "source": source, "seconds": seconds}
        )  # fmt: skip
    return rows


def _cell(value: Spread) -> str:
    if math.isnan(value.mean):
        return "—"
    if value.count < 2:
        return f"{100 * value.mean:.1f}"
    return f"{100 * value.mean:.1f} ±{100 * value.std:.1f}"


def experiment_table(number: int, experiment, runs: dict) -> str:
    """One experiment as text: a header, one line per variant (in %), then the paper's view."""
    rows = experiment_rows(experiment, runs)
    lines = [f"{number} · {experiment.name}: {experiment.question}"]
    head = "".join(f"{HEADINGS[c]:>{COLUMN_WIDTH}}" for c in experiment.columns)
    lines.append(f"  {'variant':<{NAME_WIDTH}}{head}   verdict against the package")
    for row in rows:
        cells = "".join(f"{_cell(row['columns'][c]):>{COLUMN_WIDTH}}" for c in row["columns"])
        said = ", ".join(f"{c} {v}" for c, v in row["verdicts"].items()) or "(the package)"
        lines.append(f"  {row['variant']:<{NAME_WIDTH}}{cells}   {said}")
    for row in rows:
        if row["paper"]:
            direction = row["paper_direction"] or "—"
            note = f" ({row['source']})" if row["source"] else ""
            lines.append(f"  paper, {row['variant']}: {direction}{note} -> {row['paper']}")
    return "\n".join(lines)


def ablation_table(results: dict, experiments) -> str:
    """Every experiment's table, the way it was made and the rule behind the verdicts."""
    checks.ablation_results(results)
    seeds = results["seeds"]
    lines = [
        f"{results['command']}: seeds {seeds}, size {results['size']!r}, torch "
        f"{results['torch']}, {results['date']}, {results['seconds'] / 60:.1f} minutes",
        "Numbers in %: mean ±std over the seeds. A verdict is 'higher' or 'lower' only when the "
        "ranges mean ±std do not overlap.",
    ]
    for number, experiment in enumerate(experiments, start=1):
        lines += ["", experiment_table(number, experiment, results["runs"][experiment.name])]
    return "\n".join(lines)


def save_results(results: dict, path) -> Path:
    """Write ``run_ablations``' results as JSON (creates the folder); returns the path."""
    checks.ablation_results(results)
    path = checks.path(path, "path")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path


def load_results(path) -> dict:
    """Read results saved by ``save_results``."""
    results = json.loads(checks.path(path, "path", must_exist="file").read_text())
    checks.ablation_results(results)
    return results
