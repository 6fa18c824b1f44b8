from stepdistill.parsing import (parse_answer_line, parse_equation, parse_generic, parse_multiple_choice,
                                 parse_so_the_answer_is)


def test_cqa_format_and_cut_at_next_question():
    p = parse_multiple_choice("Beavers build dams from wood. So the answer is (c) wooded area.\n\nQ: What is 2?\nA: x. So the answer is (a) b.")
    assert p.ok and p.label == "wooded area" and p.rationale == "Beavers build dams from wood."


def test_cqa_failures_are_values_with_reasons():
    p = parse_multiple_choice("I think it is wooded area.")
    assert not p.ok and p.label is None and "So the answer is" in p.error and p.rationale
    p = parse_multiple_choice("Because. So the answer is wooded area.")
    assert not p.ok and "choice letter" in p.error
    p = parse_multiple_choice("Because. So the answer is (c) .")
    assert not p.ok and "empty" in p.error


def test_svamp_format():
    p = parse_equation("Luke scored 84 points in 2 rounds. 84 / 2 = 42. The answer is (84 / 2).\n\nQ: next")
    assert p.ok and p.label == "(84 / 2)" and p.rationale.startswith("Luke scored")
    p = parse_equation("He has (3 + 4) apples. The answer is ((3 + 4) * 2).")
    assert p.label == "((3 + 4) * 2)" and p.rationale == "He has (3 + 4) apples."


def test_svamp_failures():
    assert parse_equation("84 / 2 = 42.").error == "no 'The answer is'"
    assert "parenthesised" in parse_equation("So. The answer is 42.").error
    assert not parse_equation("").ok


def test_anli_format_and_lowercase_cue_is_not_the_answer():
    p = parse_so_the_answer_is("The premise says London. So the answer is entailment.\n\nPremise: x\nHypothesis: y")
    assert p.ok and p.label == "entailment" and p.rationale == "The premise says London."
    assert not parse_so_the_answer_is("so the answer is entailment.").ok
    p = parse_so_the_answer_is("Hmm. So the answer is maybe.")
    assert not p.ok and "not one of" in p.error


def test_esnli_format_and_truncated_tail():
    p = parse_answer_line("The choir sings.\nAnswer: neutral\n\nPremise: next one")
    assert p.ok and p.label == "neutral" and p.rationale == "The choir sings."
    p = parse_answer_line("A man is a person.\nAnswer: contradiction\n\npremise")
    assert p.ok and p.label == "contradiction"
    assert parse_answer_line("No answer here").error == "no 'Answer:' line"


def test_generic_format():
    assert parse_generic("Blue light scatters. So the answer is blue.").label == "blue"
    assert parse_generic("Reasoning.\nAnswer: 42\n\nQ: more").label == "42"
    assert not parse_generic("nothing").ok
