"""Paired statistics against hand computations, `stepdistill compare`, and the report on hand-written run folders."""

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.experiments.compare import compare_folders
from stepdistill.experiments.paired import (T_975, SeedPair, compare, describe_verdict, mcnemar_exact,
                                            minimum_detectable_effect, normal_paired_interval, paired_bootstrap,
                                            seed_interval, seeds_detectable, seeds_needed, spread_over_seeds,
                                            t_interval, t_quantile_80, t_quantile_975, verdict, wilson_interval)
from stepdistill.experiments.report import summarize, training_rationales, write_report
from stepdistill.experiments.runs import student_name, task_name
from stepdistill.experiments.selection import last_checkpoint_correctness


def seed_pair(both: int, only_a: int, only_b: int, neither: int, seed: int = 0) -> SeedPair:
    correct_a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    correct_b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return SeedPair(seed, correct_a, correct_b)


# -- statistics -----------------------------------------------------------------------------------------

def test_mcnemar_exact_matches_hand_computed_binomial_tails():
    # 2 vs 8 discordant: P(X <= 2 | n=10, 1/2) = (1 + 10 + 45) / 1024, two-sided doubles it
    assert mcnemar_exact(2, 8) == pytest.approx(2 * 56 / 1024, rel=1e-12)
    assert mcnemar_exact(8, 2) == mcnemar_exact(2, 8)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32, rel=1e-12)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    # issue 13's figures: 59 vs 41 discordant items
    tail = sum(math.comb(100, k) for k in range(42))
    assert mcnemar_exact(59, 41) == pytest.approx(2 * tail / 2 ** 100, rel=1e-12)
    assert 0.08 < mcnemar_exact(59, 41) < 0.10
    # large counts stay exact (no float overflow in 2**n)
    assert 0 < mcnemar_exact(900, 1100) < 1e-5


def test_wilson_interval_matches_formula_and_stays_in_range():
    low, high = wilson_interval(0.5, 100)
    centre, half = 0.5, 1.959963984540054 * math.sqrt(0.25 / 100 + 1.959963984540054 ** 2 / 40000)
    denominator = 1 + 1.959963984540054 ** 2 / 100
    assert low == pytest.approx(100 * (centre + 1.959963984540054 ** 2 / 200 - half) / denominator, abs=1e-9)
    assert high == pytest.approx(100 * (centre + 1.959963984540054 ** 2 / 200 + half) / denominator, abs=1e-9)
    zero_low, zero_high = wilson_interval(0.0, 200)
    assert zero_low == 0.0 and 1.5 < zero_high < 2.0  # exactly 0 below (plots draw bars from it), not [0, 0]
    assert wilson_interval(1.0, 200)[1] == 100.0


def test_bootstrap_agrees_with_normal_interval():
    pairs = [seed_pair(200, 60, 30, 110)]
    observed, low, high = paired_bootstrap(pairs, resamples=20_000)
    mean, normal_low, normal_high = normal_paired_interval(pairs)
    assert observed == mean == pytest.approx(7.5)
    # hand: var = (0.15 + 0.075 - 0.075^2) / 400, half-width = 1.96 * sqrt(var) = 4.59 points
    assert normal_high - mean == pytest.approx(100 * 1.959964 * math.sqrt((0.225 - 0.075 ** 2) / 400), rel=1e-6)
    assert low == pytest.approx(normal_low, abs=0.5) and high == pytest.approx(normal_high, abs=0.5)


def test_bootstrap_over_seeds_averages_per_seed_differences():
    pairs = [seed_pair(100, 30, 10, 60, seed=0), seed_pair(100, 10, 30, 60, seed=1), seed_pair(90, 25, 5, 80, seed=2)]
    observed, low, high = paired_bootstrap(pairs)
    assert observed == pytest.approx(100 * statistics.fmean([20 / 200, -20 / 200, 20 / 200]))
    _, normal_low, normal_high = normal_paired_interval(pairs)
    assert low == pytest.approx(normal_low, abs=0.5) and high == pytest.approx(normal_high, abs=0.5)


def test_multinomial_shortcut_matches_resampling_item_indices():
    pair = seed_pair(50, 25, 15, 30)
    differences = np.array(pair.correct_a, dtype=float) - np.array(pair.correct_b, dtype=float)
    rng = np.random.default_rng(1)
    by_index = 100 * differences[rng.integers(0, pair.items, size=(20_000, pair.items))].mean(axis=1)
    _, low, high = paired_bootstrap([pair], resamples=20_000)
    assert low == pytest.approx(np.percentile(by_index, 2.5), abs=0.6)
    assert high == pytest.approx(np.percentile(by_index, 97.5), abs=0.6)


def test_minimum_detectable_effect_by_hand():
    # 40 discordant of 200 items: (1.96 + 0.8416) * sqrt(40 / 200) / sqrt(200) = 8.86 points
    pair = seed_pair(100, 20, 20, 60)
    assert minimum_detectable_effect([pair]) == pytest.approx(100 * 2.8015852 * math.sqrt(0.2 / 200), rel=1e-6)
    # three such seeds: the mean's standard error shrinks by sqrt(3)
    assert minimum_detectable_effect([pair] * 3) == pytest.approx(minimum_detectable_effect([pair]) / math.sqrt(3))


def test_verdicts():
    clear = compare("dss", "standard", [seed_pair(100, 40, 5, 55)])
    assert clear.verdict == "better" and clear.low > 0 and clear.p_value < 1e-6
    assert compare("standard", "dss", [seed_pair(100, 5, 40, 55)]).verdict == "worse"
    unclear = compare("dss", "standard", [seed_pair(100, 12, 10, 78)])
    assert unclear.verdict == "no detectable difference" and unclear.low < 0 < unclear.high
    assert unclear.detectable > abs(unclear.difference)


def test_t_quantiles_from_the_table_and_beyond():
    assert t_quantile_975(2) == 4.3027 and t_quantile_975(30) == 2.0423
    # past the table, the expansion: t_31 = 2.0395 (published), then towards the normal 1.96
    assert t_quantile_975(31) == pytest.approx(2.0395, abs=2e-4) and t_quantile_975(31) < T_975[-1]
    assert t_quantile_975(120) == pytest.approx(1.9799, abs=2e-4)
    assert t_quantile_975(60) == pytest.approx(2.0003, abs=5e-4) and t_quantile_975(10_000) == pytest.approx(1.96, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_seed_interval_by_hand():
    # per-seed differences +10, +5, 0 points (200 items each): mean 5, sd 5, half-width 4.3027 * 5 / sqrt(3)
    pairs = [seed_pair(50, 30, 10, 110, seed=0), seed_pair(50, 20, 10, 120, seed=1), seed_pair(50, 10, 10, 130, seed=2)]
    low, high = seed_interval(pairs)
    half = 4.3027 * 5 / math.sqrt(3)
    assert (low, high) == (pytest.approx(5 - half), pytest.approx(5 + half))
    assert seed_interval(pairs[:1]) is None  # one seed: training noise is not measured
    assert t_interval([10.0, 5.0, 0.0]) == (pytest.approx(5 - half), pytest.approx(5 + half))
    assert t_interval([10.0]) is None


def test_verdict_needs_the_seeds_to_agree():
    assert verdict(2.5, 9.5, (-7.1, 19.1)) == "inconsistent over seeds"
    assert verdict(3.0, 10.3, (2.0, 11.4)) == "better"
    assert verdict(-9.0, -1.0, (-12.0, -0.5)) == "worse" and verdict(-9.0, -1.0, (-12.0, 3.0)) != "worse"
    assert verdict(-1.0, 6.0, (1.0, 5.0)) == "no detectable difference"  # the item interval still decides first
    assert verdict(2.5, 9.5) == "better"  # one seed: the item interval alone


def test_three_seeds_that_disagree_are_not_a_win():
    # pooled over items the difference clears 0, but the seeds swing from -2 to +14 points
    pairs = [seed_pair(60, 30, 2, 108, seed=0), seed_pair(60, 12, 16, 112, seed=1), seed_pair(60, 20, 8, 112, seed=2)]
    result = compare("c", "b", pairs)
    assert result.low > 0 and result.seed_low < 0 < result.seed_high
    assert result.verdict == "inconsistent over seeds"
    single = compare("c", "b", pairs[:1])
    assert single.verdict == "better" and single.seed_low is None


def test_t_quantile_80_against_the_published_table():
    # t_0.80 from a printed table (one-tailed 0.20): the expansion is close even at 1 degree of freedom
    published = {1: 1.376, 2: 1.061, 3: 0.978, 5: 0.920, 10: 0.879, 30: 0.854}
    for degrees, value in published.items():
        assert t_quantile_80(degrees) == pytest.approx(value, rel=0.02 if degrees == 1 else 3e-3)
    assert t_quantile_80(100_000) == pytest.approx(0.8416, abs=1e-4)
    with pytest.raises(ValueError):
        t_quantile_80(0)


def test_seed_planning_by_hand():
    # per-seed differences +10, +5, 0 points: spread (SD) 5; three seeds detect (t_0.975,2 + t_0.80,2) * 5 / sqrt 3
    pairs = [seed_pair(50, 30, 10, 110, seed=0), seed_pair(50, 20, 10, 120, seed=1), seed_pair(50, 10, 10, 130, seed=2)]
    assert spread_over_seeds(pairs) == pytest.approx(5.0) and spread_over_seeds(pairs[:1]) is None
    assert seeds_detectable(5.0, 3) == pytest.approx((4.3027 + t_quantile_80(2)) * 5 / math.sqrt(3))
    result = compare("a", "b", pairs)
    assert result.seed_spread == pytest.approx(5.0)
    assert result.seed_detectable == pytest.approx(seeds_detectable(5.0, 3))
    assert compare("a", "b", pairs[:1]).seed_detectable is None
    # more seeds detect less; the same spread with 4x the seeds detects about half
    assert seeds_detectable(5.0, 40) < seeds_detectable(5.0, 10) < seeds_detectable(5.0, 3)
    assert seeds_detectable(5.0, 400) == pytest.approx(seeds_detectable(5.0, 100) / 2, rel=0.01)


def test_seeds_needed_is_the_smallest_that_detects():
    # the README's hand computation: gaps spread by 4.0 points, a 1.9-point lead, needs about 37 seed pairs
    assert seeds_needed(4.0, 1.9) == 37 and seeds_needed(4.0, -1.9) == 37
    for spread, difference in ((2.4, 1.0), (4.0, 1.9), (1.0, 5.0), (10.0, 0.3)):
        needed = seeds_needed(spread, difference)
        assert seeds_detectable(spread, needed) <= difference
        assert needed == 2 or seeds_detectable(spread, needed - 1) > difference
    assert seeds_needed(0.0, 1.0) == 2  # no spread: the fewest seeds a t test takes
    # an absurdly small target gives an absurd but finite answer, at once (about (2.80 * 4 / 1e-12)^2 pairs)
    tiny = seeds_needed(4.0, 1e-12)
    assert seeds_detectable(4.0, tiny) <= 1e-12 and tiny == pytest.approx((2.8015852 * 4 / 1e-12) ** 2, rel=1e-6)
    with pytest.raises(ValueError):
        seeds_needed(4.0, 0.0)


def test_the_verdict_names_what_the_seeds_could_detect():
    assert describe_verdict("no detectable difference", 1.04) == "no detectable difference (could detect ≥ 1.0 points)"
    assert describe_verdict("no detectable difference", 1.04, 2.56) == (
        "no detectable difference (could detect ≥ 1.0 points on these items, ≥ 2.6 over these seeds)")
    assert describe_verdict("better", 1.0, 2.0) == "better"


# -- run folders ----------------------------------------------------------------------------------------

def write_run(folder: Path, method: str, seed: int, correct: list[bool], *, task="svamp", student="tiny-llama",
              fraction=1.0, labels="gold", ids=None, checkpoints=None, sample=None) -> Path:
    """A finished run folder as `stepdistill train` leaves it (only the files the report reads)."""
    folder.mkdir(parents=True)
    ids = ids or [f"test-{index}" for index in range(len(correct))]
    accuracy = 100 * sum(correct) / len(correct)
    settings = {"task": task, "method": method, "labels": labels, "student": student, "fraction": fraction,
                "seed": seed, "out": str(folder), "alpha": 0.5}
    history = [{"loss": 2.0 - step / 10, "label_loss": 1.0 - step / 20, "epoch": step / 4, "step": step,
                **({"rationale_loss": 3.0 - step / 10} if method == "dss" else {})} for step in (1, 2, 3, 4)]
    record = {"status": "done", "settings": settings, "task": task, "method": method, "labels": labels,
              "student": student, "student_parameters": 1000, "fraction": fraction, "seed": seed,
              "protocol": "test protocol <b>", "steps": 4, "best_step": 2, "valid_accuracy": 50.0,
              "test_accuracy": accuracy, "sizes": {"test": len(correct)}, "log_history": history}
    (folder / "run.json").write_text(json.dumps(record))
    rows = [{"id": item, "input": f"question <{item}>", "prediction": "1", "gold": "1", "correct": ok}
            for item, ok in zip(ids, correct)]
    (folder / "predictions_test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    if checkpoints:
        (folder / "checkpoint_scores.jsonl").write_text("".join(json.dumps(row) + "\n" for row in checkpoints))
    if sample:
        (folder / "rationales_sample.jsonl").write_text("".join(json.dumps(row) + "\n" for row in sample))
    return folder


def test_compare_pairs_seeds_and_names_arms(tmp_path, capsys):
    folders = [write_run(tmp_path / f"{method}{seed}", method, seed, [index % divisor == 0 for index in range(60)])
               for method, divisor in (("dss", 2), ("standard", 3)) for seed in (0, 1)]
    comparison = compare_folders(folders)
    assert list(comparison.accuracy) == ["distilling step-by-step", "standard finetuning"]
    assert comparison.accuracy["distilling step-by-step"].std == 0.0  # two seeds: a spread, even if zero
    (pair,) = comparison.pairs
    # dss right on even items, standard on multiples of 3: dss only 20, standard only 10, per seed
    assert (pair.seeds, pair.only_a, pair.only_b) == (2, 40, 20)
    assert pair.difference == pytest.approx(100 * (30 - 20) / 60)
    assert pair.p_value == pytest.approx(mcnemar_exact(40, 20))
    assert main(["compare", *map(str, folders), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pairs"][0]["only_a"] == 40 and len(printed["accuracy"]) == 2


def test_compare_plans_seeds_for_a_target_difference(tmp_path, capsys):
    # dss's edge moves from seed to seed: +5, +10 and 0 points on 60 items
    edges = {0: 3, 1: 6, 2: 0}
    folders = []
    for seed, edge in edges.items():
        standard = [index < 30 for index in range(60)]
        dss = [index < 30 + edge for index in range(60)]
        folders += [write_run(tmp_path / f"dss{seed}", "dss", seed, dss),
                    write_run(tmp_path / f"standard{seed}", "standard", seed, standard)]
    assert main(["compare", *map(str, folders), "--target", "2"]) == 0
    printed = capsys.readouterr().out
    spread = statistics.stdev([5.0, 10.0, 0.0])
    assert f"spread by {spread:.2f} points (SD over 3 seeds)" in printed
    assert f"detects >= {seeds_detectable(spread, 3):.1f} points" in printed
    assert f"a true difference of 2 points needs about {seeds_needed(spread, 2)} seed pairs" in printed
    assert main(["compare", *map(str, folders), "--target", "-2", "--json"]) == 0
    (pair,) = json.loads(capsys.readouterr().out)["pairs"]
    assert pair["seed_pairs_needed"] == seeds_needed(spread, 2) and pair["target_difference"] == 2
    assert pair["seed_spread"] == pytest.approx(spread)
    with pytest.raises(SystemExit) as stop:
        main(["compare", *map(str, folders), "--target", "0"])
    assert stop.value.code == 2 and "non-zero" in capsys.readouterr().err
    # one seed an arm: no spread to plan from, and no seed-noise lines
    assert main(["compare", str(folders[0]), str(folders[1])]) == 0
    assert "Seed noise" not in capsys.readouterr().out
    assert main(["compare", str(folders[0]), str(folders[1]), "--target", "2"]) == 0  # asked for a plan: why none
    assert "no pair of arms has two or more seeds, so there is no spread" in capsys.readouterr().out


def test_compare_errors_name_the_runs(tmp_path, capsys):
    run_a = write_run(tmp_path / "a", "dss", 0, [True, False, True])
    run_b = write_run(tmp_path / "b", "standard", 0, [True, True, True], ids=["x", "y", "z"])
    with pytest.raises(DataError, match=r"a and .*b were scored on different test items"):
        compare_folders([run_a, run_b])
    empty = tmp_path / "empty"
    write_run(empty, "standard", 0, [True, False, True])
    (empty / "predictions_test.jsonl").unlink()
    assert main(["compare", str(run_a), str(empty)]) == 2
    assert "empty: no predictions_test.jsonl" in capsys.readouterr().err
    same = write_run(tmp_path / "c", "dss", 1, [True, False, True])
    with pytest.raises(DataError, match="differ only in seed"):
        compare_folders([run_a, same])


def test_compare_labels_arms_by_the_setting_that_differs(tmp_path):
    run_a = write_run(tmp_path / "a", "dss", 0, [True, False, True, True])
    run_b = write_run(tmp_path / "b", "dss", 0, [True, False, False, False])
    record = json.loads((run_b / "run.json").read_text())
    record["settings"]["alpha"] = 0.8
    (run_b / "run.json").write_text(json.dumps(record))
    assert list(compare_folders([run_a, run_b]).accuracy) == ["distilling step-by-step (alpha=0.5)",
                                                              "distilling step-by-step (alpha=0.8)"]


def test_alpha_names_dss_arms_only_and_standard_runs_stay_one_arm(tmp_path):
    """alpha is read by the two-task loss alone: standard runs from an alpha 0.5 and an alpha 0.8 sweep are one arm."""
    runs = [write_run(tmp_path / f"{method}{alpha}", method, seed, [True, False, seed == 1, alpha == 0.8])
            for method, alpha, seed in (("dss", 0.5, 0), ("dss", 0.8, 0), ("standard", 0.5, 0), ("standard", 0.8, 1))]
    for folder, alpha in zip(runs, (0.5, 0.8, 0.5, 0.8)):
        record = json.loads((folder / "run.json").read_text())
        record["settings"]["alpha"] = alpha
        (folder / "run.json").write_text(json.dumps(record))
    assert compare_folders(runs).runs == {"distilling step-by-step (alpha=0.5)": [str(runs[0])],
                                          "distilling step-by-step (alpha=0.8)": [str(runs[1])],
                                          "standard finetuning": [str(runs[2]), str(runs[3])]}


def test_input_format_defines_an_arm_and_older_runs_are_prefix(tmp_path):
    """Runs made before --input-format trained in prefix format: one arm with new prefix runs; chat is another."""
    runs = [write_run(tmp_path / name, "dss", seed, [True, False, True, seed == 1])
            for name, seed in (("old", 0), ("prefix", 1), ("chat", 0), ("chat1", 1))]
    for folder, input_format in ((runs[1], "prefix"), (runs[2], "chat"), (runs[3], "chat")):
        record = json.loads((folder / "run.json").read_text())
        record["settings"]["input_format"] = input_format
        (folder / "run.json").write_text(json.dumps(record))
    comparison = compare_folders(runs)
    assert comparison.runs == {"distilling step-by-step (input_format=prefix)": [str(runs[0]), str(runs[1])],
                               "distilling step-by-step (input_format=chat)": [str(runs[2]), str(runs[3])]}


# -- report -----------------------------------------------------------------------------------------------

def test_summarize_against_hand_count():
    rows = [{"task": "svamp", "method": "dss", "labels": "gold", "student": "tiny-llama", "fraction": 1.0, "seed": seed,
             "test_accuracy": accuracy, "valid_accuracy": 40.0 + seed, "test_items": 200}
            for seed, accuracy in enumerate([30.0, 35.0, 40.0])]
    rows.append({**rows[0], "method": "standard", "test_accuracy": 25.0})
    dss, standard = summarize(rows)
    assert (dss["name"], dss["seeds"], dss["test_mean"], dss["valid_mean"]) == ("distilling step-by-step", 3, 35.0, 41.0)
    assert dss["test_std"] == pytest.approx(5.0)
    assert (dss["test_low"], dss["test_high"]) == pytest.approx(wilson_interval(0.35, 200))
    assert standard["seeds"] == 1 and standard["test_std"] is None  # one seed: no spread to show


def test_display_names():
    assert task_name("jsonl:/home/me/data/tickets") == "tickets" and task_name("svamp") == "svamp"
    assert student_name("/models/smollm2/SmolLM2-135M-Instruct-Q8_0.gguf") == "SmolLM2-135M-Instruct-Q8_0"
    assert student_name("google/flan-t5-small") == "google/flan-t5-small" and student_name("tiny-t5") == "tiny-t5"


def make_sweep(out: Path, task: str) -> None:
    """One fraction, two methods, two seeds; selection files and a rationale sample on the dss runs."""
    rows = []
    checkpoints = [{"step": 2, "epoch": 0.5, "valid_accuracy": 60.0, "test_accuracy": 40.0},
                   {"step": 4, "epoch": 1.0, "valid_accuracy": 50.0, "test_accuracy": 55.0}]
    sample = [{"input": "<script>alert(1)</script>", "rationale": "2 + 2 = 4.", "label": "4"}]
    for method, divisor in (("dss", 2), ("standard", 4)):
        for seed in (0, 1):
            name = f"{method}-s{seed}"
            extra = {"checkpoints": checkpoints, "sample": sample} if method == "dss" else {}
            write_run(out / "runs" / name, method, seed, [index % divisor == 0 for index in range(40)],
                      task=task, **extra)
            record = json.loads((out / "runs" / name / "run.json").read_text())
            rows.append({"run": name, **{key: record[key] for key in ("task", "method", "labels", "student",
                         "fraction", "seed", "best_step", "protocol", "steps", "valid_accuracy", "test_accuracy",
                         "student_parameters")}, "test_items": 40})
    (out / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_report_on_hand_written_sweep(tmp_path):
    out = tmp_path / "sweep"
    make_sweep(out, f"jsonl:{tmp_path}/my-tickets")
    results_before = (out / "results.jsonl").read_bytes()
    write_report(out)
    assert (out / "results.jsonl").read_bytes() == results_before  # read, never rewritten
    summary = json.loads((out / "summary.json").read_text())
    (pair,) = summary["paired"]
    assert (pair["a"], pair["b"], pair["seeds"], pair["only_a"], pair["only_b"]) == (
        "distilling step-by-step", "standard finetuning", 2, 20, 0)  # even items vs multiples of 4
    (selection,) = summary["selection"]
    assert (selection["chosen_test"], selection["oracle_test"], selection["last_test"]) == (40.0, 55.0, 55.0)
    md = (out / "report.md").read_text()
    assert "## Paired comparisons" in md and "| my-tickets |" in md and str(tmp_path) not in md
    assert "Selection noise" in md and "better" in md
    # two seeds with the same gap: a spread of 0, stated with what these seeds detect
    assert "the per-seed differences spread by 0.00 points (SD over 2 seeds)" in md
    pngs = sorted(path.name for path in out.glob("*.png"))
    assert not any(name.startswith(("fraction_", "size_")) for name in pngs)  # one fraction, one size: no line
    assert any(name.startswith("paired_") for name in pngs) and any(name.startswith("losses_") for name in pngs)
    assert any(name.startswith("checkpoints_") for name in pngs)
    html = (out / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html  # autoescaped
    assert "test protocol &lt;b&gt;" in html and html.count("data:image/png;base64,") == len(pngs)


def test_one_seed_rows_show_no_zero_spread(tmp_path):
    out = tmp_path / "sweep"
    make_sweep(out, "svamp")
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (out / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows if row["seed"] == 0))
    write_report(out)
    md = (out / "report.md").read_text()
    assert "± 0.00" not in md and "± " not in md.split("## Paired")[0].split("| valid % |")[1]
    assert "± 0.00" not in (out / "report.html").read_text()


def test_report_without_results_is_a_clear_error(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(DataError, match="results.jsonl: not found"):
        write_report(tmp_path)


def test_report_on_results_without_test_items(tmp_path):
    """results.jsonl written before test_items existed: the interval comes from each run's record."""
    out = tmp_path / "sweep"
    make_sweep(out, "svamp")
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (out / "results.jsonl").write_text("".join(json.dumps({k: v for k, v in row.items() if k != "test_items"}) + "\n"
                                               for row in rows))
    write_report(out)
    results = json.loads((out / "summary.json").read_text())["results"]
    bounds = [bound for entry in results for bound in (entry["test_low"], entry["test_high"])]
    assert bounds == pytest.approx([*wilson_interval(0.5, 40), *wilson_interval(0.25, 40)])


def test_report_shows_hinted_rationales_tagged(tmp_path):
    """The teacher's own rationales come from the first run with a sample, hinted ones from the first run that
    trained on any (here a later one), each shown as what it is."""
    out = tmp_path / "sweep"
    make_sweep(out, "svamp")
    hinted = [{"input": f"hinted question {index}", "rationale": f"because {index}", "label": str(index),
               "hinted": True} for index in range(4)]
    own = [{"input": "own question", "rationale": "the teacher's own reasoning", "label": "7", "hinted": False}]
    (out / "runs" / "dss-s1" / "rationales_sample.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in own + hinted))
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    shown = training_rationales(rows, out / "runs")
    assert [(row["rationale"], row["hinted"]) for row in shown] == [
        ("2 + 2 = 4.", False), ("because 0", True), ("because 1", True), ("because 2", True)]
    write_report(out)
    html = (out / "report.html").read_text()
    assert html.count("hinted rationale (the teacher was given the gold label)") == 3
    assert "because 2" in html and "because 3" not in html and "own question" not in html


def test_arms_fill_settings_a_run_predates():
    """An older run without a setting added later (here `hinted`) trained as the default does now: it is the
    same configuration as a new run that says so, and labels name only what really differs."""
    from stepdistill.experiments.compare import arms_of
    from stepdistill.experiments.runs import RunScores

    def run(seed, method, **settings):
        record = {"seed": seed, "method": method, "labels": "gold",
                  "settings": {"seed": seed, "method": method, "alpha": 0.5, **settings}}
        return RunScores(Path(f"run-{method}-{seed}"), record, {"item": True})

    runs = [run(0, "dss"), run(1, "dss", hinted="include", overwrite=True),
            run(0, "dss", rationales="right-only", hinted="include")]
    arms = arms_of(runs)
    assert sorted(arms) == ["distilling step-by-step (rationales=None)",
                            "distilling step-by-step (rationales=right-only)"]
    assert [r.seed for r in arms["distilling step-by-step (rationales=None)"]] == [0, 1]


def test_the_last_checkpoints_items_come_from_its_own_row(tmp_path):
    """A resumed run may repeat a step (the later line wins); runs from before `test_right` give None."""
    rows = [{"step": 2, "valid_accuracy": 50.0, "test_accuracy": 50.0, "test_right": ["test-0"]},
            {"step": 4, "valid_accuracy": 25.0, "test_accuracy": 25.0, "test_right": ["test-0", "test-1"]},
            {"step": 4, "valid_accuracy": 25.0, "test_accuracy": 75.0, "test_right": ["test-1", "test-2", "test-3"]}]
    folder = write_run(tmp_path / "new", "dss", 0, [True, False, False, False], checkpoints=rows)
    items = [f"test-{index}" for index in range(4)]
    assert last_checkpoint_correctness(folder, items) == {"test-0": False, "test-1": True, "test-2": True,
                                                          "test-3": True}
    old = write_run(tmp_path / "old", "dss", 0, [True, False], checkpoints=[{"step": 2, "test_accuracy": 50.0}])
    assert last_checkpoint_correctness(old, items[:2]) is None
    assert last_checkpoint_correctness(write_run(tmp_path / "none", "dss", 0, [True]), items[:1]) is None
