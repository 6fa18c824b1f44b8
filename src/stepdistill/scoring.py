"""Scorers: exact match after light normalisation, numbers, and equations by value.

Equations (SVAMP) are evaluated by a small arithmetic parser of our own. Model output never reaches
Python's eval: only numbers, + - * /, unary minus and parentheses are understood, within fixed bounds
on length and nesting, and anything else is simply a wrong answer.
"""

from __future__ import annotations

import math
import re

from .parsing import strip_final_period

MAX_EXPRESSION_CHARS = 512
MAX_NESTING = 32
NUMERIC_TOLERANCE = 1e-4  # SVAMP answers are short decimals; this absorbs float noise like 0.1+0.2


class EvalError(ValueError):
    """The text is not a bounded arithmetic expression, or its value is undefined."""


def normalize_label(text: str | None) -> str:
    """Collapse whitespace and drop a trailing full stop. Case is kept: the paper scores by exact string
    match, and lower-casing would lift the CQA teacher from 74.26% to 75.29% on train."""
    if text is None:
        return ""
    return strip_final_period(" ".join(text.split()))


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(.))")


def arithmetic_tokens(text: str) -> list[str]:
    """Numbers, `+ - * / ( )`, in order; EvalError on any other character."""
    tokens = []
    for number, other in _TOKEN.findall(text):
        if number:
            tokens.append(number)
        elif other.strip():
            if other not in "+-*/()":
                raise EvalError(f"unexpected character {other!r}")
            tokens.append(other)
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ; unary := '-' unary | atom."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise EvalError("unexpected end of expression")
        self.pos += 1
        return tok

    def expr(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> float:
        value = self.unary()
        while self.peek() in ("*", "/"):
            if self.take() == "*":
                value *= self.unary()
            else:
                divisor = self.unary()
                if divisor == 0:
                    raise EvalError("division by zero")
                value /= divisor
        return value

    def unary(self) -> float:
        if self.peek() in ("-", "+"):  # each sign is a level of recursion, so it counts as nesting
            sign = -1.0 if self.take() == "-" else 1.0
            self._enter()
            value = sign * self.unary()
            self.depth -= 1
            return value
        return self.atom()

    def atom(self) -> float:
        tok = self.take()
        if tok == "(":
            self._enter()
            value = self.expr()
            if self.take() != ")":
                raise EvalError("expected ')'")
            self.depth -= 1
            return value
        if tok in "+-*/)":
            raise EvalError(f"unexpected {tok!r}")
        return float(tok)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise EvalError(f"nested deeper than {MAX_NESTING}")


def evaluate_arithmetic(text: str) -> float:
    """Value of an arithmetic expression, or EvalError. Never runs code."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise EvalError(f"longer than {MAX_EXPRESSION_CHARS} characters")
    tokens = arithmetic_tokens(text)
    if not tokens:
        raise EvalError("empty expression")
    parser = _Parser(tokens)
    value = parser.expr()
    if parser.peek() is not None:
        raise EvalError(f"unexpected {parser.peek()!r}")
    if not math.isfinite(value):
        raise EvalError("result is not finite")
    return value


def equation_match(prediction: str | None, gold: str | None) -> bool:
    """Equal by value; an unparsable, undefined or infinite side is a wrong answer, not a crash."""
    if not prediction or not gold:
        return False
    try:
        return math.isclose(evaluate_arithmetic(prediction), evaluate_arithmetic(gold),
                            rel_tol=NUMERIC_TOLERANCE, abs_tol=NUMERIC_TOLERANCE)
    except (EvalError, OverflowError):
        return False


# a number as text writes it: `1,200.50`; a comma counts only before three digits, so `56,67` is two numbers
WRITTEN_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
_NUMBER = re.compile(r"-?" + WRITTEN_NUMBER + r"|-?\.\d+")


def last_number(text: str | None) -> float | None:
    """The last number written in `text` (thousands commas ignored), as the numeric scorer reads a label."""
    found = _NUMBER.findall(text or "")
    try:
        return float(found[-1].replace(",", "")) if found else None
    except ValueError:
        return None


def numeric_match(prediction: str | None, gold: str | None) -> bool:
    """The last number in the prediction equals the gold number (thousands commas ignored)."""
    predicted, expected = last_number(prediction), last_number(gold)
    return predicted is not None and expected is not None and math.isclose(
        predicted, expected, rel_tol=NUMERIC_TOLERANCE, abs_tol=NUMERIC_TOLERANCE)


def exact_match(prediction: str | None, gold: str | None) -> bool:
    return bool(gold is not None and prediction is not None and normalize_label(prediction) == normalize_label(gold))


SCORERS = {"exact": exact_match, "numeric": numeric_match, "equation": equation_match}


def accuracy(correct: list[bool]) -> float:
    """Percent correct; 0.0 for no examples."""
    return 100.0 * sum(correct) / len(correct) if correct else 0.0
