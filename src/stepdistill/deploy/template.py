"""The chat template that turns an OpenAI chat request into the student's training prompt.

A decoder-only student was trained on `[BOS] source end` (features.Encoder: BOS only where the tokenizer adds
one and the source does not start with it, NLI's `</s>` marker swapped for the format's separator), its source
built by the run's input format (student/prompts.py): `[label] x` then a newline, or with --input-format chat
the student's own chat template around x. The template rebuilds exactly that text from the last user message,
so a client that sends `{"role": "user", "content": x}` gets the label back. A system message whose whole
content is `rationale` asks for the rationale task instead.

The same template goes into the GGUF (`tokenizer.chat_template`, read by llama.cpp) and into the run
folder's tokenizer config (read by transformers' `apply_chat_template` and vLLM). Ollama runs Go templates,
not Jinja, so `ollama_modelfile` writes its own equivalent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..student.features import adds_bos
from ..student.prompts import PREFIX, PromptFormat
from ..tasks.base import EOS_MARKER

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

RATIONALE_SYSTEM = "rationale"  # a system message with this content selects the rationale task

_CHOOSE_TASK = (
    "{%- set state = namespace(rationale=false, user=none) -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if message['role'] == 'system' and (message['content'] | string | trim | lower) == '"
    + RATIONALE_SYSTEM + "' -%}{%- set state.rationale = true -%}{%- endif -%}\n"
    "{%- if message['role'] == 'user' -%}{%- set state.user = message['content'] -%}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if state.user is none -%}{{ raise_exception('the student answers the last user message: "
    "send at least one message with role user') }}{%- endif -%}\n"
)


def _join_expression(prompts: PromptFormat) -> str:
    """NLI's premise/hypothesis marker in the user text becomes the format's separator, as
    prompts.PromptFormat.user_text (and features.Encoder, for EOS) do it in training."""
    separator = "eos_token" if prompts.separator is None else jinja_string(prompts.separator)
    return "{%- set text = state.user | replace('" + EOS_MARKER + "', " + separator + ") -%}\n"


def jinja_string(text: str) -> str:
    """A Jinja string literal for any text (chat-template text holds newlines and quotes)."""
    return json.dumps(text, ensure_ascii=False)


def _source_expression(parts: tuple[str, str], end: str, with_bos: bool) -> str:
    before, after = parts
    return ("bos_token ~ " if with_bos else "") + f"{jinja_string(before)} ~ text ~ {jinja_string(after + end)}"


def chat_template(with_bos: bool, prompts: PromptFormat = PREFIX) -> str:
    """The Jinja chat template of a run's input format; BOS is written by the template since llama.cpp adds
    none to templated text."""
    return (f"{{#- stepdistill student ({prompts.name} input format): the last user message becomes the label "
            f"task's training prompt, or the rationale task's when a system message says {RATIONALE_SYSTEM} -#}}\n"
            + _CHOOSE_TASK + _join_expression(prompts)
            + "{%- if state.rationale -%}{{- " + _source_expression(prompts.rationale_parts, prompts.end, with_bos)
            + " -}}{%- else -%}{{- " + _source_expression(prompts.label_parts, prompts.end, with_bos)
            + " -}}{%- endif -%}")


def training_chat_template(tokenizer: "PreTrainedTokenizerBase", prompts: PromptFormat = PREFIX) -> str:
    """The template for this tokenizer's training prompts (train.py sets it before saving the run's tokenizer):
    BOS as features.Encoder adds it, never a second one after a chat template's own."""
    writes_bos = bool(tokenizer.bos_token) and prompts.label_parts[0].startswith(tokenizer.bos_token)
    return chat_template(adds_bos(tokenizer) and not writes_bos, prompts)


def write_chat_template(model_dir: str | Path, prompts: PromptFormat = PREFIX) -> str:
    """Put the template into a run's tokenizer files (model/), so transformers and vLLM serve it too
    (runs trained before train.py wrote it get it at export)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.chat_template = training_chat_template(tokenizer, prompts)
    tokenizer.save_pretrained(str(model_dir))
    return tokenizer.chat_template


def ollama_modelfile(gguf_name: str, eos_token: str, max_tokens: int, prompts: PromptFormat = PREFIX) -> str:
    """An Ollama Modelfile beside the GGUF: Ollama runs Go templates, so the prompt rule is restated in Go."""
    (label_before, label_after), (rationale_before, rationale_after) = prompts.label_parts, prompts.rationale_parts
    nli_separator = f"the EOS token {eos_token}" if prompts.separator is None else json.dumps(prompts.separator)
    return (
        f"# Ollama: `ollama create student -f {Path(gguf_name).with_suffix('.Modelfile')}` then "
        f"`ollama run student \"<question>\"`.\n"
        f"# The system message \"{RATIONALE_SYSTEM}\" asks for the rationale instead of the label.\n"
        f"# NLI inputs: put {nli_separator} between premise and hypothesis yourself.\n"
        f"FROM ./{gguf_name}\n"
        f'TEMPLATE """{{{{ if eq .System "{RATIONALE_SYSTEM}" }}}}{rationale_before}{{{{ .Prompt }}}}{rationale_after}'
        f'{{{{ else }}}}{label_before}{{{{ .Prompt }}}}{label_after}{{{{ end }}}}{prompts.end}"""\n'
        f"PARAMETER temperature 0\n"
        f"PARAMETER num_predict {max_tokens}\n"
        f'PARAMETER stop "{eos_token}"\n'
    )
