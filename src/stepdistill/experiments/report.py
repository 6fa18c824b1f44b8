"""`stepdistill report SWEEP_DIR`: the table, the paper-style plots and one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import json
import statistics
from collections import defaultdict
from pathlib import Path

import yaml

from ..errors import DataError
from ..jsonio import iter_jsonl, read_json
from .sweep import gather_results

METHOD_NAMES = {"standard-gold": "standard finetuning", "standard-teacher": "standard distillation",
                "dss-gold": "distilling step-by-step", "dss-teacher": "distilling step-by-step (teacher labels)",
                "single-gold": "single-task (rationale then label)",
                "single-teacher": "single-task, teacher labels"}


def method_name(row: dict) -> str:
    key = f"{row['method']}-{row['labels']}"
    return METHOD_NAMES.get(key, key)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(rows: list[dict]) -> list[dict]:
    """One row per (task, method, labels, student, fraction): test mean and std over seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["method"], r["labels"], r["student"], r["fraction"])].append(r)
    out = []
    for (task, method, labels, student, fraction), runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        tests = [r["test_accuracy"] for r in runs if r["test_accuracy"] is not None]
        valids = [r["valid_accuracy"] for r in runs if r["valid_accuracy"] is not None]
        test_mean, test_std = mean_std(tests) if tests else (None, None)
        out.append({"task": task, "method": method, "labels": labels, "name": method_name(runs[0]),
                    "student": student, "parameters": runs[0].get("student_parameters"), "fraction": fraction,
                    "seeds": len(runs), "test_mean": test_mean, "test_std": test_std,
                    "valid_mean": mean_std(valids)[0] if valids else None,
                    "steps": runs[0].get("steps"), "protocol": runs[0].get("protocol")})
    return out


def markdown_table(summary: list[dict]) -> str:
    lines = ["| task | method | student | fraction | seeds | test accuracy % (mean ± std) | valid % |",
             "|---|---|---|---|---|---|---|"]
    for s in summary:
        test = "-" if s["test_mean"] is None else f"{s['test_mean']:.2f} ± {s['test_std']:.2f}"
        valid = "-" if s["valid_mean"] is None else f"{s['valid_mean']:.2f}"
        lines.append(f"| {s['task']} | {s['name']} | {Path(s['student']).name} | {s['fraction']:g} | {s['seeds']} "
                     f"| {test} | {valid} |")
    return "\n".join(lines)


def _plot(series: dict[str, list[tuple[float, float, float]]], xlabel: str, title: str, path: Path,
          teacher: float | None = None, log_x: bool = False) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, points in sorted(series.items()):
        points = sorted(points)
        xs, ys, errs = zip(*points)
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=name)
    if teacher is not None:
        ax.axhline(teacher, color="gray", linestyle="--", label=f"teacher few-shot ({teacher:.1f}%)")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plots(summary: list[dict], out: Path, teacher_accuracy: dict) -> list[Path]:
    """Accuracy against training fraction (per task and student) and against student size (per task)."""
    made = []
    scored = [s for s in summary if s["test_mean"] is not None]
    for task in sorted({s["task"] for s in scored}):
        tag = task.replace(":", "_").replace("/", "_")
        for student in sorted({s["student"] for s in scored if s["task"] == task}):
            series: dict[str, list] = defaultdict(list)
            for s in scored:
                if s["task"] == task and s["student"] == student:
                    series[s["name"]].append((s["fraction"] * 100, s["test_mean"], s["test_std"]))
            name = Path(student).name
            made.append(_plot(series, "training data used (%)", f"{task}: accuracy vs data size ({name})",
                              out / f"fraction_{tag}_{name.replace('.', '_')}.png", teacher_accuracy.get(task)))
        largest = max(s["fraction"] for s in scored if s["task"] == task)
        full = [s for s in scored if s["task"] == task and s["fraction"] == largest]
        series = defaultdict(list)
        for s in full:
            if s["parameters"]:
                series[s["name"]].append((s["parameters"] / 1e6, s["test_mean"], s["test_std"]))
        if series:
            made.append(_plot(series, "student parameters (millions)", f"{task}: accuracy vs student size",
                              out / f"size_{tag}.png", teacher_accuracy.get(task), log_x=True))
    return made


def example_predictions(out: Path, limit: int = 5) -> list[dict]:
    """A few test inputs with each method's answer (from the first seed and the largest fraction)."""
    by_method: dict[str, dict[str, dict]] = {}
    for run_dir in sorted((out / "runs").glob("*")):
        preds = run_dir / "predictions_test.jsonl"
        if not preds.is_file() or not (run_dir / "run.json").is_file():
            continue
        run = read_json(run_dir / "run.json")
        name = method_name(run)
        if name in by_method:
            continue
        by_method[name] = {row["id"]: row for _, row in iter_jsonl(preds)}
    if not by_method:
        return []
    ids = list(next(iter(by_method.values())))[:limit]
    examples = []
    for ex_id in ids:
        first = next(iter(by_method.values()))[ex_id]
        examples.append({"input": first["input"], "gold": first.get("gold"),
                         "answers": {m: (rows[ex_id]["prediction"], rows[ex_id].get("correct"))
                                     for m, rows in by_method.items() if ex_id in rows}})
    return examples


def training_rationales(out: Path, limit: int = 3) -> list[dict]:
    """A few (input, label, rationale) the dss students were trained on, from the first dss run's task."""
    for run_dir in sorted((out / "runs").glob("*")):
        if not (run_dir / "run.json").is_file():
            continue
        run = read_json(run_dir / "run.json")
        if run.get("method") != "dss":
            continue
        try:
            from ..student.data import training_examples
            from ..tasks import get_task
            s = run["settings"]
            examples, _ = training_examples(get_task(s["task"], s.get("data_dir")), s["labels"], s["fraction"],
                                            s["seed"], s.get("rationales"))
        except DataError:
            return []
        return [{"input": t.example.input, "label": t.label, "rationale": t.rationale}
                for t in examples if t.rationale][:limit]
    return []


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def write_html(out: Path, table_md: str, summary: list[dict], figures: list[Path], config_text: str,
               examples: list[dict], rationales: list[dict]) -> Path:
    esc = html.escape
    protocols = sorted({s["protocol"] for s in summary if s.get("protocol")})
    rows = "".join(
        f"<tr><td>{esc(s['task'])}</td><td>{esc(s['name'])}</td><td>{esc(Path(s['student']).name)}</td>"
        f"<td>{s['fraction']:g}</td><td>{s['seeds']}</td><td>"
        + ("-" if s["test_mean"] is None else f"{s['test_mean']:.2f} ± {s['test_std']:.2f}")
        + "</td><td>" + ("-" if s["valid_mean"] is None else f"{s['valid_mean']:.2f}") + "</td></tr>"
        for s in summary)
    ex_html = "".join(
        f"<div class=ex><pre>{esc(e['input'])}</pre><p>gold: <code>{esc(str(e['gold']))}</code></p><ul>"
        + "".join(f"<li>{esc(m)}: <code>{esc(str(p))}</code> {'✓' if ok else '✗'}</li>" for m, (p, ok) in e["answers"].items())
        + "</ul></div>" for e in examples)
    rat_html = "".join(f"<div class=ex><pre>{esc(r['input'])}</pre><p><b>rationale:</b> {esc(r['rationale'])}</p>"
                       f"<p><b>label:</b> <code>{esc(r['label'])}</code></p></div>" for r in rationales)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>stepdistill report</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}img{{max-width:48%;margin:4px}}.ex{{border-left:3px solid #ddd;
padding-left:1em;margin:1em 0}}pre{{white-space:pre-wrap}}</style></head><body>
<h1>Distilling step-by-step: results</h1>
<p>Test accuracy of the checkpoint chosen on validation accuracy (test evaluated once per run), mean ± standard
deviation over seeds.</p>
<h2>Data protocol</h2><ul>{''.join(f'<li>{esc(p)}</li>' for p in protocols)}</ul>
<h2>Results</h2><table><tr><th>task</th><th>method</th><th>student</th><th>fraction</th><th>seeds</th>
<th>test % (mean ± std)</th><th>valid %</th></tr>{rows}</table>
<h2>Plots</h2>{''.join(_img(f) for f in figures)}
<h2>Example test predictions</h2>{ex_html or '<p>none</p>'}
<h2>Rationales the dss student was trained on</h2>{rat_html or '<p>none</p>'}
<h2>Settings</h2><pre>{esc(config_text)}</pre>
<details><summary>Markdown table</summary><pre>{esc(table_md)}</pre></details>
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_report(sweep_dir: str | Path) -> dict[str, Path]:
    out = Path(sweep_dir)
    if not (out / "runs").is_dir():
        raise DataError(f"{out}: no runs/ folder (expected the output folder of `stepdistill sweep`)")
    rows = gather_results(out)
    if not rows:
        raise DataError(f"{out}: no finished runs yet")
    config_text = (out / "config.yaml").read_text() if (out / "config.yaml").is_file() else ""
    teacher = (yaml.safe_load(config_text) or {}).get("teacher_accuracy", {}) if config_text else {}
    summary = summarize(rows)
    table = markdown_table(summary)
    figures = plots(summary, out, teacher)
    protocols = sorted({s["protocol"] for s in summary if s.get("protocol")})
    md = ["# Distilling step-by-step: results", "",
          "Test accuracy (%) of the checkpoint chosen on validation accuracy; test evaluated once per run.", "",
          "Data protocol: " + "; ".join(protocols), "", table, ""]
    serve = (yaml.safe_load(config_text) or {}).get("serve") if config_text else None
    if serve:  # optional, when the config asks: the served student's accuracy and latency (deploy/report_row.py)
        from ..deploy.report_row import served_table
        md += ["## The served student (llama.cpp, label-only)", "", served_table(out, serve), ""]
    md += [f"![{f.stem}]({f.name})" for f in figures]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    page = write_html(out, table, summary, figures, config_text, example_predictions(out), training_rationales(out))
    return {"markdown": out / "report.md", "html": page, **{f.stem: f for f in figures}}
