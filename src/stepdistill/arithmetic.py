"""Arithmetic slips in a rationale: `a op b = c` (or `is c`, `equals c`) where c is not the value of `a op b`.

A hinted rationale (extract --rationalize) is kept when it ends on the gold answer, which the hint gave
away: a weak teacher often gets there through wrong arithmetic ("7 * 36 = 210. The answer is (7 * 30)").
Checking the rationale's own statements is a self-consistency filter that needs no second request; so is
checking that they compute with the question's own numbers (`uses_numbers_of`), and that they get from
those numbers to the answer (`derives`): "9 * 8.0 = 72.0." is right arithmetic with a number of the question,
but it is not how 8 / 2 = 4 is found.

Pure text work, no eval: each left side is computed by scoring.evaluate_arithmetic (+ - * / and
parentheses only). A statement counts when its left side holds at least one operator between numbers;
`1/3 of 120 is 40` and `she has 5 apples = 5` are not statements this checks. A result written with fewer
decimals is compared at its own precision (`10 / 3 = 3.33` is right).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .scoring import WRITTEN_NUMBER, EvalError, arithmetic_tokens, equation_match, evaluate_arithmetic, last_number

NUMBER = r"-?" + WRITTEN_NUMBER
# the left side: numbers, operators, parentheses, spaces and `$` only (at least one digit), ending right before
# `=` / `is` / `equals`. Possessive (`*+`): a long run of them with no `=` after it fails in one pass per start
# instead of backtracking over every split (cubic: 28 s on 1,000 digits of a degenerate completion).
STATEMENT = re.compile(r"(?P<left>(?=[.,$()+\-*/ ]*+\d)[\d.,$()+\-*/ ]*+)\s*(?:=|\bis\b|\bequals\b)\s*\$?(?P<right>"
                       + NUMBER + r")(?![\d,]*\.?\d)")
TIMES = re.compile(r"(?<=\d)\s*[x×]\s*(?=[\d(])")  # `3 x 4`, `3×4`: multiplication
OPERATOR_BETWEEN_NUMBERS = re.compile(r"\d[\s)]*[-+*/][\s(]*-?\d")


@dataclass(frozen=True)
class Step:
    """One `a op b = c` statement."""
    left: str  # `a op b`
    written: str  # c, as written
    value: float  # what the left side comes to

    @property
    def text(self) -> str:
        return f"{self.left} = {self.written}"

    @property
    def operands(self) -> frozenset[float]:
        return numbers_in(self.left)

    @property
    def right(self) -> bool:
        return _same(self.value, self.written)


@dataclass(frozen=True)
class ArithmeticCheck:
    steps: tuple[Step, ...] = ()  # the `a op b = c` statements found, in order

    @property
    def statements(self) -> int:
        return len(self.steps)

    @property
    def slips(self) -> tuple[str, ...]:
        """The statements whose left side does not come to c, as `a op b = c`."""
        return tuple(step.text for step in self.steps if not step.right)

    @property
    def operands(self) -> frozenset[float]:
        """The numbers the statements' left sides compute with."""
        return frozenset().union(*(step.operands for step in self.steps))

    @property
    def consistent(self) -> bool:
        """Computes something, and all of it right: what a hinted rationale for a numeric task must do."""
        return self.statements > 0 and not self.slips

    def uses_numbers_of(self, question: str) -> bool:
        """Some statement computes with a number the question holds: right sums about another problem (a
        copied prompt exemplar, say) use none."""
        return bool(self.operands & numbers_in(question))

    def derives(self, question: str, answer: float | None) -> bool:
        """A chain of right statements gets from the question's numbers to `answer`: each computes with numbers
        of the question or results of earlier ones in the chain, and one of them comes to `answer`. Signs are
        ignored when matching numbers (`12 - 15 = -3. -3 + 14 = 11` reads its -3 as 3)."""
        if answer is None:
            return False
        known = {abs(number) for number in numbers_in(question)}
        for step in self.steps:
            if not step.right or not {abs(number) for number in step.operands} <= known:
                continue
            if _close(step.value, answer):
                return True
            known |= {abs(step.value), abs(float(_plain_numbers(step.written)))}
        return False


EQUATION_ERRORS = ("right", "not an equation", "numbers not in the question", "other numbers of the question",
                   "operators", "order")


def equation_error(prediction: str | None, gold: str, question: str) -> str:
    """What is wrong with an equation answer (SVAMP's labels, `( 10.0 - 6.0 )`), first difference first:
    - "right": the same value as the gold equation;
    - "not an equation": nothing that evaluates;
    - "numbers not in the question": it computes with a number the question does not hold;
    - "other numbers of the question": the question's numbers, but not the gold's (a distractor, one too few...);
    - "operators": the gold's numbers with other operators;
    - "order": the gold's numbers and operators in another order (`6 - 10` for `10 - 6`).
    Numbers are compared as multisets of values, so `10` and `10.0` are one number. The prediction is read as
    the equation scorer reads it (`1,000` is not an equation there), so "right" is the scorer's verdict; the gold
    must be an equation (EvalError otherwise)."""
    if equation_match(prediction, gold):
        return "right"
    try:
        evaluate_arithmetic(prediction or "")
    except (EvalError, ZeroDivisionError, OverflowError):
        return "not an equation"
    tokens, gold_tokens = arithmetic_tokens(prediction), arithmetic_tokens(gold)
    numbers = _operands(tokens)
    if numbers != _operands(gold_tokens):
        return ("numbers not in the question" if not set(numbers) <= numbers_in(question)
                else "other numbers of the question")
    if _operators(tokens) != _operators(gold_tokens):
        return "operators"
    return "order"


def _operands(tokens: list[str]) -> list[float]:
    return sorted(float(token) for token in tokens if token not in "+-*/()")


def _operators(tokens: list[str]) -> list[str]:
    """The binary operators: one after a number or `)`; a `-` anywhere else is a sign (`2 - -3`, `( -3 * 2 )`)."""
    return sorted(token for before, token in zip(tokens, tokens[1:])
                  if token in "+-*/" and before not in "+-*/(")


def numbers_in(text: str) -> frozenset[float]:
    """Every number written in `text` (`1,000` is 1000; `56,67` is 56 and 67)."""
    return frozenset(float(number.replace(",", "")) for number in re.findall(WRITTEN_NUMBER, text or ""))


def check_arithmetic(text: str) -> ArithmeticCheck:
    """Every `a op b = c` statement of `text`, checked."""
    steps = []
    for match in STATEMENT.finditer(TIMES.sub(" * ", text or "")):
        left = re.split(r"[.,]\s", match["left"].rstrip())[-1]  # `costs 5. 3 + 4 = 7`: the last sentence's part
        left = _balanced(left.replace("$", "").strip(" ,."))
        if not OPERATOR_BETWEEN_NUMBERS.search(left):
            continue
        try:
            value = evaluate_arithmetic(_plain_numbers(left))
        except (EvalError, ZeroDivisionError, OverflowError):
            continue  # not an expression after all (e.g. `2,3 - 4`): not a statement this checks
        steps.append(Step(left, match["right"], value))
    return ArithmeticCheck(tuple(steps))


def answer_value(label: str) -> float | None:
    """The number a gold label stands for: an equation's value (`( 84.0 / 2.0 )` is 42), else its last number."""
    try:
        return evaluate_arithmetic(_plain_numbers(label))
    except (EvalError, ZeroDivisionError, OverflowError):
        return last_number(label)  # as the numeric scorer reads it


def _plain_numbers(expression: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", expression)  # 1,000 -> 1000


def _balanced(left: str) -> str:
    """Drop the unmatched parentheses a sentence leaves at the edges: `(so 3 + 4` -> `3 + 4`."""
    while left.count("(") > left.count(")") and "(" in left:
        left = left[left.index("(") + 1:].strip()
    while left.count(")") > left.count("(") and ")" in left:
        left = left[: left.rindex(")")].strip()
    return left


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def _same(value: float, written: str) -> bool:
    """`value` written at the precision of `written` (its number of decimals) is `written`."""
    written = written.replace(",", "")
    decimals = len(written.split(".")[1]) if "." in written else 0
    target = float(written)
    if not math.isfinite(target):  # 1 followed by 309 zeros: inf, which an inf tolerance would call equal
        return False
    tolerance = 0.5 * 10 ** -decimals if decimals else 1e-6 * max(1.0, abs(target))
    return abs(value - target) <= tolerance + 1e-9
