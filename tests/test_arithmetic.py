"""arithmetic.check_arithmetic: the `a op b = c` statements of a rationale, and the ones that are wrong;
arithmetic.equation_error: what is wrong with an equation answer."""

import pytest

from stepdistill.arithmetic import EQUATION_ERRORS, answer_value, check_arithmetic, equation_error, numbers_in


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


def test_degenerate_completions_are_read_in_one_pass():
    # a counting list or a long digit run with no `=` after it: the backtracking pattern took 28 s on 1,000
    # digits and grows with the cube of the length (hours here); the possessive one reads each in well under 1 s
    for text in ("1" * 3000, ", ".join(map(str, range(1, 700))), "2 + " * 700 + "2"):
        assert check_arithmetic(text).statements == 0
    assert check_arithmetic("7 " * 1000 + "+ 5 = 12.").statements == 0  # `7 7 ... + 5` does not evaluate


def test_a_result_too_large_for_a_float_is_a_slip_not_a_match():
    check = check_arithmetic("3 * 4 = 1" + "0" * 309 + ".")
    assert check.statements == 1 and not check.consistent


def test_an_answer_the_scorer_cannot_read_is_not_an_equation():
    assert equation_error("( 1,000 + 2.0 )", "( 1000.0 + 2.0 )", "1,000 and 2") == "not an equation"


def test_a_comma_between_numbers_is_not_a_thousands_separator():
    # a student wrote "56,67": numbers_in raised ValueError on it, stopping an analysis of model output
    assert numbers_in("He said 56,67 and then 1,000,000 or 1,2345.") == {56.0, 67.0, 1_000_000.0, 1.0, 2345.0}
    assert check_arithmetic("So 2,3 + 4 = 56,67 and 5 + 6 = 11.").slips == ()


@pytest.mark.parametrize("rationale", [
    "Jake has 3 - 2 = 1 more peach.",
    "The waiter had 12 - 15 = -3 customers. Then -3 + 14 = 11.",     # a negative result carried on
    "Each box holds 6 * 5 = 30. So 30 + 4 = 34 in all.",             # a result carried to the next step
    "So 1,200 / 4 = 300 each.",
])
def test_a_chain_of_right_sums_from_the_questions_numbers_derives_the_answer(rationale):
    question = "A waiter had 12 customers; 15 left, 14 came. Jake has 3, Steven 2. 6 boxes of 5 and 4 more. 1,200 in 4."
    answer = {"1 more": 1, "14 = 11": 11, "34": 34, "300": 300}
    value = next(v for k, v in answer.items() if k in rationale)
    assert check_arithmetic(rationale).derives(question, value)


@pytest.mark.parametrize("rationale, why", [
    ("So 9 * 8.0 = 72.0.", "right sum with a number of the question, but not the answer"),
    ("The book has 31 * 61 = 1891 pages. So 1891 - 1887 = 4.", "reaches 4 from numbers not in the question"),
    ("8 / 2 = 5.", "a wrong sum that is written as the answer"),
    ("Half of 8 is 4.", "no sum at all"),
])
def test_sums_that_do_not_get_from_the_question_to_the_answer_do_not_derive_it(rationale, why):
    question = "Dan has 8 apples and 9 pears and shares the apples between 2 friends. How many apples each?"
    assert not check_arithmetic(rationale).derives(question, 4.0), why
    assert check_arithmetic("So 8 / 2 = 4.").derives(question, 4.0)


def test_the_answer_of_a_gold_label_is_its_value():
    assert answer_value("( 84.0 / 2.0 )") == 42.0
    assert answer_value("1,250") == 1250.0
    assert answer_value("about 7 apples") == 7.0
    assert answer_value("none") is None


QUESTION = ("Jack received 3 emails in the afternoon, 6 emails in the morning and some more in the evening. "
            "If he received a total of 10 emails in the day, how many emails did jack receive in the evening?")
GOLD = "( 10.0 - ( 6.0 + 3.0 ) )"


@pytest.mark.parametrize("prediction, error", [
    (GOLD, "right"),
    ("( ( 10.0 - 6.0 ) - 3.0 )", "right"),              # another equation with the same value is right
    ("( 10 - ( 6 + 3 ) )", "right"),                     # 10 and 10.0 are one number
    ("", "not an equation"),
    ("ten minus nine", "not an equation"),
    ("( 10.0 - ( 6.0 + 4.0 ) )", "numbers not in the question"),
    ("( 10.0 - 6.0 )", "other numbers of the question"),  # one number too few
    ("( 10.0 - ( 6.0 + 6.0 ) )", "other numbers of the question"),  # 6 twice: numbers count as a multiset
    ("( 10.0 + ( 6.0 + 3.0 ) )", "operators"),
    ("( 10.0 - ( 6.0 - 3.0 ) )", "operators"),
    ("( ( 6.0 + 3.0 ) - 10.0 )", "order"),
])
def test_equation_errors_name_the_first_difference(prediction, error):
    assert error in EQUATION_ERRORS
    assert equation_error(prediction, GOLD, QUESTION) == error


def test_a_sign_is_not_an_operator():
    assert equation_error("( -3.0 * 2.0 )", "( 3.0 - 2.0 )", "Take 3 and 2.") == "operators"
    assert equation_error("( 2.0 - -3.0 )", "( 2.0 - 3.0 )", "Take 3 and 2.") == "order"
