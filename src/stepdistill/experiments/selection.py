"""Selection noise and training curves, from the optional analysis files of a sweep's runs.

`train --test-each-eval` writes checkpoint_scores.jsonl (step, epoch, valid_accuracy, test_accuracy of every
evaluated checkpoint). The best test score among checkpoints (the oracle) is used here only to measure what
choosing on a small validation split costs each method; checkpoints are always chosen on validation.
Loss curves come from run.json's log_history (label_loss and rationale_loss logged apart).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from ..jsonio import iter_jsonl
from .runs import CHECKPOINT_SCORES

LOSS_PARTS = ("label_loss", "rationale_loss")


def checkpoint_scores(run_dir: Path) -> list[dict]:
    """The run's per-checkpoint scores by step (a resumed run may repeat a step: the last line wins)."""
    path = run_dir / CHECKPOINT_SCORES
    if not path.is_file():
        return []
    by_step = {row["step"]: row for _, row in iter_jsonl(path)}
    return [by_step[step] for step in sorted(by_step)]


def last_checkpoint_correctness(run_dir: Path, items) -> dict[str, bool] | None:
    """{test item id: answered correctly} for `items` at the run's last evaluated checkpoint (a fixed budget, no
    selection): what pairs two runs without checkpoint choice. None for runs that did not record the items
    (made before checkpoint_scores.jsonl kept `test_right`)."""
    scores = checkpoint_scores(run_dir)
    if not scores or "test_right" not in scores[-1]:
        return None
    right = {str(item) for item in scores[-1]["test_right"]}
    return {item: item in right for item in items}


def selection_outcome(scores: list[dict], best_step: int | None, chosen_test: float | None) -> dict | None:
    """Test accuracy at the validation-chosen checkpoint, at the best checkpoint on test, and at the last."""
    tested = [row for row in scores if row.get("test_accuracy") is not None]
    if not tested:
        return None
    at_best = [row["test_accuracy"] for row in tested if row["step"] == best_step]
    chosen = at_best[-1] if at_best else chosen_test
    if chosen is None:
        return None
    return {"chosen": chosen, "oracle": max(row["test_accuracy"] for row in tested),
            "last": tested[-1]["test_accuracy"]}


def selection_table(rows: list[dict], runs_dir: Path) -> list[dict]:
    """One row per (task, method, student, fraction): means over the seeds that hold checkpoint scores."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        outcome = selection_outcome(checkpoint_scores(runs_dir / row["run"]), row.get("best_step"),
                                    row.get("test_accuracy"))
        if outcome:
            groups[(row["task"], row["name"], row["student"], row["fraction"])].append(outcome)
    table = []
    for (task, name, student, fraction), outcomes in sorted(groups.items(), key=lambda item: str(item[0])):
        means = {key: statistics.fmean(outcome[key] for outcome in outcomes) for key in ("chosen", "oracle", "last")}
        table.append({"task": task, "name": name, "student": student, "fraction": fraction, "seeds": len(outcomes),
                      "chosen_test": means["chosen"], "oracle_test": means["oracle"], "last_test": means["last"],
                      "selection_cost": means["oracle"] - means["chosen"]})
    return table


def mean_by_step(series_per_seed: list[dict[int, tuple]]) -> list[tuple]:
    """Average (epoch, value, ...) tuples over seeds, keeping only the steps every seed has."""
    if not series_per_seed:
        return []
    steps = set.intersection(*(set(series) for series in series_per_seed))
    return [tuple(statistics.fmean(series[step][i] for series in series_per_seed)
                  for i in range(len(series_per_seed[0][step]))) for step in sorted(steps)]


def checkpoint_curves(rows: list[dict], runs_dir: Path) -> dict[str, list[tuple]]:
    """{method name: [(epoch, mean valid %, mean test %), ...]} over seeds, for rows of one group."""
    per_method: dict[str, list[dict[int, tuple]]] = defaultdict(list)
    for row in rows:
        scores = [score for score in checkpoint_scores(runs_dir / row["run"]) if score.get("test_accuracy") is not None]
        if scores:
            per_method[row["name"]].append({score["step"]: (score["epoch"], score["valid_accuracy"],
                                                            score["test_accuracy"]) for score in scores})
    return {name: mean_by_step(series) for name, series in per_method.items()}


def loss_curves(rows: list[dict], records: dict[str, dict]) -> dict[str, dict[str, list[tuple]]]:
    """{loss part: {method name: [(epoch, mean loss), ...]}} from the runs' log_history, mean over seeds."""
    curves: dict[str, dict[str, list[tuple]]] = {}
    for part in LOSS_PARTS:
        per_method: dict[str, list[dict[int, tuple]]] = defaultdict(list)
        for row in rows:
            history = records.get(row["run"], {}).get("log_history", [])
            series = {entry["step"]: (entry.get("epoch", 0.0), entry[part]) for entry in history if part in entry}
            if series:
                per_method[row["name"]].append(series)
        curves[part] = {name: mean_by_step(series) for name, series in per_method.items()}
    return {part: by_method for part, by_method in curves.items() if by_method}
