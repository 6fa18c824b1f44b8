"""The report's figures (matplotlib, PNG): accuracy with 95% interval bars, paired differences, curves."""

from __future__ import annotations

import re
from pathlib import Path

from .runs import student_name, task_name
from .selection import checkpoint_curves, loss_curves


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display; the benchmark scripts' plots use it too)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def file_tag(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]+", "_", str(part)).strip("_") for part in parts)


def save_figure(fig, path: Path) -> Path:
    """Lay out, write and close one figure (the benchmark scripts' plots use it too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")  # long axis labels and titles stay inside the image
    pyplot().close(fig)
    return path


def accuracy_plot(series: dict[str, list[tuple[float, float, float, float]]], xlabel: str, title: str, path: Path,
                  teacher: float | None = None, log_x: bool = False) -> Path:
    """Lines of (x, accuracy, 95% low, 95% high) per method; the bars are the 95% Wilson intervals."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, points in sorted(series.items()):
        xs, ys, lows, highs = zip(*sorted(points))
        errors = [[max(0.0, y - low) for y, low in zip(ys, lows)], [max(0.0, high - y) for y, high in zip(ys, highs)]]
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=name)
    if teacher is not None:
        ax.axhline(teacher, color="gray", linestyle="--", label=f"teacher few-shot ({teacher:.1f}%)")
    if log_x:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="test accuracy (%), 95% interval")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def differences_plot(pairs: list[dict], title: str, path: Path) -> Path:
    """Each pair's difference A - B with its 95% paired-bootstrap interval (bars) and, with several seeds, its 95%
    interval over seeds (the wide pale band behind), against the zero line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(pairs) + 1.6), dpi=110)
    labels = [f"{pair['group']}\n{pair['a']} - {pair['b']}" for pair in pairs]
    for position, pair in enumerate(pairs):
        errors = [[max(0.0, pair["difference"] - pair["low"])], [max(0.0, pair["high"] - pair["difference"])]]
        color = {"better": "tab:green", "worse": "tab:red"}.get(pair["verdict"], "tab:gray")
        if pair.get("seed_low") is not None:
            ax.plot([pair["seed_low"], pair["seed_high"]], [position, position], color=color, alpha=0.25,
                    linewidth=7, solid_capstyle="butt")
        ax.errorbar([pair["difference"]], [position], xerr=errors, marker="o", capsize=3, color=color)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(pairs)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("difference in test accuracy (points): 95% paired bootstrap (bars), over seeds (band)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return save_figure(fig, path)


def checkpoint_plot(curves: dict[str, list[tuple]], title: str, path: Path) -> Path:
    """Validation (solid) and test (dashed) accuracy per evaluated checkpoint, mean over seeds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for index, (name, points) in enumerate(sorted(curves.items())):
        epochs, valid, test = zip(*points)
        color = f"C{index}"
        ax.plot(epochs, valid, marker="o", color=color, label=f"{name}: validation")
        ax.plot(epochs, test, marker="x", linestyle="--", color=color, label=f"{name}: test (analysis only)")
    ax.set(xlabel="epoch", ylabel="accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def loss_plot(curves: dict[str, dict[str, list[tuple]]], title: str, path: Path) -> Path:
    """One panel per loss part (label, rationale), a line per method, mean over seeds."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), dpi=110, squeeze=False)
    for ax, (part, by_method) in zip(axes[0], sorted(curves.items())):
        for name, points in sorted(by_method.items()):
            epochs, losses = zip(*points)
            ax.plot(epochs, losses, label=name)
        ax.set(xlabel="epoch", ylabel=part.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def scored_entries(summary: list[dict]) -> list[dict]:
    return [entry for entry in summary if entry["test_mean"] is not None and entry["test_low"] is not None]


def accuracy_series(members: list[dict], x_of) -> dict[str, list[tuple]]:
    """{method name: [(x, mean, 95% low, 95% high), ...]} for `accuracy_plot`."""
    series: dict[str, list[tuple]] = {}
    for entry in members:
        series.setdefault(entry["name"], []).append((x_of(entry), entry["test_mean"], entry["test_low"],
                                                     entry["test_high"]))
    return series


def fraction_figures(summary: list[dict], out: Path, teacher: dict) -> list[Path]:
    """Accuracy vs training fraction per (task, student); left out when a task has only one fraction."""
    made = []
    scored = scored_entries(summary)
    for task, student in sorted({(entry["task"], entry["student"]) for entry in scored}):
        members = [entry for entry in scored if entry["task"] == task and entry["student"] == student]
        if len({entry["fraction"] for entry in members}) < 2:
            continue
        series = accuracy_series(members, lambda entry: entry["fraction"] * 100)
        name = members[0]["student_name"]
        made.append(accuracy_plot(series, "training data used (%)",
                                  f"{members[0]['task_name']}: accuracy vs data size ({name})",
                                  out / f"fraction_{file_tag(members[0]['task_name'], name)}.png", teacher.get(task)))
    return made


def size_figures(summary: list[dict], out: Path, teacher: dict) -> list[Path]:
    """Accuracy vs student size per task at its largest fraction; left out with a single student size."""
    made = []
    scored = scored_entries(summary)
    for task in sorted({entry["task"] for entry in scored}):
        largest = max(entry["fraction"] for entry in scored if entry["task"] == task)
        members = [entry for entry in scored
                   if entry["task"] == task and entry["fraction"] == largest and entry["parameters"]]
        if len({entry["parameters"] for entry in members}) < 2:
            continue
        series = accuracy_series(members, lambda entry: entry["parameters"] / 1e6)
        made.append(accuracy_plot(series, "student parameters (millions)",
                                  f"{members[0]['task_name']}: accuracy vs student size",
                                  out / f"size_{file_tag(members[0]['task_name'])}.png", teacher.get(task), log_x=True))
    return made


def curve_figures(rows: list[dict], records: dict[str, dict], out: Path) -> list[Path]:
    """Per (task, student, fraction): validation/test accuracy per checkpoint and both loss parts, if logged."""
    made = []
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["student"], row["fraction"]), []).append(row)
    for (task, student, fraction), members in sorted(groups.items(), key=lambda item: str(item[0])):
        title = f"{task_name(task)}, {student_name(student)}, fraction {fraction:g} (mean over seeds)"
        tag = file_tag(task_name(task), student_name(student), f"f{fraction:g}")
        checkpoints = {name: points for name, points in checkpoint_curves(members, out / "runs").items() if points}
        if checkpoints:
            made.append(checkpoint_plot(checkpoints, title, out / f"checkpoints_{tag}.png"))
        losses = loss_curves(members, records)
        if losses:
            made.append(loss_plot(losses, title, out / f"losses_{tag}.png"))
    return made


def report_figures(report: dict, rows: list[dict], records: dict[str, dict], out: Path, teacher: dict) -> list[Path]:
    made = fraction_figures(report["results"], out, teacher) + size_figures(report["results"], out, teacher)
    for task in sorted({pair["task"] for pair in report["paired"]}):
        pairs = [pair for pair in report["paired"] if pair["task"] == task]
        made.append(differences_plot(pairs, f"{task_name(task)}: paired differences (A - B)",
                                     out / f"paired_{file_tag(task_name(task))}.png"))
    return made + curve_figures(rows, records, out)
