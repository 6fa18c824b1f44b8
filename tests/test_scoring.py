import pytest

from stepdistill.scoring import (MAX_NESTING, EvalError, accuracy, equation_match, evaluate_arithmetic,
                                 exact_match, normalize_label, numeric_match)


@pytest.mark.parametrize("text,value", [
    ("( 84.0 / 2.0 )", 42.0),
    ("( ( 17.0 + 15.0 ) + 2.0 )", 34.0),
    ("(10 - (6 + 3))", 1.0),
    ("-3 * -2", 6.0),
    ("2 + 3 * 4", 14.0),
    ("(2 + 3) * 4", 20.0),
    ("7 / 2", 3.5),
    ("10 - 4 - 3", 3.0),
    ("-(2 + 3)", -5.0),
    (".5 + 1.", 1.5),
])
def test_evaluator_on_valid_equations(text, value):
    assert evaluate_arithmetic(text) == pytest.approx(value)


@pytest.mark.parametrize("attack", [
    "__import__('os').system('id')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd').read()",
    "2 ** 1000000",
    "9**9**9",
    "x + 1",
    "lambda: 1",
    "1; 2",
    "1e308 * 10",
    "[1, 2]",
])
def test_evaluator_refuses_anything_but_arithmetic(attack):
    with pytest.raises(EvalError):
        evaluate_arithmetic(attack)
    assert equation_match(attack, "( 1.0 )") is False


def test_evaluator_bounds_size_and_depth():
    with pytest.raises(EvalError, match="longer"):
        evaluate_arithmetic("1+" * 10_000 + "1")
    with pytest.raises(EvalError, match="nested"):
        evaluate_arithmetic("(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1))
    with pytest.raises(EvalError, match="nested"):
        evaluate_arithmetic("-" * 200 + "1")
    with pytest.raises(EvalError, match="nested"):  # a `+` sign recursed without counting
        evaluate_arithmetic("+" * 200 + "1")
    assert evaluate_arithmetic("-+-1") == 1.0
    assert evaluate_arithmetic("(" * MAX_NESTING + "1" + ")" * MAX_NESTING) == 1.0


def test_division_by_zero_and_overflow_are_wrong_answers_not_crashes():
    with pytest.raises(EvalError, match="division by zero"):
        evaluate_arithmetic("5 / (2 - 2)")
    assert equation_match("5 / 0", "( 5.0 )") is False
    big = "*".join(["1" + "0" * 60] * 6)  # 1e360: not finite as a float
    with pytest.raises(EvalError):
        evaluate_arithmetic(big)
    assert equation_match(big, "1") is False


def test_equation_match_by_value():
    assert equation_match("(84 / 2)", "( 84.0 / 2.0 )")
    assert equation_match("(2 * 21)", "( 84.0 / 2.0 )")
    assert equation_match("(0.1 + 0.2)", "(0.3)")
    assert not equation_match("(84 - 2)", "( 84.0 / 2.0 )")
    assert not equation_match(None, "(1)")
    assert not equation_match("", "(1)")
    assert not equation_match("(1 +", "(1)")


def test_label_normalisation_and_exact_match():
    assert normalize_label("  wooded   area. ") == "wooded area"
    assert normalize_label("neutral..") == "neutral"
    assert normalize_label(None) == ""
    assert exact_match("wooded area.", "wooded area")
    assert not exact_match("Wooded Area", "wooded area")  # case kept, as the paper scores
    assert not exact_match(None, "x")
    assert not exact_match("x", None)


def test_numeric_match_and_accuracy():
    assert numeric_match("The total is 1,200 apples.", "1200")
    assert numeric_match("Either 56,67", "67")  # not 5667: a comma separates thousands only before three digits
    assert numeric_match("42.0", "42")
    assert not numeric_match("no number", "42")
    assert accuracy([True, False, True, True]) == 75.0
    assert accuracy([]) == 0.0
