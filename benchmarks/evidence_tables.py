"""The evidence tables of BENCHMARKS.md ("Evidence at 25% of SVAMP"), from the sweep folders that ran them.

    PYTHONPATH=src .venv/bin/python benchmarks/evidence_tables.py \
        --arm "standard finetuning=runs/svamp-f25-budget:standard" \
        --arm "dss, released rationales (a)=runs/svamp-f25-budget:dss" \
        --arm "dss, chat format=runs/svamp-f25-chat:dss:standard, chat format" \
        --arm "standard, chat format=runs/svamp-f25-chat:standard"

An arm is `LABEL=SWEEP_FOLDER:METHOD[@FRACTION][:BASELINE_LABEL]`: the runs of that method in the sweep folder
(at that training fraction, needed when the sweep has several), one per seed. Each arm is paired with its baseline (default: the first arm) seed by seed on the same test items.
Prints four Markdown tables: test (valid) accuracy at every evaluated checkpoint (`--test-each-eval`, analysis
only), the validation-chosen checkpoint per seed with its paired difference, the arms over all seeds
(paired bootstrap interval and McNemar, as `stepdistill compare`), what checkpoint selection cost each
arm, and the same pairs at the last checkpoint (a fixed budget, no selection) for runs whose
checkpoint_scores.jsonl kept the test items (`test_right`), pooled and per seed with the discordant counts (all a
later item-level pooling needs once the runs' machine is gone). `--plot FILE` draws the pooled differences;
`--by-operations` splits the pairs by the number of arithmetic operations in the gold equation (SVAMP's
labels: one step or two); `--error-kinds` says what the wrong answers get wrong (other numbers of the question,
operators, order: arithmetic.equation_error), pairs the arms on choosing the gold's numbers, and splits the
pairs by whether the question holds a number the gold does not use. `--choices` says where multiple-choice
answers fall among the choices (a to e, or none), beside the gold's, and rescores the pairs with each answer
moved to its nearest choice (CQA); `--chosen` pairs them as answered by `stepdistill eval --answer choices`
(each run's predictions_test_choices.jsonl). `--across "NAME=ARM;ARM"` pools several
arms' pairs (each with its own baseline) into one comparison. `--fraction-plot FILE` draws test accuracy against the training fraction, one line per label once its
percentage is taken out ("dss, chat, 12.5%" and "dss, chat, 25%" are one line). Runs still training are
listed as such. Analysis for issue 13, not part of the package.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from stepdistill.arithmetic import EQUATION_ERRORS, equation_error, numbers_in
from stepdistill.experiments.compare import seed_pairs
from stepdistill.experiments.paired import SeedPair, compare, format_seed_interval
from stepdistill.experiments.plots import accuracy_plot, differences_plot
from stepdistill.experiments.report import accuracy_summary
from stepdistill.experiments.runs import RunScores, aligned, correctness
from stepdistill.experiments.selection import last_checkpoint_correctness
from stepdistill.jsonio import iter_jsonl, read_json
from stepdistill.tasks.cqa import CHOICE_LETTERS, choices_in


@dataclass
class Arm:
    label: str
    sweep: Path
    method: str
    fraction: float | None  # the training fraction; None: the sweep's only one
    baseline: str | None  # the label of the arm it is paired with; None: the first arm
    checkpoints: dict[int, list[dict]] = field(default_factory=dict)  # seed -> checkpoint_scores.jsonl rows
    finished: dict[int, RunScores] = field(default_factory=dict)  # seed -> finished run (run.json, test items), read once

    @classmethod
    def parse(cls, text: str) -> "Arm":
        label, _, rest = text.partition("=")
        sweep, method, *baseline = rest.split(":", 2)
        method, _, fraction = method.partition("@")
        try:
            share = float(fraction) if fraction else None
        except ValueError:
            raise SystemExit(f"--arm {text!r}: the fraction after @ must be a number, got {fraction!r}") from None
        return cls(label, Path(sweep), method, share, baseline[0] if baseline else None)

    def load(self) -> "Arm":
        fraction = f"{self.fraction:g}" if self.fraction is not None else "*"
        folders = sorted((self.sweep / "runs").glob(f"*__{self.method}-*__f{fraction}__s*"))
        if not folders:
            raise SystemExit(f"{self.sweep / 'runs'}: no {self.method} runs"
                             + (f" at fraction {self.fraction:g}" if self.fraction is not None else ""))
        fractions = {float(folder.name.rsplit("__f", 1)[1].split("__")[0]) for folder in folders}
        if len(fractions) > 1:
            raise SystemExit(f"{self.sweep}: {self.method} ran at fractions {sorted(fractions)}; name one, "
                             f"e.g. {self.method}@{min(fractions):g}")
        self.fraction = fractions.pop()
        for folder in folders:
            seed = int(folder.name.rsplit("__s", 1)[1])
            scores = folder / "checkpoint_scores.jsonl"
            self.checkpoints[seed] = [row for _, row in iter_jsonl(scores)] if scores.is_file() else []
            if (folder / "run.json").is_file() and read_json(folder / "run.json").get("status") == "done":
                self.finished[seed] = RunScores.load(folder)
        return self


def checkpoint_table(arms: list[Arm]) -> list[str]:
    evaluations = max((len(rows) for arm in arms for rows in arm.checkpoints.values()), default=0)
    lines = ["| arm | seed | " + " | ".join(f"eval {n + 1}" for n in range(evaluations)) + " |",
             "|---|---|" + "---|" * evaluations]
    if not evaluations:
        return lines  # no run tested every checkpoint (test_each_eval: false): the caller says "none"
    for arm in arms:
        for seed, rows in sorted(arm.checkpoints.items()):
            best = arm.finished[seed].record["best_step"] if seed in arm.finished else None
            cells = [f"{row['test_accuracy']:.1f} ({row['valid_accuracy']:.2f}){' *' if row['step'] == best else ''}"
                     for row in rows]
            cells += ["(training)" if seed not in arm.finished else ""] * (evaluations - len(cells))
            lines.append(f"| {arm.label} | {seed} | " + " | ".join(cells) + " |")
    return lines


def chosen_table(arms: list[Arm], baselines: dict[str, Arm]) -> list[str]:
    lines = ["| arm | seed | test % (valid %) | minus its baseline, same seed | 95% paired bootstrap | "
             "discordant (arm only / baseline only) | McNemar exact p |", "|---|---|---|---|---|---|---|"]
    for arm in arms:
        baseline = baselines[arm.label]
        for seed, finished in sorted(arm.finished.items()):
            run = finished.record
            line = f"| {arm.label} | {seed} | {run['test_accuracy']:.1f} ({run['valid_accuracy']:.2f}) |"
            if baseline is arm or seed not in baseline.finished:
                lines.append(line + " | | | |")
                continue
            pair = paired(arm, baseline, [seed])
            lines.append(line + f" {pair.difference:+.1f} | [{pair.low:+.1f}, {pair.high:+.1f}] | "
                                f"{pair.only_a} / {pair.only_b} | {pair.p_value:.3g} |")
    return lines


def pooled_pairs(arms: list[Arm], baselines: dict[str, Arm]) -> list[tuple[Arm, Arm, list[int], object]]:
    """(arm, baseline, common finished seeds, paired comparison) for every arm that has a baseline to pair with."""
    pooled = []
    for arm in arms:
        baseline = baselines[arm.label]
        seeds = sorted(set(arm.finished) & set(baseline.finished))
        if baseline is not arm and seeds:
            pooled.append((arm, baseline, seeds, paired(arm, baseline, seeds)))
    return pooled


def pooled_table(pooled: list) -> list[str]:
    lines = ["| arm | baseline | seeds | arm test % | baseline test % | difference | 95% paired bootstrap | "
             "95% over seeds (t) | McNemar exact p | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for arm, baseline, seeds, pair in pooled:
        lines.append(f"| {arm.label} | {baseline.label} | {len(seeds)} | {mean_test(arm, seeds):.2f} | "
                     f"{mean_test(baseline, seeds):.2f} | {pair.difference:+.2f} | [{pair.low:+.2f}, {pair.high:+.2f}] | "
                     f"{format_seed_interval(pair.seed_low, pair.seed_high)} | {pair.p_value:.3g} | {pair.verdict} |")
    return lines


def selection_table(arms: list[Arm]) -> list[str]:
    """Test accuracy of the validation-chosen checkpoint against the best and the last one (never used to choose),
    and of the checkpoint validation would choose if a tie went to the later one (training keeps the earlier)."""
    lines = ["| arm | seeds | chosen on valid | ties to the later | oracle (best on test) | last | selection cost |",
             "|---|---|---|---|---|---|---|"]
    for arm in arms:
        seeds = [seed for seed in arm.finished if arm.checkpoints.get(seed)]
        if not seeds:
            continue
        chosen = mean_test(arm, seeds)
        later = statistics.fmean(latest_best(arm.checkpoints[seed])["test_accuracy"] for seed in seeds)
        oracle = statistics.fmean(max(row["test_accuracy"] for row in arm.checkpoints[seed]) for seed in seeds)
        last = statistics.fmean(arm.checkpoints[seed][-1]["test_accuracy"] for seed in seeds)
        lines.append(f"| {arm.label} | {len(seeds)} | {chosen:.2f} | {later:.2f} | {oracle:.2f} | {last:.2f} | "
                     f"{oracle - chosen:.2f} |")
    return lines


def latest_best(checkpoints: list[dict]) -> dict:
    """The last of the checkpoints with the best validation accuracy."""
    best = max(row["valid_accuracy"] for row in checkpoints)
    return [row for row in checkpoints if row["valid_accuracy"] == best][-1]


def last_checkpoint_table(pooled: list) -> list[str]:
    """The pooled pairs again, each run scored at its last checkpoint instead of the chosen one."""
    lines = ["| arm | baseline | seeds | arm test % | baseline test % | difference | 95% paired bootstrap | "
             "95% over seeds (t) | McNemar exact p |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, baseline, seeds, _ in pooled:
        runs = [at_last_checkpoint(side.finished[seed]) for side in (arm, baseline) for seed in seeds]
        if any(run is None for run in runs):
            lines.append(f"| {arm.label} | {baseline.label} | {len(seeds)} | (items not recorded) | | | | | |")
            continue
        lines.append(f"| {arm.label} | {baseline.label} | {len(seeds)} | {paired_cells(arm, baseline, runs)} |")
    return lines


def last_checkpoint_seed_table(pooled: list) -> list[str]:
    """Each seed's pair at the last checkpoint, with its discordant counts: the item bootstrap and McNemar depend on
    nothing else, so a later analysis can pool these seeds on items from this record once the runs are gone."""
    lines = ["| arm | seed | arm test % | baseline test % | difference | 95% paired bootstrap | "
             "discordant (arm only / baseline only) | McNemar exact p |", "|---|---|---|---|---|---|---|---|"]
    for arm, baseline, seeds, _ in pooled:
        for seed in seeds:
            runs = [at_last_checkpoint(side.finished[seed]) for side in (arm, baseline)]
            if any(run is None for run in runs):
                lines.append(f"| {arm.label} | {seed} | (items not recorded) | | | | | |")
                continue
            pair = compare(arm.label, baseline.label, [SeedPair(seed, *aligned(*runs))])
            shares = [100 * statistics.fmean(run.correct.values()) for run in runs]
            lines.append(f"| {arm.label} | {seed} | {shares[0]:.1f} | {shares[1]:.1f} | {pair.difference:+.1f} | "
                         f"[{pair.low:+.1f}, {pair.high:+.1f}] | {pair.only_a} / {pair.only_b} | {pair.p_value:.3g} |")
    return lines


def paired_cells(arm: Arm, baseline: Arm, runs: list[RunScores]) -> str:
    """`arm % | baseline % | difference | [items] | [seeds] | p` for runs listed as the arm's seeds, then the
    baseline's in the same order (paired by position: pooled arms repeat seed numbers)."""
    seeds = len(runs) // 2
    pairs = [SeedPair(run.seed, *aligned(run, other)) for run, other in zip(runs[:seeds], runs[seeds:])]
    pair = compare(arm.label, baseline.label, pairs)
    share = [100 * statistics.fmean(run.correct.values()) for run in runs]
    return (f"{statistics.fmean(share[:seeds]):.2f} | {statistics.fmean(share[seeds:]):.2f} | {pair.difference:+.2f} | "
            f"[{pair.low:+.2f}, {pair.high:+.2f}] | {format_seed_interval(pair.seed_low, pair.seed_high)} | "
            f"{pair.p_value:.3g}")


def operations(equation: str) -> int:
    """Operators in a SVAMP gold equation, `( 10.0 - ( 6.0 + 3.0 ) )` -> 2 (a sign, as in -3.0, is not one)."""
    return len(re.findall(r"(?<=\s)[-+*/](?=\s)", equation))


def split_table(pooled: list, column: str, group_of) -> list[str]:
    """The pooled pairs again within each group of test items (item_groups)."""
    lines = [f"| arm | baseline | {column} | items | arm test % | baseline test % | difference | "
             "95% paired bootstrap | 95% over seeds (t) | McNemar exact p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for arm, baseline, seeds, _ in pooled:
        for group, items in item_groups(arm.finished[seeds[0]], group_of):
            runs = [only_items(side.finished[seed], items) for side in (arm, baseline) for seed in seeds]
            lines.append(f"| {arm.label} | {baseline.label} | {group} | {len(items)} | "
                         f"{paired_cells(arm, baseline, runs)} |")
    return lines


def across_arms_table(pooled: list, pools: list[str], group_of=None) -> list[str]:
    """Each `NAME=ARM;ARM;...` of --across: the listed arms' pairs with their baselines taken together as one
    set of seed pairs (runs of different recipes, each paired on the same test items with its own baseline), on
    all test items, then within each group of them when `group_of` is given."""
    lines = ["| pooled | pairs | group | items | arm test % | baseline test % | difference | 95% paired bootstrap | "
             "95% over seeds (t) | McNemar exact p |", "|---|---|---|---|---|---|---|---|---|---|"]
    by_label = {arm.label: (arm, baseline, seeds) for arm, baseline, seeds, _ in pooled}
    for pool in pools:
        name, _, labels = pool.partition("=")
        missing = [label for label in labels.split(";") if label.strip() not in by_label]
        if missing:
            raise SystemExit(f"--across {pool!r}: no finished pairs for {', '.join(missing)}")
        members = [by_label[label.strip()] for label in labels.split(";")]
        first_arm, _, first_seeds = members[0]
        groups = item_groups(first_arm.finished[first_seeds[0]], lambda row: "all")
        if group_of:
            groups += item_groups(first_arm.finished[first_seeds[0]], group_of)
        for group, items in groups:
            arm_runs = [only_items(arm.finished[seed], items) for arm, _, seeds in members for seed in seeds]
            base_runs = [only_items(baseline.finished[seed], items) for _, baseline, seeds in members for seed in seeds]
            lines.append(f"| {name} | {len(arm_runs)} | {group} | {len(items)} | "
                         f"{paired_cells(members[0][0], members[0][1], arm_runs + base_runs)} |")
    return lines


def test_rows(run: RunScores) -> list[dict]:
    """The run's predictions_test.jsonl rows (id, input, prediction, gold, correct)."""
    return [row for _, row in iter_jsonl(run.folder / "predictions_test.jsonl")]


def item_groups(run: RunScores, group_of) -> list[tuple[object, set[str]]]:
    """[(group, its test items)], `group_of(prediction row)` naming each item's group (the gold and the question
    come from this run's predictions, the same in every run of the task)."""
    groups: dict = {}
    for row in test_rows(run):
        groups.setdefault(group_of(row), set()).add(row["id"])
    return sorted(groups.items())


def has_distractor(row: dict) -> str:
    """yes when the question holds a number its gold equation does not use (SVAMP's added quantities)."""
    return "yes" if numbers_in(row["input"]) - numbers_in(row["gold"]) else "no"


def error_kinds(run: RunScores) -> dict[str, str]:
    """{test item: arithmetic.equation_error of the run's answer}."""
    return {row["id"]: equation_error(row["prediction"], row["gold"], row["input"])
            for row in test_rows(run)}


def error_kinds_table(arms: list[Arm]) -> list[str]:
    """Each arm's test answers by what is wrong with them, % of answers, mean over its finished seeds."""
    lines = ["| arm | seeds | " + " | ".join(EQUATION_ERRORS) + " | uses a distractor (% of the questions with one) |",
             "|---|---|" + "---|" * (len(EQUATION_ERRORS) + 1)]
    for arm in arms:
        if not arm.finished:
            continue
        shares = {kind: [] for kind in EQUATION_ERRORS}
        distracted = []
        for run in arm.finished.values():
            kinds = list(error_kinds(run).values())
            for kind in EQUATION_ERRORS:
                shares[kind].append(100 * kinds.count(kind) / len(kinds))
            distracted.append(distractor_use(run))
        lines.append(f"| {arm.label} | {len(arm.finished)} | "
                     + " | ".join(f"{statistics.fmean(shares[kind]):.1f}" for kind in EQUATION_ERRORS)
                     + f" | {statistics.fmean(distracted):.1f} |")
    return lines


def distractor_use(run: RunScores) -> float:
    """% of the questions holding a distractor number whose answer computes with one."""
    rows = [row for row in test_rows(run) if has_distractor(row) == "yes"]
    used = [bool(numbers_in(row["prediction"] or "") & (numbers_in(row["input"]) - numbers_in(row["gold"])))
            for row in rows]
    return 100 * sum(used) / len(used)


NOT_A_CHOICE = "not a choice"
CHOICE_PREDICTIONS = "predictions_test_choices.jsonl"  # `eval --answer choices --out RUN/this` (--chosen)


def picked_position(answer: str | None, question: str) -> str:
    """The letter of the choice a multiple-choice answer names (the first, should two choices read the same),
    else NOT_A_CHOICE."""
    choices = choices_in(question)
    return CHOICE_LETTERS[choices.index(answer)] if answer in choices else NOT_A_CHOICE


def nearest_choice(answer: str | None, choices: list[str]) -> str | None:
    """The choice an answer reads most like (difflib's ratio, case ignored; the first of equals), as if the
    student had been made to pick one; None without choices. Analysis only: scoring stays exact."""
    if not choices:
        return None
    text = (answer or "").lower()
    return max(choices, key=lambda choice: difflib.SequenceMatcher(None, text, choice.lower()).ratio())


def snapped(run: RunScores) -> RunScores:
    """The run rescored with each test answer moved to its nearest choice."""
    return dataclasses.replace(run, correct={row["id"]: nearest_choice(row["prediction"], choices_in(row["input"]))
                                             == row["gold"] for row in test_rows(run)})


def answered_by_choosing(run: RunScores) -> RunScores:
    """The run rescored from its `eval --answer choices` predictions (CHOICE_PREDICTIONS in its folder)."""
    return dataclasses.replace(run, correct=correctness(run.folder / CHOICE_PREDICTIONS))


def require_chosen(arms: list[Arm]) -> None:
    """--chosen before any table is printed: every finished run has its choice-scored test predictions."""
    for arm in arms:
        for run in arm.finished.values():
            path = run.folder / CHOICE_PREDICTIONS
            if not path.is_file():
                raise SystemExit(f"{path}: not found; write it with `stepdistill eval --model {run.folder} "
                                 f"--split test --answer choices --out {path}`")


def rescored_table(pooled: list, rescore, column: str) -> list[str]:
    """The pooled pairs again, each run rescored by `rescore` (RunScores -> RunScores)."""
    lines = [f"| arm | baseline | seeds | arm: {column} % | baseline % | difference | 95% paired bootstrap | "
             "95% over seeds (t) | McNemar exact p |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, baseline, seeds, _ in pooled:
        runs = [rescore(side.finished[seed]) for side in (arm, baseline) for seed in seeds]
        lines.append(f"| {arm.label} | {baseline.label} | {len(seeds)} | {paired_cells(arm, baseline, runs)} |")
    return lines


def position_shares(rows: list[dict], answer: str) -> list[float]:
    """% of the prediction rows whose `answer` field ("prediction" or "gold") picks (a) ... (e), then none."""
    picks = [picked_position(row[answer], row["input"]) for row in rows]
    return [100 * picks.count(kind) / len(picks) for kind in (*CHOICE_LETTERS, NOT_A_CHOICE)]


def require_choices(arms: list[Arm]) -> None:
    """--choices before any table is printed: every finished run's test inputs must list their choices."""
    for arm in arms:
        for run in arm.finished.values():
            if not any(choices_in(row["input"]) for row in test_rows(run)):
                raise SystemExit(f"{run.folder / 'predictions_test.jsonl'}: --choices needs a multiple-choice task "
                                 "(CQA); no test input here lists its choices")


def choices_table(arms: list[Arm]) -> list[str]:
    """Where each arm's test answers fall among the choices, % of answers, mean over its finished seeds; the gold
    answers' positions first (a student near chance that favours one position shows here)."""
    columns = [f"({letter})" for letter in CHOICE_LETTERS] + [NOT_A_CHOICE]
    lines = ["| answers | seeds | " + " | ".join(columns) + " | right | right, snapped to the nearest choice |",
             "|---|---|" + "---|" * (len(columns) + 2)]
    finished = [arm for arm in arms if arm.finished]
    if not finished:
        return lines
    first = next(iter(finished[0].finished.values()))
    gold = position_shares(test_rows(first), "gold")
    lines.append("| gold | | " + " | ".join(f"{share:.1f}" for share in gold) + " | 100.0 | 100.0 |")
    for arm in finished:
        per_seed = [position_shares(test_rows(run), "prediction") for run in arm.finished.values()]
        right, right_snapped = (statistics.fmean(100 * statistics.fmean(run.correct.values()) for run in runs)
                                for runs in (arm.finished.values(), map(snapped, arm.finished.values())))
        lines.append(f"| {arm.label} | {len(per_seed)} | "
                     + " | ".join(f"{statistics.fmean(column):.1f}" for column in zip(*per_seed))
                     + f" | {right:.1f} | {right_snapped:.1f} |")
    return lines


def gold_numbers_table(pooled: list) -> list[str]:
    """The pooled pairs again, scoring each answer on whether it computes with exactly the gold's numbers
    (right, or wrong only in its operators or their order)."""
    lines = ["| arm | baseline | seeds | arm: gold's numbers % | baseline % | difference | 95% paired bootstrap | "
             "95% over seeds (t) | McNemar exact p |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, baseline, seeds, _ in pooled:
        runs = [side.finished[seed] for side in (arm, baseline) for seed in seeds]
        runs = [dataclasses.replace(run, correct={item: kind in ("right", "operators", "order")
                                                  for item, kind in error_kinds(run).items()}) for run in runs]
        lines.append(f"| {arm.label} | {baseline.label} | {len(seeds)} | {paired_cells(arm, baseline, runs)} |")
    return lines


def only_items(run: RunScores, items: set[str]) -> RunScores:
    return dataclasses.replace(run, correct={item: right for item, right in run.correct.items() if item in items})


def fraction_series(arms: list[Arm]) -> dict[str, list[tuple[float, float, float, float]]]:
    """{label without its percentage: [(fraction %, mean chosen test %, 95% Wilson low, high), ...]} over the
    finished seeds of each arm, as `stepdistill report` draws one sweep's fractions."""
    series: dict[str, list[tuple]] = {}
    for arm in arms:
        if not arm.finished or arm.fraction is None:
            continue
        seeds = sorted(arm.finished)
        items = len(arm.finished[seeds[0]].correct)
        summary = accuracy_summary([arm.finished[seed].record["test_accuracy"] for seed in seeds], items)
        name = re.sub(r",?\s*\d+(\.\d+)?%", "", arm.label).strip()
        series.setdefault(name, []).append((arm.fraction * 100, summary["test_mean"], summary["test_low"],
                                            summary["test_high"]))
    return series


def at_last_checkpoint(run: RunScores) -> RunScores | None:
    correct = last_checkpoint_correctness(run.folder, run.correct)
    return dataclasses.replace(run, correct=correct) if correct is not None else None


def paired(arm: Arm, baseline: Arm, seeds: list[int]):
    return compare(arm.label, baseline.label, seed_pairs([arm.finished[seed] for seed in seeds],
                                                          [baseline.finished[seed] for seed in seeds]))


def mean_test(arm: Arm, seeds: list[int]) -> float:
    return statistics.fmean(arm.finished[seed].record["test_accuracy"] for seed in seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", action="append", required=True, help="LABEL=SWEEP_FOLDER:METHOD[:BASELINE_LABEL]")
    parser.add_argument("--plot", help="also draw each arm's pooled difference from its baseline into this PNG")
    parser.add_argument("--title", default="SVAMP 25%, SmolLM2-135M: arm minus its baseline")
    parser.add_argument("--by-operations", action="store_true",
                        help="also split the pairs by the operations in the gold equation (SVAMP)")
    parser.add_argument("--error-kinds", action="store_true",
                        help="also say what the wrong answers get wrong, and pair the arms on the gold's numbers (SVAMP)")
    parser.add_argument("--choices", action="store_true",
                        help="also say where the test answers fall among the answer choices (CQA)")
    parser.add_argument("--chosen", action="store_true",
                        help=f"also pair the runs as answered by choosing among the choices (each run's "
                             f"{CHOICE_PREDICTIONS} from `stepdistill eval --answer choices`)")
    parser.add_argument("--across", action="append", default=[],
                        help="NAME=ARM;ARM;...: also pool these arms' pairs with their baselines into one comparison "
                             "(with --error-kinds, also split by distractor)")
    parser.add_argument("--fraction-plot", help="also draw test accuracy against the training fraction into this PNG")
    parser.add_argument("--fraction-title", default="SVAMP, SmolLM2-135M: accuracy vs data size (mean over seeds)")
    options = parser.parse_args()
    arms = [Arm.parse(text).load() for text in options.arm]
    by_label = {arm.label: arm for arm in arms}
    baselines = {arm.label: by_label[arm.baseline] if arm.baseline else arms[0] for arm in arms}
    if options.choices:
        require_choices(arms)
    if options.chosen:
        require_chosen(arms)
    pooled = pooled_pairs(arms, baselines)
    untested = "none: no run tested every checkpoint (test_each_eval: false)"
    unpaired = "none: no arm has another arm as baseline with finished runs of the same seeds"
    for title, table, empty in (
            ("Test % at each evaluated checkpoint (valid % in brackets, * = chosen on validation)",
             checkpoint_table(arms), untested),
            ("Chosen on validation, per seed, paired with its baseline", chosen_table(arms, baselines),
             "none: no finished run"),
            ("Over all finished seeds (paired bootstrap over items and seeds, McNemar on pooled discordant items)",
             pooled_table(pooled), unpaired),
            ("What choosing on validation cost (analysis only)", selection_table(arms), untested),
            ("At the last checkpoint (a fixed budget, no selection; analysis only), paired as above",
             last_checkpoint_table(pooled), unpaired),
            ("At the last checkpoint, per seed (the discordant counts let a later analysis pool these seeds on items)",
             last_checkpoint_seed_table(pooled), unpaired)):
        body = table[2:]  # below the header and its rule
        print(f"{title}:\n\n" + "\n".join(table) + "\n" if body else f"{title}: {empty}.\n")
    if options.by_operations:
        print("By the number of operations in the gold equation (analysis only), paired as above:\n\n"
              + "\n".join(split_table(pooled, "operations", lambda row: operations(row["gold"]))) + "\n")
    if options.error_kinds:
        print("What the test answers get wrong (% of answers, mean over seeds; analysis only):\n\n"
              + "\n".join(error_kinds_table(arms)) + "\n")
        print("Answers that compute with exactly the gold's numbers (right, or wrong only in operators or order), "
              "paired as above:\n\n" + "\n".join(gold_numbers_table(pooled)) + "\n")
        print("By whether the question holds a number its gold equation does not use (a distractor), paired as "
              "above:\n\n" + "\n".join(split_table(pooled, "distractor", has_distractor)) + "\n")
    if options.choices:
        print("Where the test answers fall among the choices (% of answers, mean over seeds; analysis only):\n\n"
              + "\n".join(choices_table(arms)) + "\n")
        print("With every answer moved to its nearest choice (analysis only; scoring stays exact), paired as above:\n\n"
              + "\n".join(rescored_table(pooled, snapped, "snapped")) + "\n")
    if options.chosen:
        print("Answered by choosing the likeliest listed choice (`eval --answer choices`), paired as above:\n\n"
              + "\n".join(rescored_table(pooled, answered_by_choosing, "chosen")) + "\n")
    if options.across:
        print("Pairs of several arms taken together (each arm against its own baseline), paired as above:\n\n"
              + "\n".join(across_arms_table(pooled, options.across, has_distractor if options.error_kinds else None))
              + "\n")
    if options.plot:
        pairs = [{**pair.as_dict(), "group": f"{len(seeds)} seeds"} for _, _, seeds, pair in pooled]
        print(f"plot: {differences_plot(pairs, options.title, Path(options.plot))}")
    if options.fraction_plot:
        figure = accuracy_plot(fraction_series(arms), "training data used (% of the train split)",
                               options.fraction_title, Path(options.fraction_plot))
        print(f"plot: {figure}")


if __name__ == "__main__":
    main()
