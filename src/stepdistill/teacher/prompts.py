"""Few-shot chain-of-thought prompts: the four benchmarks' built-in ones and users' template files.

A prompt is either text for a completion endpoint (the few-shot exemplars, then the new input up to its
answer cue, e.g. `A:`) or chat messages (a system instruction, each exemplar as a user/assistant turn,
then the new input). Both come from one PromptSpec, so the teacher writes its answer in the format the
task's parser reads, and the released PaLM completions and a new teacher's share one parser.

A user's template file is YAML:

    instruction: Answer the question. Think step by step, then end with "So the answer is <answer>."
    input: "Q: {{ question }}\\nA:"              # Jinja over the input's fields (JSONL: every key of the line)
    output: " {{ rationale }} So the answer is {{ label }}."   # one exemplar's answer (this is the default)
    stop: ["\\n\\nQ:"]                           # optional; cuts the completion at the next question
    style: completion                          # or chat; --prompt-style overrides it
    hinted: "Q: {{ question }}\\nThe answer is {{ hint }}.\\nA:"   # optional; --rationalize's input template
    exemplars:
      - {question: "...", rationale: "...", label: "..."}

or a Jinja file (.j2, .jinja) holding the whole prompt, exemplars written inline, rendered with the
input's fields; in chat style the rendered text is sent as one user message.

The hinted variant (`extract --rationalize`, teacher/rationalize.py) asks again for inputs the teacher got
wrong, with the gold label given as `{{ hint }}`: the same instruction, exemplars and answer format, each
exemplar's input rendered with its own label as the hint. Without a `hinted` template the hint is a line
`Hint: the answer is {{ hint }}.` put before the input.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Union

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from ..errors import DataError
from .exemplars import EXEMPLARS

Prompt = Union[str, list[dict[str, str]]]  # completion text, or chat messages
STYLES = ("completion", "chat")
DEFAULT_OUTPUT = " {{ rationale }} So the answer is {{ label }}."

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@dataclass(frozen=True)
class PromptSpec:
    source: str  # a benchmark's name or the template file's path, for messages
    instruction: str = ""
    input: str = ""  # Jinja: one input, ending with the answer cue (`A:`, `Reasonings:`)
    output: str = DEFAULT_OUTPUT  # Jinja: one exemplar's answer, rendered with its rationale and label
    exemplars: tuple[dict, ...] = ()
    separator: str = "\n\n"
    stop: tuple[str, ...] = ()
    style: str | None = None  # completion or chat; None: the caller decides
    whole: str | None = None  # a Jinja file's whole prompt; input/output/exemplars unused
    hinted: str | None = None  # Jinja: the input with the gold label as `hint`, for --rationalize


_QA = "Q: {{ question }}\nAnswer Choices:{% for c in choices %}\n({{ 'abcde'[loop.index0] }}) {{ c }}{% endfor %}\nA:"
_HINT = "Hint: the answer is {{ hint }}.\n"
HINT_INSTRUCTION = (" Each question comes with a hint that gives the correct answer: explain step by step why "
                    "it is correct, then give it in the same format.")
_NLI_INSTRUCTION = ("Decide whether the premise entails the hypothesis, contradicts it, or neither (neutral). "
                    "Explain briefly, then give the label.")

BUILTIN = {
    "cqa": PromptSpec(
        "cqa", instruction="Answer each multiple-choice question. Reason step by step, then end with "
                           "\"So the answer is (<letter>) <choice>.\"",
        input=_QA, output=" {{ rationale }} So the answer is ({{ 'abcde'[choices.index(label)] }}) {{ label }}.",
        hinted=_QA[:-2] + "Hint: the answer is ({{ 'abcde'[choices.index(hint)] }}) {{ hint }}.\nA:",
        stop=("\n\nQ:",)),
    "svamp": PromptSpec(
        "svamp", instruction="Solve each math word problem. Reason step by step, then end with "
                             "\"The answer is (<equation>).\" where the equation computes the answer.",
        input="Q: {{ question | replace('\\n', ' ') }}\nA:", output=" {{ rationale }} The answer is {{ label }}.",
        hinted="Q: {{ question | replace('\\n', ' ') }}\n" + _HINT + "A:", stop=("\n\nQ:",)),
    "anli1": PromptSpec(
        "anli1", instruction=_NLI_INSTRUCTION + " End with \"So the answer is <label>.\"",
        input="Premise: {{ premise }}\nHypothesis: {{ hypothesis }}\nAnswer:",
        hinted="Premise: {{ premise }}\nHypothesis: {{ hypothesis }}\n" + _HINT + "Answer:",
        output=" {{ rationale }} So the answer is {{ label }}.", stop=("\n\nPremise:",)),
    "esnli": PromptSpec(
        "esnli", instruction=_NLI_INSTRUCTION + " Write the reasoning, then a line \"Answer: <label>\".",
        input="Premise: {{ premise }}\nHypothesis: {{ hypothesis }}\nReasonings:",
        hinted="Premise: {{ premise }}\nHypothesis: {{ hypothesis }}\n" + _HINT + "Reasonings:",
        output=" {{ rationale }}\nAnswer: {{ label }}", stop=("\n\nPremise:",)),
}
BUILTIN = {name: replace(spec, exemplars=tuple(EXEMPLARS[name])) for name, spec in BUILTIN.items()}


def _compile(source: str, text: str, what: str) -> jinja2.Template:
    try:
        return _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as error:
        raise DataError(f"{source}: {what}: Jinja syntax error on line {error.lineno}: {error.message}") from None


def _render(template: jinja2.Template, values: dict, source: str, what: str) -> str:
    try:
        return template.render(**values)
    except jinja2.UndefinedError as error:
        raise DataError(f"{source}: {what}: {error.message} (fields available: {', '.join(sorted(values))})") from None
    except jinja2.TemplateError as error:
        raise DataError(f"{source}: {what}: {error}") from None


class PromptBuilder:
    """Renders a PromptSpec for one input. The few-shot part is rendered once, at construction."""

    def __init__(self, spec: PromptSpec, style: str | None = None, n_exemplars: int | None = None):
        style = style or spec.style or "completion"
        if style not in STYLES:
            raise DataError(f"{spec.source}: prompt style '{style}' is not one of {', '.join(STYLES)}")
        exemplars = spec.exemplars if n_exemplars is None else spec.exemplars[:max(0, n_exemplars)]
        self.spec = replace(spec, style=style, exemplars=tuple(exemplars))
        self.style, self.stop = style, list(spec.stop)
        if spec.whole is not None:
            self._whole = _compile(spec.source, spec.whole, "template")
            self._shots: list[tuple[str, str]] = []
        else:
            self._input = _compile(spec.source, spec.input, "input template")
            output = _compile(spec.source, spec.output, "output template")
            self._shots = [(_render(self._input, ex, spec.source, f"exemplar {i + 1}"),
                            _render(output, ex, spec.source, f"exemplar {i + 1}"))
                           for i, ex in enumerate(exemplars)]
        self._prefix = "".join(question + answer + spec.separator for question, answer in self._shots)
        if spec.instruction:
            self._prefix = spec.instruction + spec.separator + self._prefix

    @property
    def hash(self) -> str:
        """What the teacher is asked, as 16 hex digits: changes with any exemplar, template or style."""
        spec = self.spec
        blob = json.dumps({"style": spec.style, "instruction": spec.instruction, "input": spec.input,
                           "output": spec.output, "exemplars": list(spec.exemplars), "separator": spec.separator,
                           "stop": list(spec.stop), "whole": spec.whole}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def render(self, values: dict[str, Any], where: str = "input") -> Prompt:
        if self.spec.whole is not None:
            text = _render(self._whole, values, self.spec.source, where)
            return text if self.style == "completion" else [{"role": "user", "content": text}]
        query = _render(self._input, values, self.spec.source, where)
        if self.style == "completion":
            return self._prefix + query
        messages = [{"role": "system", "content": self.spec.instruction}] if self.spec.instruction else []
        for question, answer in self._shots:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.strip()}]
        return messages + [{"role": "user", "content": query}]


def load_template(path: str | Path) -> PromptSpec:
    """A user's YAML or Jinja template file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prompt template file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".j2", ".jinja", ".jinja2"):
        return PromptSpec(source=str(path), whole=text)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise DataError(f"{path}: a prompt template is a .yaml/.yml or a .j2/.jinja file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise DataError(f"{path}:{mark.line + 1 if mark else '?'}: malformed YAML "
                        f"({getattr(error, 'problem', error)})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a YAML mapping with at least 'input' and 'exemplars'")
    unknown = set(data) - {"instruction", "input", "output", "exemplars", "separator", "stop", "style", "hinted"}
    if unknown:
        raise DataError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("instruction", "input", "output", "separator", "style", "hinted"):
        if key in data and not isinstance(data[key], str):
            raise DataError(f"{path}: field '{key}' should be a string")
    if "input" not in data:
        raise DataError(f"{path}: missing field 'input' (a Jinja template such as \"Q: {{{{ question }}}}\\nA:\")")
    exemplars = data.get("exemplars") or []
    if not isinstance(exemplars, list) or not all(isinstance(e, dict) for e in exemplars):
        raise DataError(f"{path}: field 'exemplars' should be a list of mappings")
    stop = data.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise DataError(f"{path}: field 'stop' should be a string or a list of strings")
    return PromptSpec(source=str(path), instruction=data.get("instruction", ""), input=data["input"],
                      output=data.get("output", DEFAULT_OUTPUT), exemplars=tuple(exemplars),
                      separator=data.get("separator", "\n\n"), stop=tuple(stop), style=data.get("style"),
                      hinted=data.get("hinted"))


def hinted_spec(spec: PromptSpec) -> PromptSpec:
    """The prompt for --rationalize: the input template with the gold label as `hint`, and each exemplar
    hinted with its own label, so that the few-shot part shows what a hinted answer looks like."""
    if spec.whole is not None:
        raise DataError(f"{spec.source}: --rationalize needs a YAML prompt (a whole-prompt Jinja file has no "
                        "input template to add the hint to)")
    return replace(spec, input=spec.hinted or _HINT + spec.input, hinted=None,
                   instruction=spec.instruction + HINT_INSTRUCTION if spec.instruction else "",
                   exemplars=tuple({**ex, "hint": ex["label"]} for ex in spec.exemplars if "label" in ex))


def prompt_for(task_name: str, template: str | Path | None = None) -> PromptSpec:
    """The template file if given, else the benchmark's built-in prompt; own tasks need a file."""
    if template:
        return load_template(template)
    if task_name in BUILTIN:
        return BUILTIN[task_name]
    raise DataError(f"task {task_name} has no built-in prompt: pass --prompt FILE.yaml with an 'input' "
                    "template and a few exemplars (see stepdistill.teacher.prompts)")


def prompt_values(example) -> dict[str, Any]:
    """What templates can use: the input's raw fields, plus `input` (the student's text) and `id`."""
    return {**example.fields, "input": example.input, "id": example.id}
