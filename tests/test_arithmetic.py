"""arithmetic.check_arithmetic: the `a op b = c` statements of a rationale, and the ones that are wrong."""

import pytest

from stepdistill.arithmetic import check_arithmetic, numbers_in


@pytest.mark.parametrize("text", [
    "Luke scored 84 points after 2 rounds. 84 / 2 = 42.",
    "So she has 7 * 36 pencils and 7 * 30 crayons. 7 * 30 is 210.",
    "Lewis earns $133 in 19 weeks. So he earns $133 / 19 = $7 each week.",
    "10 / 3 = 3.33, so about 3 each.",                      # written at its own precision
    "Each box holds 3 x 4 = 12 eggs, 12 × 2 = 24 in two.",  # x and × multiply
    "1,000 - 250 = 750 and (2 + 3) * 4 equals 20.",         # thousands separators, parentheses
    "It costs 5. 3 + 4 = 7 in all.",                         # a sentence's end is not part of the sum
    "5 - 8 = -3.",
])
def test_right_sums_are_not_slips(text):
    check = check_arithmetic(text)
    assert check.statements >= 1 and check.slips == () and check.consistent


@pytest.mark.parametrize("text, slip", [
    ("Dan has 99 - 3 = 98 dollars left.", "99 - 3 = 98"),
    ("So he earns $133 / 19 = $6.95 each week.", "133 / 19 = 6.95"),
    ("So it will take 369 / 17 = 22 seconds.", "369 / 17 = 22"),         # rounded to a whole number: a slip
    ("Frank read 22 * 569 = 12,598 pages.", "22 * 569 = 12,598"),
    ("1091 * (28 + 939) is 113,008.", "1091 * (28 + 939) = 113,008"),
    ("The room is 7 * 14.0 = 94 feet wide (so 94 / 2 = 47).", "7 * 14.0 = 94"),
])
def test_wrong_sums_are_named(text, slip):
    check = check_arithmetic(text)
    assert check.slips == (slip,) and not check.consistent


@pytest.mark.parametrize("text", [
    "The answer is (249.0 / 3.0).",
    "1/3 of 120 is 40.",            # `of`: not a sum this reads
    "She has 5 apples.",
    "",
])
def test_text_with_no_sum_has_no_statements(text):
    check = check_arithmetic(text)
    assert check.statements == 0 and not check.consistent


def test_every_statement_is_checked():
    check = check_arithmetic("31 * 6 = 186 pencils. 186 / 19 = 9 rows. 9 + 1 = 10.")
    assert check.statements == 3 and check.slips == ("186 / 19 = 9",)


def test_statements_must_compute_with_the_questions_numbers():
    question = "Zachary did 58 push-ups and 46 crunches. How many more push-ups than crunches did he do?"
    assert check_arithmetic("He did 58 - 46 = 12 more.").uses_numbers_of(question)
    assert not check_arithmetic("The book has 31 * 61 = 1891 pages.").uses_numbers_of(question)  # a copied exemplar
    assert not check_arithmetic("No sums here.").uses_numbers_of(question)
    assert numbers_in("It costs $1,200.50, or 3 payments of 400.") == {1200.5, 3.0, 400.0}
