"""`stepdistill report SWEEP_DIR`: tables with 95% intervals, paired comparisons, plots and one HTML page.

Reads results.jsonl (written by the sweep, never rewritten here) and each run folder's predictions and
optional analysis files; writes report.md, report.html, summary.json and the PNG figures.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import yaml

from ..errors import DataError
from ..jsonio import iter_jsonl, read_json
from .compare import compare_arms, pairs_table, seed_noise_lines, sweep_arms
from .paired import wilson_interval
from .plots import report_figures
from .runs import RATIONALES_SAMPLE, RUN_RECORD, TEST_PREDICTIONS, RunScores, method_name, student_name, task_name
from .selection import selection_table
from .sweep import read_results

GROUP_KEYS = ("task", "student", "fraction")  # runs in one group answered the same test items, seed by seed
INTRODUCTION = ("Test accuracy (%) of the checkpoint chosen on validation accuracy; test evaluated once per run. "
                "95% CI: Wilson score interval on the mean accuracy with n = the test items of one seed "
                "(seeds re-score the same items).")
PAIRED_EXPLANATION = ("Runs with the same task, student, fraction and seed answered the same test items, so methods "
                      "are compared item by item. A - B: mean over seeds of the per-seed difference in accuracy "
                      "points, with a 95% percentile bootstrap interval (10,000 resamples of test items within each "
                      "seed; it holds the trained runs fixed). Over seeds: a 95% Student t interval of the per-seed "
                      "differences, which also moves with training noise (two or more seeds). McNemar: exact "
                      "two-sided binomial test on the discordant items pooled over seeds. \"better\"/\"worse\" only "
                      "when the item interval excludes 0 and the seed interval agrees; \"inconsistent over seeds\" "
                      "when only the item interval does; otherwise the smallest difference this test set detects "
                      "with 80% power at the 5% level.")


def group_label(row: dict) -> str:
    return f"{task_name(row['task'])} / {student_name(row['student'])} / {row['fraction']:g}"


def accuracy_summary(tests: list[float], items: int | None) -> dict:
    """Mean over seeds, the spread over seeds (None for one seed), and the 95% Wilson interval."""
    if not tests:
        return {"test_mean": None, "test_std": None, "test_low": None, "test_high": None}
    mean = statistics.fmean(tests)
    low, high = wilson_interval(mean / 100, items) if items else (None, None)
    return {"test_mean": mean, "test_std": statistics.stdev(tests) if len(tests) > 1 else None,
            "test_low": low, "test_high": high}


def summarize(rows: list[dict]) -> list[dict]:
    """One row per (task, method, labels, student, fraction): test accuracy over seeds with its interval."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["task"], row["method"], row["labels"], row["student"], row["fraction"])].append(row)
    summary = []
    for (task, method, labels, student, fraction), runs in sorted(groups.items(), key=lambda item: str(item[0])):
        tests = [run["test_accuracy"] for run in runs if run["test_accuracy"] is not None]
        valids = [run["valid_accuracy"] for run in runs if run["valid_accuracy"] is not None]
        summary.append({"task": task, "task_name": task_name(task), "method": method, "labels": labels,
                        "name": method_name(runs[0]), "student": student, "student_name": student_name(student),
                        "parameters": runs[0].get("student_parameters"), "fraction": fraction,
                        "seeds": len(runs), "test_items": runs[0].get("test_items"),
                        **accuracy_summary(tests, runs[0].get("test_items")),
                        "valid_mean": statistics.fmean(valids) if valids else None,
                        "steps": runs[0].get("steps"), "protocol": runs[0].get("protocol")})
    return summary


def format_accuracy(entry: dict) -> tuple[str, str]:
    """('mean ± std' or just 'mean' for one seed, '[low, high]')."""
    if entry["test_mean"] is None:
        return "-", "-"
    spread = f" ± {entry['test_std']:.2f}" if entry["test_std"] is not None else ""
    interval = "-" if entry["test_low"] is None else f"[{entry['test_low']:.1f}, {entry['test_high']:.1f}]"
    return f"{entry['test_mean']:.2f}{spread}", interval


def markdown_table(summary: list[dict]) -> str:
    lines = ["| task | method | student | fraction | seeds | test accuracy % (mean ± std over seeds) "
             "| 95% CI (Wilson) | valid % |", "|---|---|---|---|---|---|---|---|"]
    for entry in summary:
        test, interval = format_accuracy(entry)
        valid = "-" if entry["valid_mean"] is None else f"{entry['valid_mean']:.2f}"
        lines.append(f"| {entry['task_name']} | {entry['name']} | {entry['student_name']} | {entry['fraction']:g} "
                     f"| {entry['seeds']} | {test} | {interval} | {valid} |")
    return "\n".join(lines)


def paired_results(rows: list[dict], runs_dir: Path) -> list[dict]:
    """Every pair of methods within each (task, student, fraction), paired on seeds and test items."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row.get("test_accuracy") is not None:
            groups[tuple(row[key] for key in GROUP_KEYS)].append(row)
    results = []
    for key, members in sorted(groups.items(), key=lambda item: str(item[0])):
        arms = sweep_arms([RunScores.load(runs_dir / row["run"]) for row in members])
        if len(arms) < 2:
            continue
        label = group_label(members[0])
        for pair in compare_arms(arms).pairs:
            results.append({"group": label, **dict(zip(GROUP_KEYS, key)), **pair.as_dict()})
    return results


def example_predictions(rows: list[dict], runs_dir: Path, limit: int = 5) -> list[dict]:
    """A few test inputs with each method's answer (the first run of each method in the results)."""
    by_method: dict[str, dict[str, dict]] = {}
    for row in rows:
        path = runs_dir / row["run"] / TEST_PREDICTIONS
        if row["name"] not in by_method and path.is_file():
            by_method[row["name"]] = {item["id"]: item for _, item in iter_jsonl(path)}
    if not by_method:
        return []
    first = next(iter(by_method.values()))
    return [{"input": first[item]["input"], "gold": first[item].get("gold"),
             "answers": {name: (answers[item]["prediction"], answers[item].get("correct"))
                         for name, answers in by_method.items() if item in answers}}
            for item in list(first)[:limit]]


def training_rationales(rows: list[dict], runs_dir: Path, limit: int = 3) -> list[dict]:
    """A few (input, rationale, label) training rows: the teacher's own from the first run that stored some, then
    hinted ones (extract --rationalize: the teacher was given the gold label) from the first run that trained on any."""
    paths = [runs_dir / row["run"] / RATIONALES_SAMPLE for row in rows]
    samples = [[item for _, item in iter_jsonl(path)] for path in paths if path.is_file()]
    shown = []
    for hinted in (False, True):
        rows_of_kind = ([item for item in sample if bool(item.get("hinted")) == hinted] for sample in samples)
        shown += next((found for found in rows_of_kind if found), [])[:limit]
    return [{"input": item.get("input", ""), "rationale": item.get("rationale", ""), "label": item.get("label", ""),
             "hinted": bool(item.get("hinted"))} for item in shown]


def run_records(rows: list[dict], runs_dir: Path) -> dict[str, dict]:
    return {row["run"]: read_json(runs_dir / row["run"] / RUN_RECORD) for row in rows
            if (runs_dir / row["run"] / RUN_RECORD).is_file()}


def with_test_items(row: dict, record: dict) -> dict:
    """results.jsonl of an older sweep has no test_items: take it from the run's record."""
    if row.get("test_items") is None:
        return {**row, "test_items": (record.get("sizes") or {}).get("test")}
    return row


def load_sweep(out: Path) -> tuple[list[dict], str, dict]:
    """The sweep's result rows (each with its method's display name), its config text and teacher scores."""
    if not (out / "runs").is_dir():
        raise DataError(f"{out}: no runs/ folder (expected the output folder of `stepdistill sweep`)")
    rows = [{**row, "name": method_name(row)} for row in read_results(out)]
    if not rows:
        raise DataError(f"{out}: no finished runs yet")
    config_text = (out / "config.yaml").read_text() if (out / "config.yaml").is_file() else ""
    teacher = (yaml.safe_load(config_text) or {}).get("teacher_accuracy", {}) if config_text else {}
    return rows, config_text, teacher


def selection_markdown(selection: list[dict]) -> list[str]:
    if not selection:
        return []
    lines = ["## Selection noise (analysis only)", "",
             "Mean test accuracy % over seeds at the checkpoint chosen on validation, at the best checkpoint on "
             "test (an oracle, only to measure what selection costs) and at the last checkpoint.", "",
             "| task | method | student | fraction | seeds | chosen on valid | oracle (best on test) | last "
             "| selection cost |", "|---|---|---|---|---|---|---|---|---|"]
    for entry in selection:
        lines.append(f"| {task_name(entry['task'])} | {entry['name']} | {student_name(entry['student'])} "
                     f"| {entry['fraction']:g} | {entry['seeds']} | {entry['chosen_test']:.2f} "
                     f"| {entry['oracle_test']:.2f} | {entry['last_test']:.2f} | {entry['selection_cost']:.2f} |")
    return lines + [""]


def served_section(out: Path, config_text: str | None) -> list[str]:
    """Optional, when the sweep config asks (`serve:`): the served student's accuracy and latency."""
    serve = (yaml.safe_load(config_text) or {}).get("serve") if config_text else None
    if not serve:
        return []
    from ..deploy.report_row import served_table
    return ["## The served student (llama.cpp, label-only)", "", served_table(out, serve), ""]


def write_markdown(out: Path, report: dict, figures: list[Path], served: list[str]) -> Path:
    protocols = sorted({entry["protocol"] for entry in report["results"] if entry.get("protocol")})
    lines = ["# Distilling step-by-step: results", "", INTRODUCTION, "",
             "Data protocol: " + "; ".join(protocols), "", markdown_table(report["results"]), ""]
    if report["paired"]:
        lines += ["## Paired comparisons", "", PAIRED_EXPLANATION, ""]
        for group in dict.fromkeys(pair["group"] for pair in report["paired"]):
            members = [pair for pair in report["paired"] if pair["group"] == group]
            noise = seed_noise_lines(members)
            lines += [f"### {group}", "", *pairs_table(members), "", *([*noise, ""] if noise else [])]
    lines += selection_markdown(report["selection"]) + served
    lines += [f"![{figure.stem}]({figure.name})" for figure in figures]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_report(sweep_dir: str | Path) -> dict[str, Path]:
    from .webpage import write_html  # imports this module's formatting

    out = Path(sweep_dir)
    rows, config_text, teacher = load_sweep(out)
    runs_dir = out / "runs"
    records = run_records(rows, runs_dir)
    rows = [with_test_items(row, records.get(row["run"], {})) for row in rows]
    report = {"results": summarize(rows), "paired": paired_results(rows, runs_dir),
              "selection": selection_table(rows, runs_dir)}
    figures = report_figures(report, rows, records, out, teacher)
    markdown = write_markdown(out, report, figures, served_section(out, config_text))
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    page = write_html(out, report, figures, config_text, example_predictions(rows, runs_dir),
                      training_rationales(rows, runs_dir))
    return {"markdown": markdown, "html": page, "summary": out / "summary.json", **{f.stem: f for f in figures}}

