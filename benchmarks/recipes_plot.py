"""dss - standard finetuning per recipe, as a forest plot, drawn from the README's evidence table (issue 13), so
that the table stays the one place the numbers are written.

    .venv/bin/python benchmarks/recipes_plot.py --out docs/evidence/recipes_svamp.png

Reads the table under "## Does it pay off for the default student?" (columns: recipe, seeds, dss - standard,
over test items, over seeds, McNemar p): per row the mean difference, its 95% interval over test items (thick)
and over seeds (thin), where the table gives them. Analysis for issue 13, not part of the package.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from stepdistill.experiments.plots import pyplot, save_figure

HEADER = "| recipe | seeds | dss - standard (points) | over test items | over seeds | McNemar p |"
INTERVAL = re.compile(r"\[([+-]?\d+(?:\.\d+)?), ([+-]?\d+(?:\.\d+)?)\]")


@dataclass(frozen=True)
class Row:
    recipe: str
    seeds: int
    difference: float
    items: tuple[float, float] | None  # 95% paired bootstrap over test items
    over_seeds: tuple[float, float] | None  # 95% t interval over seeds


def plain(cell: str) -> str:
    return cell.replace("**", "").strip()


def interval(cell: str) -> tuple[float, float] | None:
    match = INTERVAL.search(plain(cell))
    return (float(match[1]), float(match[2])) if match else None


def read_table(readme: Path) -> list[Row]:
    """The rows of the evidence table; an error names the line that does not parse."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index(HEADER)
    except ValueError:
        raise SystemExit(f"{readme}: no line reads {HEADER!r}") from None
    rows = []
    for number, line in enumerate(lines[start + 2:], start=start + 3):
        if not line.startswith("|"):
            break
        cells = line.strip("|").split("|")
        try:
            rows.append(Row(plain(cells[0]), int(plain(cells[1])), float(plain(cells[2])),
                            interval(cells[3]), interval(cells[4])))
        except (IndexError, ValueError) as error:
            raise SystemExit(f"{readme}:{number}: cannot read this row of the evidence table ({error})") from None
    if not rows:
        raise SystemExit(f"{readme}:{start + 1}: the evidence table has no rows")
    return rows


def draw(rows: list[Row], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(13, 0.42 * len(rows) + 1.4), dpi=110)
    for y, row in enumerate(reversed(rows)):
        if row.over_seeds:
            ax.plot(row.over_seeds, [y, y], color="tab:gray", linewidth=1.2)
        if row.items:
            ax.plot(row.items, [y, y], color="tab:orange", linewidth=4, alpha=0.8)
        ax.plot([row.difference], [y], "o", color="black", markersize=5)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [f"{row.recipe} ({row.seeds} seeds)" for row in reversed(rows)], fontsize=8)
    ax.set_xlabel("dss - standard finetuning, test points (SVAMP unless the row names CQA; SmolLM2-135M unless it names "
                  "another student)")
    ax.set_title("mean over seeds (dot); 95% interval over test items (thick) and over seeds (thin)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--out", type=Path, default=Path("docs/evidence/recipes_svamp.png"))
    args = parser.parse_args()
    rows = read_table(args.readme)
    for row in rows:
        print(f"{row.difference:+6.1f}  items {row.items}  seeds {row.over_seeds}  {row.recipe}")
    print("wrote", draw(rows, args.out))


if __name__ == "__main__":
    main()
