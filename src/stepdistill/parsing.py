"""Turn a teacher's raw completion into (rationale, label), or a failure with its reason.

Completions start right after the prompt's last answer cue and often run on into the next few-shot
question, so each parser first cuts at that question's cue. The four formats are the released PaLM
completions' (see datasets/README.md); our own teacher prompts use the same ones, so one parser
serves both, and the same parser reads the label out of a `single`-task student's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NLI_LABELS = ("entailment", "neutral", "contradiction")


@dataclass(frozen=True)
class Parsed:
    rationale: str | None
    label: str | None
    error: str | None = None  # why the completion did not fit its format; None when it did

    @property
    def ok(self) -> bool:
        return self.error is None


def failure(reason: str, rationale: str | None = None) -> Parsed:
    return Parsed(rationale=rationale, label=None, error=reason)


def cut_at_next_example(text: str, cue: str) -> str:
    """Drop everything from the next few-shot example's cue on. Like the paper's released code, the cue
    counts wherever it appears, not only at a line start: that reproduces the teacher accuracies."""
    return text.split(cue, 1)[0].strip()


def split_on_phrase(text: str, phrase: str) -> tuple[str, str] | None:
    """(before, after) around the last occurrence of the answer phrase. Case matters, as in the paper's
    parser: a lower-case `so the answer is` mid-sentence is not the answer cue."""
    idx = text.rfind(phrase)
    if idx < 0:
        return None
    return text[:idx].strip(), text[idx + len(phrase):].strip()


def strip_final_period(text: str) -> str:
    text = text.strip()
    while text.endswith("."):
        text = text[:-1].rstrip()
    return text


def parse_multiple_choice(completion: str) -> Parsed:
    """CQA: `<rationale> So the answer is (c) <choice text>.`; the label is the choice text."""
    body = cut_at_next_example(completion, "Q:")
    parts = split_on_phrase(body, "So the answer is")
    if parts is None:
        return failure("no 'So the answer is'", rationale=body or None)
    rationale, answer = parts
    marker = re.search(r"\([a-eA-E]\)", answer)
    if marker is None:
        return failure("no choice letter such as (c) after 'So the answer is'", rationale=rationale)
    answer = strip_final_period(answer[marker.end():])
    if not answer:
        return failure("empty answer after 'So the answer is'", rationale=rationale)
    return Parsed(rationale=rationale, label=answer)


def parse_equation(completion: str) -> Parsed:
    """SVAMP: `<rationale> The answer is (<equation>).`; the label is the parenthesised equation."""
    body = cut_at_next_example(completion, "Q:")
    parts = split_on_phrase(body, "The answer is")
    if parts is None:
        return failure("no 'The answer is'", rationale=body or None)
    rationale, answer = parts
    start, end = answer.find("("), answer.rfind(")")
    if start < 0 or end <= start:
        return failure("no parenthesised equation after 'The answer is'", rationale=rationale)
    return Parsed(rationale=rationale, label=answer[start: end + 1])


def _parse_nli(completion: str, phrase: str, missing: str) -> Parsed:
    """NLI completions: `<rationale> <phrase> <label>` then the next `Premise:`."""
    body = cut_at_next_example(completion, "Premise:")
    parts = split_on_phrase(body, phrase)
    if parts is None:
        return failure(missing, rationale=body or None)
    rationale, answer = parts
    # The first word is the label: completions cut off mid-way can trail `\n\nPremise` fragments.
    words = answer.split()
    label = words[0].strip(".,;:!\"'").lower() if words else ""
    if label not in NLI_LABELS:
        return failure(f"label {label[:40]!r} is not one of {'/'.join(NLI_LABELS)}", rationale=rationale)
    return Parsed(rationale=rationale, label=label)


def parse_so_the_answer_is(completion: str) -> Parsed:
    """ANLI: `<rationale> So the answer is <label>.` then the next `Premise:`."""
    return _parse_nli(completion, "So the answer is", "no 'So the answer is'")


def parse_answer_line(completion: str) -> Parsed:
    """e-SNLI: `<rationale>\nAnswer: <label>` then the next `Premise:`."""
    return _parse_nli(completion, "Answer:", "no 'Answer:' line")


def parse_generic(completion: str) -> Parsed:
    """A user's own task: `<rationale> So the answer is <label>.` (or `Answer: <label>`), cut at `Q:`."""
    body = cut_at_next_example(completion, "Q:")
    parts = split_on_phrase(body, "So the answer is") or split_on_phrase(body, "Answer:")
    if parts is None:
        return failure("no 'So the answer is' or 'Answer:'", rationale=body or None)
    label = strip_final_period(parts[1])
    if not label:
        return failure("empty answer", rationale=parts[0])
    return Parsed(rationale=parts[0], label=label)


PARSERS = {
    "multiple_choice": parse_multiple_choice,
    "equation": parse_equation,
    "so_the_answer_is": parse_so_the_answer_is,
    "answer_line": parse_answer_line,
    "generic": parse_generic,
}
