"""Test accuracy at each checkpoint for both step sizes, SmolLM2-135M on SVAMP at 12.5% of train (issue 13),
drawn from the per-checkpoint results recorded in BENCHMARKS.md: the lr-1e-4 runs' folders did not survive
their machine, so the recorded numbers are the only source for both step sizes alike.

    PYTHONPATH=src .venv/bin/python benchmarks/lr_recorded.py --out docs/evidence/lr_svamp_f125.png

Each number is the test accuracy (%) of one run at one evaluated checkpoint (every 2 of 12 epochs), copied from
the "Test % at each evaluated checkpoint" tables of the BENCHMARKS.md sections named below. Test accuracy of
every checkpoint is measured, never used to choose. One panel per method: the mean over seeds at each step size
(thick) and each seed (thin). Analysis for issue 13, not part of the package.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path

from stepdistill.experiments.plots import pyplot, save_figure

EPOCHS = (2, 4, 6, 8, 10, 12)  # the evaluated checkpoints


@dataclass(frozen=True)
class Curve:
    method: str  # "standard" or "dss"
    lr: str  # as the plot labels it
    source: str  # the BENCHMARKS.md section the numbers come from
    test: dict[int, tuple[float, ...]]  # seed -> test % at each of EPOCHS

    def __post_init__(self):
        for seed, values in self.test.items():
            if len(values) != len(EPOCHS):
                raise ValueError(f"{self.source}, {self.method} seed {seed}: {len(values)} checkpoints, "
                                 f"expected {len(EPOCHS)}")

    @property
    def mean(self) -> list[float]:
        return [statistics.fmean(column) for column in zip(*self.test.values())]


CONFIRMATORY = "A confirmatory test of the fixed-budget lead, 12.5% of train (lr 1e-4, 5% warm-up)"
LR_LOOK = "Learning rate and warm-up for the two-task loss, 12.5% of train (lr 3e-4, 10% warm-up)"

CURVES = (
    Curve("standard", "lr 1e-4", CONFIRMATORY, {7: (27.5, 27.5, 32.0, 33.0, 34.5, 33.5),
                                                8: (29.5, 25.0, 33.5, 27.5, 26.5, 26.5),
                                                9: (24.5, 31.0, 29.0, 21.0, 29.0, 30.5)}),
    Curve("dss", "lr 1e-4", CONFIRMATORY, {7: (26.0, 30.0, 31.0, 32.5, 33.5, 34.0),
                                           8: (27.5, 27.5, 30.5, 31.0, 28.0, 27.5),
                                           9: (27.0, 27.5, 22.0, 27.5, 31.0, 30.5)}),
    Curve("standard", "lr 3e-4", LR_LOOK, {7: (15.0, 19.0, 27.0, 27.0, 27.5, 28.5),
                                           8: (5.5, 23.5, 27.0, 25.5, 22.5, 27.0),
                                           9: (25.0, 25.5, 18.5, 17.0, 25.5, 23.0)}),
    Curve("dss", "lr 3e-4", LR_LOOK, {7: (28.5, 22.5, 27.5, 28.5, 30.0, 30.0),
                                      8: (24.5, 28.0, 29.0, 29.0, 32.5, 33.0),
                                      9: (27.5, 28.5, 28.0, 28.5, 31.0, 32.5)}),
)


def draw(curves: tuple[Curve, ...], path: Path) -> Path:
    plt = pyplot()
    fig, panels = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharey=True)
    colors = {"lr 1e-4": "tab:blue", "lr 3e-4": "tab:red"}
    for panel, method in zip(panels, ("standard", "dss")):
        for curve in (c for c in curves if c.method == method):
            for values in curve.test.values():
                panel.plot(EPOCHS, values, color=colors[curve.lr], alpha=0.25, linewidth=1)
            seeds = ", ".join(str(seed) for seed in curve.test)
            panel.plot(EPOCHS, curve.mean, color=colors[curve.lr], marker="o", linewidth=2.2,
                       label=f"{curve.lr}, mean of seeds {seeds}")
        panel.set_title(f"{method}: test % at each checkpoint")
        panel.set_xlabel("epoch")
        panel.set_xticks(EPOCHS)
        panel.grid(alpha=0.3)
        panel.legend(loc="lower right", fontsize=8)
    panels[0].set_ylabel("test accuracy, % of 200 items")
    fig.suptitle("SVAMP 12.5% of train (90 examples), SmolLM2-135M, chat format, fp32: thin lines are single seeds",
                 fontsize=10)
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/evidence/lr_svamp_f125.png"))
    args = parser.parse_args()
    for curve in CURVES:
        print(f"{curve.method:8s} {curve.lr}: mean test % by epoch", " ".join(f"{v:5.2f}" for v in curve.mean))
    print("wrote", draw(CURVES, args.out))


if __name__ == "__main__":
    main()
