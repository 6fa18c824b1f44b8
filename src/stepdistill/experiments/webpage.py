"""report.html: one self-contained page (figures inlined), rendered from templates/report.html.j2.

The template is autoescaped, so run names, predictions and rationales are always shown as text.
"""

from __future__ import annotations

import base64
from pathlib import Path

from .paired import describe_verdict
from .report import INTRODUCTION, PAIRED_EXPLANATION, format_accuracy
from .runs import student_name, task_name

TEMPLATE = "report.html.j2"


def render(context: dict) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    environment = Environment(loader=PackageLoader("stepdistill.experiments", "templates"),
                              autoescape=select_autoescape(default=True), undefined=StrictUndefined)
    return environment.get_template(TEMPLATE).render(**context)


def _result_cells(entry: dict) -> dict:
    test, interval = format_accuracy(entry)
    valid = "-" if entry["valid_mean"] is None else f"{entry['valid_mean']:.2f}"
    return {**entry, "test_text": test, "interval_text": interval, "valid_text": valid}


def write_html(out: Path, report: dict, figures: list[Path], config_text: str, examples: list[dict],
               rationales: list[dict]) -> Path:
    context = {
        "introduction": INTRODUCTION, "paired_explanation": PAIRED_EXPLANATION,
        "protocols": sorted({entry["protocol"] for entry in report["results"] if entry.get("protocol")}),
        "results": [_result_cells(entry) for entry in report["results"]],
        "paired": [{**pair, "verdict_text": describe_verdict(pair["verdict"], pair["detectable"],
                                                                pair.get("seed_detectable"))}
                   for pair in report["paired"]],
        "selection": [{**entry, "task_name": task_name(entry["task"]), "student_name": student_name(entry["student"])}
                      for entry in report["selection"]],
        "figures": [{"name": figure.name, "data": base64.b64encode(figure.read_bytes()).decode()}
                    for figure in figures],
        "examples": examples, "rationales": rationales, "config_text": config_text,
    }
    path = out / "report.html"
    path.write_text(render(context), encoding="utf-8")
    return path
