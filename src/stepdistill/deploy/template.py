"""The chat template that turns an OpenAI chat request into the student's training prompt.

A decoder-only student was trained on `[BOS] [label] x\n` (features.Encoder: BOS only where the tokenizer
adds one, NLI's `</s>` marker swapped for the tokenizer's EOS). The template rebuilds exactly that text from
the last user message, so a client that sends `{"role": "user", "content": x}` gets the label back. A system
message whose whole content is `rationale` asks for the `[rationale] x` task instead.

The same template goes into the GGUF (`tokenizer.chat_template`, read by llama.cpp) and into the run
folder's tokenizer config (read by transformers' `apply_chat_template` and vLLM). Ollama runs Go templates,
not Jinja, so `ollama_modelfile` writes its own equivalent.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..student.features import LABEL_PREFIX, RATIONALE_PREFIX
from ..tasks.base import EOS_MARKER

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

RATIONALE_SYSTEM = "rationale"  # a system message with this content selects the rationale task

_TEMPLATE = (
    "{#- stepdistill student: the last user message becomes the training prompt " + LABEL_PREFIX + " x, or "
    + RATIONALE_PREFIX + " x when a system message says " + RATIONALE_SYSTEM + " -#}\n"
    "{%- set state = namespace(prefix='" + LABEL_PREFIX + "', user=none) -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if message['role'] == 'system' and (message['content'] | string | trim | lower) == '"
    + RATIONALE_SYSTEM + "' -%}{%- set state.prefix = '" + RATIONALE_PREFIX + "' -%}{%- endif -%}\n"
    "{%- if message['role'] == 'user' -%}{%- set state.user = message['content'] -%}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if state.user is none -%}{{ raise_exception('the student answers the last user message: "
    "send at least one message with role user') }}{%- endif -%}\n"
    "{{- BOS_PARTstate.prefix ~ ' ' ~ (state.user | replace('" + EOS_MARKER + "', eos_token)) ~ '\\n' -}}"
)


def adds_bos(tokenizer: "PreTrainedTokenizerBase") -> bool:
    """Whether training prompts start with BOS (the rule of features.Encoder)."""
    return bool(getattr(tokenizer, "add_bos_token", False)) and tokenizer.bos_token_id is not None


def chat_template(with_bos: bool) -> str:
    """The Jinja chat template; BOS is written by the template since llama.cpp adds none to templated text."""
    return _TEMPLATE.replace("BOS_PART", "bos_token ~ " if with_bos else "")


def training_chat_template(tokenizer: "PreTrainedTokenizerBase") -> str:
    """The template for this tokenizer's training prompts (train.py sets it before saving the run's tokenizer)."""
    return chat_template(adds_bos(tokenizer))


def write_chat_template(model_dir: str | Path) -> str:
    """Put the template into a run's tokenizer files (model/), so transformers and vLLM serve it too
    (runs trained before train.py wrote it get it at export)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.chat_template = training_chat_template(tokenizer)
    tokenizer.save_pretrained(str(model_dir))
    return tokenizer.chat_template


def ollama_modelfile(gguf_name: str, eos_token: str, max_tokens: int) -> str:
    """An Ollama Modelfile beside the GGUF: Ollama runs Go templates, so the prompt rule is restated in Go."""
    return (
        f"# Ollama: `ollama create student -f {Path(gguf_name).with_suffix('.Modelfile')}` then "
        f"`ollama run student \"<question>\"`.\n"
        f"# The system message \"{RATIONALE_SYSTEM}\" asks for the rationale instead of the label.\n"
        f"# NLI inputs: put the EOS token {eos_token} between premise and hypothesis yourself.\n"
        f"FROM ./{gguf_name}\n"
        f'TEMPLATE """{{{{ if eq .System "{RATIONALE_SYSTEM}" }}}}{RATIONALE_PREFIX}{{{{ else }}}}{LABEL_PREFIX}'
        f'{{{{ end }}}} {{{{ .Prompt }}}}\n"""\n'
        f"PARAMETER temperature 0\n"
        f"PARAMETER num_predict {max_tokens}\n"
        f'PARAMETER stop "{eos_token}"\n'
    )
