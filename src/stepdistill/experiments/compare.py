"""Paired comparison of run folders: `stepdistill compare RUN_A RUN_B ...` and the report's paired section.

Runs are grouped into arms (one configuration, several seeds). Two arms are paired seed by seed, each pair
scored on the same test items; the statistics are in paired.py.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError
from .paired import (AccuracyInterval, PairedComparison, SeedPair, accuracy_interval, compare, describe_verdict,
                     format_seed_interval, seeds_needed)
from .runs import RunScores, aligned, method_name

# settings that never make two runs different configurations
BOOKKEEPING = {"seed", "out", "resume", "overwrite", "progress", "data_dir", "eval_batch_size", "logging_steps",
               "save_total_limit", "test_each_eval", "activation_checkpointing"}  # the last: same maths, less memory
METHOD_ORDER = {"dss": 0, "single": 1, "standard": 2}  # pairs read "dss - standard", not the reverse


@dataclass
class Comparison:
    """Accuracy per arm and the paired difference for every pair of arms."""
    accuracy: dict[str, AccuracyInterval] = field(default_factory=dict)
    pairs: list[PairedComparison] = field(default_factory=list)
    runs: dict[str, list[str]] = field(default_factory=dict)  # arm -> its run folders, in seed order

    def as_dict(self) -> dict:
        return {"accuracy": [{"arm": name, **asdict(interval), "runs": self.runs.get(name, [])}
                             for name, interval in self.accuracy.items()],
                "pairs": [pair.as_dict() for pair in self.pairs]}


def seed_pairs(runs_a: list[RunScores], runs_b: list[RunScores]) -> list[SeedPair]:
    """Pair the two arms' runs by seed; two single runs pair even when their seeds differ."""
    by_seed_b = {run.seed: run for run in runs_b}
    matched = [(run, by_seed_b[run.seed]) for run in runs_a if run.seed in by_seed_b]
    if not matched and len(runs_a) == len(runs_b) == 1:
        matched = [(runs_a[0], runs_b[0])]
    if not matched:
        raise DataError(f"no common seed between {', '.join(str(r.folder) for r in runs_a)} and "
                        f"{', '.join(str(r.folder) for r in runs_b)}")
    return [SeedPair(run_a.seed, *aligned(run_a, run_b)) for run_a, run_b in matched]


def compare_arms(arms: dict[str, list[RunScores]]) -> Comparison:
    """Accuracy of each arm, and every pair of arms in the order given (A - B for A listed first)."""
    result = Comparison()
    for name, runs in arms.items():
        result.accuracy[name] = accuracy_interval([list(run.correct.values()) for run in runs])
        result.runs[name] = [str(run.folder) for run in runs]
    for (name_a, runs_a), (name_b, runs_b) in itertools.combinations(arms.items(), 2):
        result.pairs.append(compare(name_a, name_b, seed_pairs(runs_a, runs_b)))
    return result


# Settings that only the two-task loss reads: standard finetuning and `single` train the label task alone, so
# two standard runs that differ only here trained the same way (one arm, and no "alpha=" in their name).
DSS_ONLY = ("alpha", "alpha_schedule")
NOT_USED = "(not used by this method)"


def run_settings(run: RunScores) -> dict:
    """A run's train settings, with the defaults of this version for settings added after the run was made
    (an older run without `hinted` trained as `hinted=include` does now, so the two are one configuration)."""
    from ..student.runfile import settings_of

    settings = dataclasses.asdict(settings_of(run.record, run.folder))
    if settings["method"] != "dss":
        settings.update(dict.fromkeys(DSS_ONLY, NOT_USED))
    return settings


def arm_label(run: RunScores, varying: list[str]) -> str:
    """The method's name plus whatever else distinguishes this configuration from the others compared."""
    settings = run_settings(run)
    extras = [f"{key}={settings.get(key)}" for key in varying
              if key not in ("method", "labels") and settings.get(key) != NOT_USED]
    return method_name(run.record) + (f" ({', '.join(extras)})" if extras else "")


def arms_of(runs: list[RunScores]) -> dict[str, list[RunScores]]:
    """Group run folders into arms: runs whose settings differ only in seed (and bookkeeping) are one arm."""
    settings = [run_settings(run) for run in runs]
    keys = sorted({key for one in settings for key in one} - BOOKKEEPING)
    varying = [key for key in keys if len({repr(one.get(key)) for one in settings} - {repr(NOT_USED)}) > 1]
    arms: dict[str, list[RunScores]] = {}
    for run in runs:
        arms.setdefault(arm_label(run, varying), []).append(run)
    for name, members in arms.items():
        seeds = [run.seed for run in members]
        if len(seeds) != len(set(seeds)):
            folders = ", ".join(str(run.folder) for run in members)
            raise DataError(f"{folders}: two runs of the same configuration ({name}) with the same seed")
    return arms


def compare_folders(folders: list[str | Path]) -> Comparison:
    """`stepdistill compare`: any finished run folders, paired on their common test items."""
    if len(folders) < 2:
        raise DataError("compare needs at least two run folders")
    runs = [RunScores.load(folder) for folder in folders]
    arms = arms_of(runs)
    if len(arms) < 2:
        raise DataError(f"{', '.join(map(str, folders))}: all runs are one configuration (they differ only "
                        "in seed); nothing to compare")
    return compare_arms(arms)


def sweep_arms(runs: list[RunScores]) -> dict[str, list[RunScores]]:
    """Runs of one (task, student, fraction) in a sweep, one arm per method and label source."""
    ordered = sorted(runs, key=lambda run: (METHOD_ORDER.get(run.record["method"], 9), run.record["labels"],
                                            run.seed if run.seed is not None else -1))
    arms: dict[str, list[RunScores]] = {}
    for run in ordered:
        arms.setdefault(method_name(run.record), []).append(run)
    return arms


def format_seeds_spread(interval: AccuracyInterval) -> str:
    """'mean ± std' over several seeds; a single seed shows its mean only (never '± 0.00')."""
    if interval.std is None:
        return f"{interval.mean:.2f}"
    return f"{interval.mean:.2f} ± {interval.std:.2f}"


def accuracy_table(comparison: Comparison) -> list[str]:
    lines = ["| arm | seeds | test items | test accuracy % | 95% CI (Wilson) |", "|---|---|---|---|---|"]
    for name, interval in comparison.accuracy.items():
        lines.append(f"| {name} | {interval.seeds} | {interval.items} | {format_seeds_spread(interval)} "
                     f"| [{interval.low:.1f}, {interval.high:.1f}] |")
    return lines


def pairs_table(pairs: list[dict]) -> list[str]:
    """Markdown rows for paired comparisons (each a `PairedComparison.as_dict()`)."""
    lines = ["| A | B | seeds | A - B (points) | 95% paired bootstrap (test items) | 95% over seeds (t) "
             "| discordant (A only / B only) | McNemar exact p | verdict (A vs B) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for pair in pairs:
        lines.append(f"| {pair['a']} | {pair['b']} | {pair['seeds']} | {pair['difference']:+.2f} "
                     f"| [{pair['low']:+.2f}, {pair['high']:+.2f}] "
                     f"| {format_seed_interval(pair.get('seed_low'), pair.get('seed_high'))} "
                     f"| {pair['only_a']} / {pair['only_b']} "
                     f"| {pair['p_value']:.3g} "
                     f"| {describe_verdict(pair['verdict'], pair['detectable'], pair.get('seed_detectable'))} |")
    return lines


def seed_noise_lines(pairs: list[dict], target: float | None = None) -> list[str]:
    """Per pair with several seeds: how much its gap moves between training runs, the smallest difference these
    seeds detect, and (with a target difference) the seed pairs that target needs. Training noise usually sets
    the bar, not the test set, so a user plans the next comparison from this."""
    lines = []
    for pair in pairs:
        if pair.get("seed_spread") is None:
            continue
        line = (f"{pair['a']} - {pair['b']}: the per-seed differences spread by {pair['seed_spread']:.2f} points "
                f"(SD over {pair['seeds']} seeds); over seeds this comparison detects >= "
                f"{pair['seed_detectable']:.1f} points (80% power, 5% two-sided)")
        if target is not None:
            line += (f"; a true difference of {target:g} points needs about "
                     f"{seeds_needed(pair['seed_spread'], target)} seed pairs")
        lines.append(line)
    if not lines and target is not None:  # asked for a plan that these runs cannot give: say so, not nothing
        return [f"Seed noise: no pair of arms has two or more seeds, so there is no spread of per-seed differences "
                f"to plan --target {target:g} from; train a second seed of each arm first"]
    return ["Seed noise:", *lines] if lines else []


def seeds_for_target(pairs: list[dict], target: float) -> list[dict]:
    """The pairs, each with the seed pairs a true difference of `target` points needs (None for one seed)."""
    return [{**pair, "target_difference": target,
             "seed_pairs_needed": None if pair.get("seed_spread") is None else seeds_needed(pair["seed_spread"], target)}
            for pair in pairs]


def format_comparison(comparison: Comparison, target: float | None = None) -> str:
    arms = [f"{name}: {', '.join(folders)}" for name, folders in comparison.runs.items()]
    pairs = [pair.as_dict() for pair in comparison.pairs]
    noise = seed_noise_lines(pairs, target)
    return "\n".join(arms + [""] + accuracy_table(comparison) + [""] + pairs_table(pairs) + ([""] + noise if noise else []))
