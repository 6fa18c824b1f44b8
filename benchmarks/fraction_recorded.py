"""Accuracy against training data size for SmolLM2-135M on SVAMP (issue 13), drawn from the per-seed results
recorded in BENCHMARKS.md, since the runs behind them were made on different machines and their folders did not
survive (each machine is replaced between sessions).

    PYTHONPATH=src .venv/bin/python benchmarks/fraction_recorded.py --out docs/evidence/fraction_svamp.png

Each number below is the test accuracy (%) of one run at its validation-chosen checkpoint, copied from the
BENCHMARKS.md section named beside it; standard and dss of one seed were trained on the same machine, so each
seed gives one paired difference. Left panel: mean test accuracy per method with the 95% t interval over seeds.
Right panel: dss - standard per seed (dots) and its mean with the 95% t interval over seeds. Analysis for
issue 13, not part of the package.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path

from stepdistill.experiments.paired import t_interval
from stepdistill.experiments.plots import pyplot, save_figure


@dataclass(frozen=True)
class Recorded:
    fraction: float  # share of the 720 training examples
    recipe: str  # the line of the plot it belongs to
    source: str  # the BENCHMARKS.md section the numbers come from
    standard: tuple[float, ...]  # test % per seed, chosen on validation
    dss: tuple[float, ...]  # the same seeds, same machine

    def __post_init__(self):
        if len(self.standard) != len(self.dss):
            raise ValueError(f"{self.source}: {len(self.standard)} standard seeds against {len(self.dss)} dss seeds")

    @property
    def gaps(self) -> list[float]:
        """dss - standard per seed (points)."""
        return [dss - standard for dss, standard in zip(self.dss, self.standard)]


CHAT = "chat template, 12 epochs, valid every 2"
PREFIX = "prefix format, 5 epochs, valid every epoch"

RECORDED = (
    Recorded(0.125, CHAT, "The chat recipe at 12.5% of train (fourth machine)",
             standard=(33.0, 24.0, 27.0, 23.0, 24.0, 35.0, 25.5),
             dss=(30.0, 23.5, 24.5, 28.0, 29.0, 27.0, 27.0)),
    Recorded(0.25, CHAT, "The chat-template input format (first machine, seeds 0-3) and "
             "The chat-format win does not replicate (second machine, seeds 0-2)",
             standard=(36.0, 26.5, 33.5, 25.5, 40.5, 32.5, 38.0), dss=(43.5, 31.0, 41.5, 29.0, 43.0, 27.0, 35.0)),
    Recorded(1.0, PREFIX, "CPU SVAMP: standard finetuning against Distilling step-by-step (seeds 0-1)",
             standard=(53.5, 48.5), dss=(57.0, 50.0)),
)


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% t interval over seeds (the mean itself for a single seed)."""
    mean = statistics.fmean(values)
    low, high = t_interval(values) or (mean, mean)
    return mean, low, high


def draw(records: tuple[Recorded, ...], path: Path) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for recipe, marker in ((CHAT, "o"), (PREFIX, "s")):
        rows = sorted((row for row in records if row.recipe == recipe and row.dss), key=lambda row: row.fraction)
        if not rows:
            continue
        xs = [100 * row.fraction for row in rows]
        for method, color in (("standard", "tab:blue"), ("dss", "tab:orange")):
            stats = [mean_interval(list(getattr(row, method))) for row in rows]
            means = [mean for mean, _, _ in stats]
            errors = [[mean - low for mean, low, _ in stats], [high - mean for mean, _, high in stats]]
            left.errorbar(xs, means, yerr=errors, marker=marker, capsize=3, color=color,
                          linestyle="-" if recipe == CHAT else ":", label=f"{method}, {recipe}")
        for x, row in zip(xs, rows):
            gaps = row.gaps
            mean, low, high = mean_interval(gaps)
            right.scatter([x] * len(gaps), gaps, color="gray", alpha=0.5, s=14)
            right.errorbar([x], [mean], yerr=[[mean - low], [high - mean]], marker=marker, capsize=4, color="black")
            right.annotate(f"{mean:+.1f} ({len(gaps)} seeds)", (x, mean), textcoords="offset points", xytext=(6, 6),
                           fontsize=7)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([12.5, 25, 50, 100], ["12.5", "25", "50", "100"])
        ax.set_xlabel("training data used (% of the 720 train examples)")
        ax.grid(alpha=0.3)
    right.axhline(0, color="black", linewidth=0.8)
    left.set_ylabel("test accuracy (%), mean and 95% t interval over seeds")
    right.set_ylabel("dss - standard (points): seeds (dots), mean and 95% t interval")
    left.legend(fontsize=7)
    left.set_title("SVAMP, SmolLM2-135M, PaLM rationales, chosen on 80 valid items", fontsize=9)
    right.set_title("paired per seed (same machine); the chat and prefix recipes differ", fontsize=9)
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the PNG to write")
    options = parser.parse_args()
    for row in RECORDED:
        if row.dss:
            gaps = row.gaps
            mean, low, high = mean_interval(gaps)
            print(f"{row.fraction:g} {row.recipe}: standard {statistics.fmean(row.standard):.2f}, "
                  f"dss {statistics.fmean(row.dss):.2f}, dss - standard {mean:+.2f} [{low:+.2f}, {high:+.2f}] "
                  f"over {len(gaps)} seeds")
    out = Path(options.out)
    try:
        print(f"plot: {draw(RECORDED, out)}")
    except OSError as error:
        raise SystemExit(f"fraction_recorded.py: cannot write {out}: {error.strerror}") from None


if __name__ == "__main__":
    main()
