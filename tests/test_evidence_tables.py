"""benchmarks/evidence_tables.py's multiple-choice analysis (issue 13, CQA): which choice an answer picks, the
choice it reads most like, and the share of answers at each position; and the per-seed last-checkpoint pairs."""

import json

import pytest

from support.scripts import load_script

tables = load_script("evidence_tables")

QUESTION = ("A farmer sees a weasel in the woods, where is the farmer?\nAnswer Choices:\n(a) chicken coop\n(b) beach\n"
            "(c) fairytale\n(d) great outdoors\n(e) corn fields")
CHOICES = ["chicken coop", "beach", "fairytale", "great outdoors", "corn fields"]


def test_an_answer_picks_the_choice_it_names_exactly_else_none():
    assert tables.picked_position("great outdoors", QUESTION) == "d"
    assert tables.picked_position("chicken coop", QUESTION) == "a"
    assert tables.picked_position("the great outdoors", QUESTION) == tables.NOT_A_CHOICE
    assert tables.picked_position(None, QUESTION) == tables.NOT_A_CHOICE
    assert tables.picked_position("beach", "Tom has 3 apples.") == tables.NOT_A_CHOICE  # no choices at all


def test_nearest_choice_takes_the_closest_text_and_the_first_of_equals():
    assert tables.nearest_choice("the great outdoors", CHOICES) == "great outdoors"
    assert tables.nearest_choice("Corn Field", CHOICES) == "corn fields"  # case ignored
    assert tables.nearest_choice("getting cold", ["get cold", "getting colder", "death"]) == "getting colder"
    assert tables.nearest_choice("", ["x", "y"]) == "x"  # nothing to go on: the first
    assert tables.nearest_choice("beach", []) is None


def test_position_shares_count_each_letter_and_the_answers_outside_the_choices():
    rows = [{"input": QUESTION, "prediction": answer, "gold": "great outdoors"}
            for answer in ("great outdoors", "beach", "beach", "woods")]
    assert tables.position_shares(rows, "prediction") == [0.0, 50.0, 0.0, 25.0, 0.0, 25.0]
    assert tables.position_shares(rows, "gold") == [0.0, 0.0, 0.0, 100.0, 0.0, 0.0]


def test_choices_on_a_task_without_choices_is_one_clear_error(tmp_path):
    row = {"id": "1", "input": "Tom has 3 apples.\nHow many?", "prediction": "( 3.0 )", "gold": "( 3.0 )"}
    (tmp_path / "predictions_test.jsonl").write_text(json.dumps(row) + "\n")
    run = tables.RunScores(tmp_path, {}, {"1": True})
    arm = tables.Arm("standard", tmp_path, "standard", 1.0, None, finished={0: run})
    with pytest.raises(SystemExit, match=r"predictions_test.jsonl: --choices needs a multiple-choice task"):
        tables.require_choices([arm])


def test_chosen_rescores_a_run_from_its_choice_predictions_and_names_a_missing_file(tmp_path):
    rows = [{"id": "1", "prediction": "beach", "gold": "beach", "correct": True},
            {"id": "2", "prediction": "beach", "gold": "fairytale", "correct": False}]
    run = tables.RunScores(tmp_path, {}, {"1": False, "2": True})  # as generated: the other way round
    arm = tables.Arm("dss", tmp_path, "dss", 1.0, None, finished={0: run})
    with pytest.raises(SystemExit, match=r"predictions_test_choices.jsonl: not found; write it with `stepdistill eval"):
        tables.require_chosen([arm])
    (tmp_path / tables.CHOICE_PREDICTIONS).write_text("".join(json.dumps(row) + "\n" for row in rows))
    tables.require_chosen([arm])
    assert tables.answered_by_choosing(run).correct == {"1": True, "2": False}
    assert run.correct == {"1": False, "2": True}  # the generated scores stay as they were


def last_checkpoint_run(folder, chosen: dict[str, bool], right_at_last: list[str]) -> "tables.RunScores":
    folder.mkdir()
    (folder / "checkpoint_scores.jsonl").write_text(
        json.dumps({"step": 1, "test_accuracy": 0.0, "test_right": []}) + "\n"
        + json.dumps({"step": 2, "test_accuracy": 50.0, "test_right": right_at_last}) + "\n")
    return tables.RunScores(folder, {"seed": 3}, chosen)


def test_last_checkpoint_per_seed_counts_the_discordant_items_of_the_last_checkpoint(tmp_path):
    items = {str(index): False for index in range(10)}
    dss = last_checkpoint_run(tmp_path / "dss", {**items, "0": True}, ["0", "1", "2", "3"])
    standard = last_checkpoint_run(tmp_path / "standard", dict(items), ["3", "4"])
    arm = tables.Arm("dss", tmp_path, "dss", 1.0, None, finished={3: dss})
    baseline = tables.Arm("standard", tmp_path, "standard", 1.0, None, finished={3: standard})
    (row,) = tables.last_checkpoint_seed_table([(arm, baseline, [3], None)])[2:]
    # at the last checkpoint: dss right on 0-3, standard on 3-4; the chosen checkpoints' scores are not used
    # McNemar on 3 against 1 discordant items: 2 * (1 + 4) / 16
    assert row.startswith("| dss | 3 | 40.0 | 20.0 | +20.0 | [") and row.endswith("| 3 / 1 | 0.625 |")
    (standard.folder / "checkpoint_scores.jsonl").write_text(json.dumps({"step": 2, "test_accuracy": 50.0}) + "\n")
    (row,) = tables.last_checkpoint_seed_table([(arm, baseline, [3], None)])[2:]
    assert "(items not recorded)" in row
