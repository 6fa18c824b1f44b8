"""Does a dss student learn to reason? Scores the rationales it writes for SVAMP test inputs.

    stepdistill eval RUN --split test --with-rationale --limit 100 --out RUN_rationales.jsonl
    PYTHONPATH=src .venv/bin/python benchmarks/rationale_quality.py RUN_rationales.jsonl [...]

A SVAMP rationale ends with its arithmetic ("84 / 2 = 42."), so its last number is its answer; it is right
when that equals the gold equation's value. Next to it: the student's label accuracy on the same items, and
how often label and rationale agree with each other, so one sees whether the rationale task taught the
student reasoning that its labels use. Analysis for issue 13, not part of the package.
"""

from __future__ import annotations

import json
import sys

from stepdistill.scoring import EvalError, evaluate_arithmetic, numeric_match


def gold_value(gold: str) -> str | None:
    try:
        return str(evaluate_arithmetic(gold))
    except EvalError:
        return None


def label_value(label: str) -> str | None:
    """The value of the student's equation label, or None when it does not evaluate."""
    try:
        return str(evaluate_arithmetic(label or ""))
    except (EvalError, OverflowError):
        return None


def score_file(path: str) -> dict:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    rationale_right = [numeric_match(row["rationale"], gold_value(row["gold"])) for row in rows]
    label_right = [bool(row["correct"]) for row in rows]
    agree = [numeric_match(row["rationale"], label_value(row["prediction"])) for row in rows]
    both = sum(r and lab for r, lab in zip(rationale_right, label_right))
    return {"file": path, "n": len(rows), "label_right": sum(label_right), "rationale_right": sum(rationale_right),
            "both_right": both, "rationale_agrees_with_label": sum(agree),
            "label_right_when_rationale_right": round(both / max(sum(rationale_right), 1), 3),
            "label_right_when_rationale_wrong": round((sum(label_right) - both)
                                                      / max(len(rows) - sum(rationale_right), 1), 3)}


def main() -> None:
    print("| predictions | items | label right | rationale right | both | rationale's answer = label's value |")
    print("|---|---|---|---|---|---|")
    for path in sys.argv[1:]:
        result = score_file(path)
        print(json.dumps(result), file=sys.stderr)
        print(f"| {path} | {result['n']} | {result['label_right']} | {result['rationale_right']} | "
              f"{result['both_right']} | {result['rationale_agrees_with_label']} |")


if __name__ == "__main__":
    main()
