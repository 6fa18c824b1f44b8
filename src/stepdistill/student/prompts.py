"""How a task's source text is built from an input x: the one place that knows the two input formats.

- `prefix` (the default, as in the paper): `[label] x` and `[rationale] x`; a decoder-only student's prompt
  ends with a newline (features.Encoder adds it).
- `chat` (train --input-format chat): the student's own chat template, with a system message that names the
  task (LABEL_INSTRUCTION or RATIONALE_INSTRUCTION), x as the user message and the assistant's turn opened.
  An instruction-tuned student was tuned on exactly that shape of text.

A format is two (before, after) pairs, so a source is `before + x + after`: the chat template is rendered
once around a sentinel, not once per example, and the served chat template (deploy/template.py) rebuilds
the same text from the same strings.

NLI inputs join premise and hypothesis with a marker (tasks.base.EOS_MARKER). The prefix format swaps in the
tokenizer's EOS token, as the paper does for T5. The chat format uses a newline instead: a chat model's EOS
token (SmolLM2's `<|im_end|>`) closes a turn, so it would end the user message between premise and hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DataError
from ..tasks.base import EOS_MARKER

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

INPUT_FORMATS = ("auto", "prefix", "chat")
LABEL_PREFIX = "[label]"
RATIONALE_PREFIX = "[rationale]"
LABEL_INSTRUCTION = "Answer with the final answer only."
RATIONALE_INSTRUCTION = "Explain step by step how to reach the answer."
SENTINEL = "STEPDISTILL-INPUT-7f3a"  # stands for x while the chat template is rendered; no spaces: templates may trim
PROBE = "Probe: 12 apples, 3 left?"  # rendered in full to check that x lands in the text as it is
CHAT_SEPARATOR = "\n"  # between NLI premise and hypothesis in the chat format (the EOS token would end the turn)


def label_source(text: str) -> str:
    return f"{LABEL_PREFIX} {text}"


def rationale_source(text: str) -> str:
    return f"{RATIONALE_PREFIX} {text}"


@dataclass(frozen=True)
class PromptFormat:
    name: str
    label_parts: tuple[str, str]  # (before, after) x, for the label task
    rationale_parts: tuple[str, str]
    end: str  # what a decoder-only prompt ends with after `after`: "\n" for prefix; chat's turn is already open
    separator: str | None = None  # what replaces NLI's premise/hypothesis marker; None: the tokenizer's EOS token

    def user_text(self, text: str) -> str:
        """x as the source holds it: NLI's marker becomes the separator here, in x only (a chat template's own
        turn ends may be the same string); with no separator it stays for features.Encoder to swap for EOS."""
        return text if self.separator is None else text.replace(EOS_MARKER, self.separator)

    def label(self, text: str) -> str:
        return self.label_parts[0] + self.user_text(text) + self.label_parts[1]

    def rationale(self, text: str) -> str:
        return self.rationale_parts[0] + self.user_text(text) + self.rationale_parts[1]

    def split(self, source: str) -> tuple[str, str]:
        """(the fixed text before x, the rest): what a cut input keeps whole, and what it keeps the end of."""
        for before in (self.label_parts[0], self.rationale_parts[0]):
            if before and source.startswith(before):
                return before, source[len(before):]
        return "", source

    def record(self) -> dict:
        """For run.json: eval, predict and export rebuild the run's sources from it."""
        return {"name": self.name, "label": list(self.label_parts), "rationale": list(self.rationale_parts),
                "end": self.end, "separator": self.separator}

    @classmethod
    def from_record(cls, record: dict) -> "PromptFormat":
        # runs recorded before the separator existed used the EOS token in both formats
        return cls(record["name"], tuple(record["label"]), tuple(record["rationale"]), record["end"],
                   record.get("separator"))


PREFIX = PromptFormat("prefix", (LABEL_PREFIX + " ", ""), (RATIONALE_PREFIX + " ", ""), "\n")


def prompt_format(name: str, tokenizer: "PreTrainedTokenizerBase", is_seq2seq: bool, student: str) -> PromptFormat:
    """The format `name` for this student; DataError when the student cannot take it. `auto`: chat for a
    decoder-only student with a chat template (on SVAMP at 25% it turned dss's result against standard
    finetuning from +2.7, not significant, into a gain with a paired interval above 0; BENCHMARKS.md), else
    prefix (encoder-decoder students, base models without a template: the paper's format)."""
    if name == "auto":
        name = "chat" if not is_seq2seq and getattr(tokenizer, "chat_template", None) else "prefix"
    if name == "prefix":
        return PREFIX
    if name != "chat":
        raise DataError(f"--input-format must be one of {', '.join(INPUT_FORMATS)}, got {name!r}")
    if is_seq2seq:
        raise DataError(f"--input-format chat: student {student} is an encoder-decoder model; chat templates are "
                        "for decoder-only students (use --input-format prefix)")
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(f"--input-format chat: the tokenizer of student {student} has no chat template "
                        "(use --input-format prefix)")
    return PromptFormat("chat", chat_parts(tokenizer, LABEL_INSTRUCTION, student),
                        chat_parts(tokenizer, RATIONALE_INSTRUCTION, student), "", CHAT_SEPARATOR)


def chat_parts(tokenizer: "PreTrainedTokenizerBase", instruction: str, student: str) -> tuple[str, str]:
    """(before, after) the user content in the student's chat template, with `instruction` as system message."""
    def render(user: str) -> str:
        messages = [{"role": "system", "content": instruction}, {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    try:
        rendered, probe = render(SENTINEL), render(PROBE)
    except Exception as error:  # a template's own raise_exception (e.g. no system role), or a Jinja error
        raise DataError(f"--input-format chat: the chat template of student {student} cannot render a system "
                        f"and a user message ({' '.join(str(error).split())[:200]})") from None
    if rendered.count(SENTINEL) != 1:
        raise DataError(f"--input-format chat: the chat template of student {student} does not write the user "
                        "message once, as it is")
    before, after = rendered.split(SENTINEL)
    if before + PROBE + after != probe:
        raise DataError(f"--input-format chat: the chat template of student {student} changes the user message "
                        "(e.g. trims it), so training prompts could not be rebuilt exactly")
    return before, after
