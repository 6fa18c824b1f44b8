"""The extraction's output: one row per input (and sample), which rows are kept, and reading it back.

DIR/rationales.jsonl rows:
    {"id", "input", "label", "rationale", "teacher_label", "completion", "reasoning",
     "parse_error", "correct", "kept", "sample", "request_error"}
parse_error is null when the completion parsed; correct is null without a gold label; request_error says
why there is no completion at all (the request failed, or the token budget held it back).
DIR/manifest.json is written last: a folder without it holds an unfinished extraction.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import DataError
from ..jsonio import iter_jsonl, read_json
from .backends import Completion

KEEP_CHOICES = ("all", "parsed", "correct")
RATIONALES_FILE = "rationales.jsonl"
MANIFEST_FILE = "manifest.json"

FAILED, NOT_SENT = "request failed", "not sent (token budget reached)"
UNPARSABLE, WRONG, MINORITY = "unparsable", "teacher label differs from gold", "not the majority answer"


def make_row(task, example, sample: int, answer: Completion | None, request_error: str | None) -> dict:
    row = {"id": example.id, "input": example.input, "label": example.label, "rationale": None,
           "teacher_label": None, "completion": None, "reasoning": None, "parse_error": None,
           "correct": None, "kept": False, "sample": sample, "request_error": request_error}
    if answer is None:
        row["parse_error"] = "no completion"
        return row
    parsed = task.parse(answer.text)
    row.update(completion=answer.text, reasoning=answer.reasoning, teacher_label=parsed.label,
               rationale=parsed.rationale if parsed.ok else None, parse_error=parsed.error)
    if example.label is not None:
        row["correct"] = bool(parsed.ok and task.score(parsed.label, example.label))
    return row


def majority_label(task, labels: list[str]) -> str | None:
    """The most frequent label, labels that score as equal counted together (SVAMP: by value);
    a tie goes to the label seen first."""
    groups: list[list[str]] = []
    for label in labels:
        for group in groups:
            if task.score(label, group[0]):
                group.append(label)
                break
        else:
            groups.append([label])
    return max(groups, key=len)[0] if groups else None


def mark_kept(task, rows: list[dict], keep: str) -> list[str | None]:
    """Set row["kept"] for one input's rows (one per sample); return why each dropped row was dropped.
    all: every completion; parsed: parsed ones, and with several samples those agreeing with the
    majority; correct: parsed ones whose label matches gold."""
    parsed = [r["teacher_label"] for r in rows if r["completion"] is not None and r["parse_error"] is None]
    majority = majority_label(task, parsed) if keep == "parsed" and len(rows) > 1 else None
    reasons: list[str | None] = []
    for row in rows:
        if row["completion"] is None:
            reason = NOT_SENT if row["request_error"] == NOT_SENT else FAILED
        elif keep == "all":
            reason = None
        elif row["parse_error"] is not None:
            reason = UNPARSABLE
        elif keep == "correct" and not row["correct"]:
            reason = WRONG
        elif majority is not None and not task.score(row["teacher_label"], majority):
            reason = MINORITY
        else:
            reason = None
        row["kept"] = reason is None
        reasons.append(reason)
    return reasons


class Tally:
    """Counts for the manifest, row by row."""

    def __init__(self):
        self.rows = self.answered = self.parsed = self.kept = self.with_gold = self.correct = 0
        self.dropped: Counter = Counter()
        self.parse_errors: Counter = Counter()

    def add(self, row: dict, reason: str | None) -> None:
        self.rows += 1
        if row["completion"] is not None:
            self.answered += 1
            if row["parse_error"] is None:
                self.parsed += 1
            else:
                self.parse_errors[row["parse_error"]] += 1
            if row["correct"] is not None:
                self.with_gold += 1
                self.correct += bool(row["correct"])
        self.kept += row["kept"]
        if reason:
            self.dropped[reason] += 1

    def summary(self) -> dict:
        return {"rows": self.rows, "answered": self.answered, "parsed": self.parsed,
                "unparsable": self.answered - self.parsed, "kept": self.kept,
                "dropped": dict(self.dropped), "parse_errors": dict(self.parse_errors.most_common(10)),
                "teacher_accuracy": round(100.0 * self.correct / self.with_gold, 2) if self.with_gold else None}


def read_rationales(out_dir: str | Path, all_samples: bool = False) -> dict:
    """{id: row} of the kept rows of an extraction folder, the first kept sample of each input
    ({id: [rows]} with all_samples=True). Refuses a folder whose extraction did not finish."""
    out_dir = Path(out_dir)
    path = out_dir / RATIONALES_FILE
    if not (out_dir / MANIFEST_FILE).is_file():
        raise DataError(f"{out_dir}: no {MANIFEST_FILE}, so the extraction did not finish; "
                        "run the same `stepdistill extract` command again to resume it")
    manifest = read_json(out_dir / MANIFEST_FILE)
    if not isinstance(manifest, dict):
        raise DataError(f"{out_dir / MANIFEST_FILE}: expected a JSON object")
    found: dict = {}
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        for name in ("id", "kept", "rationale", "teacher_label"):
            if name not in row:
                raise DataError(f"{where}: missing field '{name}'")
        if row["kept"] is not True:
            continue
        if not isinstance(row["rationale"], str) and manifest.get("keep") != "all":
            raise DataError(f"{where}: kept row without a rationale")
        if all_samples:
            found.setdefault(str(row["id"]), []).append(row)
        else:
            found.setdefault(str(row["id"]), row)
    return found
