"""benchmarks/restated_rationales.py: the teacher-free rationales of the distractor test (issue 13) name the
gold's quantities and nothing else of the answer."""

import pytest

from support.scripts import load_script

restated = load_script("restated_rationales")


def test_a_distractor_sentence_is_left_out_and_the_needed_numbers_named_in_question_order():
    question = ("Josh had 4 marbles in his collection. He lost 16 marbles and found 8 new ones.\n"
                "How many more marbles did he lose than those he found?")
    assert restated.restated_rationale(question, "( 16.0 - 8.0 )") == \
        "He lost 16 marbles and found 8 new ones. The question needs 16 and 8."


def test_three_numbers_are_listed_and_the_body_gets_its_full_stop():
    question = "There were 106 dollars. There were 26 dollars left. If she spent 49 dollars\nHow much?"
    assert restated.restated_rationale(question, "( ( 106.0 - 26.0 ) - 49.0 )") == (
        "There were 106 dollars. There were 26 dollars left. If she spent 49 dollars. "
        "The question needs 106, 26 and 49.")


def test_numbers_are_written_as_the_question_writes_them_and_never_twice():
    assert restated.written_numbers("He had 1,200 cards and 3 boxes, then 3 more", frozenset({1200.0, 3.0})) == \
        ["1,200", "3"]


def test_no_operation_or_result_is_stated():
    rationale = restated.restated_rationale("Luke scored 84 points in 2 rounds.\nHow many per round?",
                                            "( 84.0 / 2.0 )")
    assert "42" not in rationale and "/" not in rationale


def test_the_control_names_every_number_and_keeps_every_sentence_with_one():
    question = ("Josh had 4 marbles in his collection. He lost 16 marbles and found 8 new ones.\n"
                "How many more marbles did he lose than those he found?")
    assert restated.restated_rationale(question, "( 16.0 - 8.0 )", all_numbers=True) == (
        "Josh had 4 marbles in his collection. He lost 16 marbles and found 8 new ones. "
        "The question gives 4, 16 and 8.")


def test_the_copy_floor_is_the_question_word_for_word_and_the_other_modes_are_the_restatements():
    question = "Josh had 4 marbles. He lost 16 marbles and found 8.\nHow many more did he lose than he found?"
    gold = "( 16.0 - 8.0 )"
    assert restated.rationale_for(question, gold, "copy") == question
    assert restated.rationale_for(question, gold, "needed") == restated.restated_rationale(question, gold)
    assert restated.rationale_for(question, gold, "all") == restated.restated_rationale(question, gold, True)


def test_an_unknown_mode_is_refused_not_read_as_the_needed_quantities():
    with pytest.raises(ValueError, match="unknown mode 'every'"):
        restated.rationale_for("He had 4 apples.", "( 4.0 )", "every")
