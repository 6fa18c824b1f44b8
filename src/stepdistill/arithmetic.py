"""Arithmetic slips in a rationale: `a op b = c` (or `is c`, `equals c`) where c is not the value of `a op b`.

A hinted rationale (extract --rationalize) is kept when it ends on the gold answer, which the hint gave
away: a weak teacher often gets there through wrong arithmetic ("7 * 36 = 210. The answer is (7 * 30)").
Checking the rationale's own statements is a self-consistency filter that needs no second request; so is
checking that they compute with the question's own numbers (`uses_numbers_of`).

Pure text work, no eval: each left side is computed by scoring.evaluate_arithmetic (+ - * / and
parentheses only). A statement counts when its left side holds at least one operator between numbers;
`1/3 of 120 is 40` and `she has 5 apples = 5` are not statements this checks. A result written with fewer
decimals is compared at its own precision (`10 / 3 = 3.33` is right).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .scoring import EvalError, evaluate_arithmetic

NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
# the left side: numbers, operators, parentheses, spaces and `$` only, ending right before `=` / `is` / `equals`
STATEMENT = re.compile(r"(?P<left>[\d.,$()+\-*/ ]*\d[\d.,$()+\-*/ ]*?)\s*(?:=|\bis\b|\bequals\b)\s*\$?(?P<right>"
                       + NUMBER + r")(?![\d,]*\.?\d)")
TIMES = re.compile(r"(?<=\d)\s*[x×]\s*(?=[\d(])")  # `3 x 4`, `3×4`: multiplication
OPERATOR_BETWEEN_NUMBERS = re.compile(r"\d[\s)]*[-+*/][\s(]*-?\d")


@dataclass(frozen=True)
class ArithmeticCheck:
    statements: int  # `a op b = c` statements found
    slips: tuple[str, ...]  # those whose left side does not come to c, as `a op b = c`
    operands: frozenset[float] = frozenset()  # the numbers the statements' left sides compute with

    @property
    def consistent(self) -> bool:
        """Computes something, and all of it right: what a hinted rationale for a numeric task must do."""
        return self.statements > 0 and not self.slips

    def uses_numbers_of(self, question: str) -> bool:
        """Some statement computes with a number the question holds: right sums about another problem (a
        copied prompt exemplar, say) use none."""
        return bool(self.operands & numbers_in(question))


def numbers_in(text: str) -> frozenset[float]:
    """Every number written in `text` (`1,000` is 1000)."""
    return frozenset(float(_plain_numbers(number)) for number in re.findall(r"\d[\d,]*(?:\.\d+)?(?<!,)", text or ""))


def check_arithmetic(text: str) -> ArithmeticCheck:
    """Every `a op b = c` statement of `text`, checked."""
    statements, slips, operands = 0, [], set()
    for match in STATEMENT.finditer(TIMES.sub(" * ", text or "")):
        left = re.split(r"[.,]\s", match["left"])[-1]  # `costs 5. 3 + 4 = 7`: the last sentence's part
        left = _balanced(left.replace("$", "").strip(" ,."))
        if not OPERATOR_BETWEEN_NUMBERS.search(left):
            continue
        try:
            value = evaluate_arithmetic(_plain_numbers(left))
        except (EvalError, ZeroDivisionError, OverflowError):
            continue  # not an expression after all (e.g. `2,3 - 4`): not a statement this checks
        statements += 1
        operands |= numbers_in(left)
        if not _same(value, match["right"]):
            slips.append(f"{left} = {match['right']}")
    return ArithmeticCheck(statements, tuple(slips), frozenset(operands))


def _plain_numbers(expression: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", expression)  # 1,000 -> 1000


def _balanced(left: str) -> str:
    """Drop the unmatched parentheses a sentence leaves at the edges: `(so 3 + 4` -> `3 + 4`."""
    while left.count("(") > left.count(")") and "(" in left:
        left = left[left.index("(") + 1:].strip()
    while left.count(")") > left.count("(") and ")" in left:
        left = left[: left.rindex(")")].strip()
    return left


def _same(value: float, written: str) -> bool:
    """`value` written at the precision of `written` (its number of decimals) is `written`."""
    written = written.replace(",", "")
    decimals = len(written.split(".")[1]) if "." in written else 0
    target = float(written)
    tolerance = 0.5 * 10 ** -decimals if decimals else 1e-6 * max(1.0, abs(target))
    return abs(value - target) <= tolerance + 1e-9
