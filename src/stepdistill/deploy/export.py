"""`stepdistill export RUN --format gguf`: a trained decoder-only student as one GGUF file for llama.cpp.

Steps: find the run's model/, pick the pre-tokenizer, write the chat template into the run's tokenizer
config, convert to f16 GGUF (convert.py), quantize with llama.cpp's own quantizer, check that llama.cpp
tokenizes the templated prompts exactly as training did, and write an Ollama Modelfile beside the file.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cliargs import option
from ..errors import DataError
from ..jsonio import read_json, write_json

if TYPE_CHECKING:
    from ..student.prompts import PromptFormat

QUANTS = ("f16", "q8_0", "q4_k_m")
EXPORT_FOLDER = "export"
PROBE_TEXTS = (  # digits, spaces, punctuation, case, newlines and non-ASCII: where pre-tokenizers differ
    "Dan has 12345 apples and gives away 67.5% of them. How many are left?",
    "  Two  spaces,\ttabs and trailing space ",
    "It's 3:45pm; they'll re-use A.B.C's ~/path/file_name.txt (x=2*y+1)!",
    "Café naïve résumé 東京 🙂 — “quotes”",
    "A man is playing a guitar. </s> A person plays music.",
)


@dataclass
class ExportSettings:
    run: str = option("", "a run folder of `stepdistill train` (or its model/ folder)", cli=False)
    format: str = option("gguf", "file format (llama.cpp's GGUF)", choices=("gguf",))
    quant: str = option("q8_0", "weights: f16, q8_0 (near-lossless) or q4_k_m (smallest)", choices=QUANTS)
    out: str = option("", "output file (default: RUN/export/student-QUANT.gguf)")
    pre: str = option("auto", "llama.cpp pre-tokenizer name (auto: the source GGUF's, else from tokenizer.json)")
    threads: int = option(0, "threads for quantizing (0: all cores)")

    def __post_init__(self):
        if not self.run:
            raise DataError("export needs a run folder")


def model_folder(run: str | Path) -> tuple[Path, dict]:
    """(the saved model folder, the run record or {})."""
    run = Path(run)
    model_dir = run / "model" if (run / "model").is_dir() else run
    if not (model_dir / "config.json").is_file():
        raise DataError(f"{run}: no trained model here (expected a run folder with model/config.json)")
    record_path = model_dir.parent / "run.json"
    return model_dir, (read_json(record_path) if record_path.is_file() else {})


def default_output(model_dir: Path, quant: str) -> Path:
    return model_dir.parent / EXPORT_FOLDER / f"student-{quant}.gguf"


def choose_pre_tokenizer(model_dir: Path, record: dict, requested: str) -> str:
    """The source GGUF's own `tokenizer.ggml.pre` when the student came from one (SmolLM2: `smollm`),
    else a name read off tokenizer.json's pre-tokenizer. export() verifies the choice on PROBE_TEXTS."""
    if requested != "auto":
        return requested
    source = Path(str(record.get("student", "")))
    if source.suffix == ".gguf" and source.is_file():
        import gguf
        field = gguf.GGUFReader(str(source)).fields.get("tokenizer.ggml.pre")
        if field is not None:
            return str(field.contents())
    tokenizer_json = model_dir / "tokenizer.json"
    pre = json.loads(tokenizer_json.read_text()).get("pre_tokenizer") if tokenizer_json.is_file() else None
    parts = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else [pre or {}]
    kinds = [part.get("type") for part in parts]
    if "Digits" in kinds and any(p.get("individual_digits") for p in parts):
        return "smollm"  # digits split one by one, then GPT-2's regex
    return "gpt-2"


def llama_cpp_module():
    """llama-cpp-python (the `local` extra): the quantizer, the tokenizer check and the server."""
    try:
        import llama_cpp
    except ImportError as error:
        raise DataError("GGUF export and serving need llama-cpp-python: pip install 'stepdistill[local]'") from error
    return llama_cpp


def quantize(f16_path: Path, out: Path, quant: str, threads: int) -> None:
    """llama.cpp's quantizer (llama_model_quantize), the same code as its `llama-quantize` tool."""
    llama_cpp = llama_cpp_module()

    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[quant]
    params.nthread = threads
    from llama_cpp._utils import suppress_stdout_stderr
    with suppress_stdout_stderr(disable=False):  # its per-tensor log would bury the command's own output
        status = llama_cpp.llama_model_quantize(str(f16_path).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0:
        raise DataError(f"{out}: llama.cpp could not quantize the model to {quant} (status {status})")


def check_tokenization(gguf_path: Path, model_dir: Path, prompts: "PromptFormat") -> int:
    """llama.cpp's ids for each templated probe prompt must equal the ids training built (in the run's input
    format). Returns the count."""
    from transformers import AutoTokenizer

    from ..student.features import Encoder
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoder = Encoder(tokenizer, False, max_source=1 << 20, max_target=1, prompts=prompts)
    llama_cpp = llama_cpp_module()
    try:
        with llama_cpp._utils.suppress_stdout_stderr(disable=False):  # its context-size notice is noise here
            llama = llama_cpp.Llama(str(gguf_path), vocab_only=True, verbose=False)
    except ValueError as error:  # e.g. a pre-tokenizer name llama.cpp does not know
        raise DataError(f"{gguf_path}: llama.cpp cannot load the exported file ({error}; an unknown --pre?); "
                        "nothing was written") from error
    for text in PROBE_TEXTS:
        for system, source in ((None, prompts.label(text)), ("rationale", prompts.rationale(text))):
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            served = llama.tokenize(prompt.encode(), add_bos=False, special=True)
            if served != encoder.source_ids(source):
                raise DataError(f"{gguf_path}: llama.cpp tokenizes {source!r} differently from training "
                                "(wrong pre-tokenizer? try --pre); nothing was written")
    return 2 * len(PROBE_TEXTS)


def export(settings: ExportSettings, progress: bool = True) -> dict:
    from ..student.runfile import prompt_format_of
    from .convert import convert_to_f16
    from .template import write_chat_template

    started = time.time()
    model_dir, record = model_folder(settings.run)
    out = Path(settings.out) if settings.out else default_output(model_dir, settings.quant)
    out.parent.mkdir(parents=True, exist_ok=True)
    pre = choose_pre_tokenizer(model_dir, record, settings.pre)
    prompts = prompt_format_of(record, model_dir.parent)
    template = write_chat_template(model_dir, prompts)
    partial = out.with_name(out.stem + ".partial.gguf")  # renamed to `out` once checked: a failure keeps the old file
    f16_path = partial if settings.quant == "f16" else out.with_name(out.stem + ".f16-partial.gguf")
    try:
        convert_to_f16(model_dir, f16_path, pre, template, f"stepdistill {record.get('task', '')} student".strip(),
                       progress)
        if settings.quant != "f16":
            quantize(f16_path, partial, settings.quant, settings.threads)
        checked = check_tokenization(partial, model_dir, prompts)
        partial.replace(out)
    finally:
        f16_path.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return _write_sidecars(out, model_dir, record, settings, pre, checked, time.time() - started, prompts)


def _write_sidecars(out: Path, model_dir: Path, record: dict, settings: ExportSettings, pre: str,
                    checked: int, seconds: float, prompts: "PromptFormat") -> dict:
    """The Ollama Modelfile and export.json (settings, sizes) beside the GGUF."""
    from transformers import AutoTokenizer

    from .template import ollama_modelfile
    eos = AutoTokenizer.from_pretrained(str(model_dir)).eos_token
    max_tokens = record.get("settings", {}).get("label_max_new_tokens", 48)
    out.with_suffix(".Modelfile").write_text(ollama_modelfile(out.name, eos, max_tokens, prompts))
    info = {"settings": dataclasses.asdict(settings), "gguf": str(out), "bytes": out.stat().st_size,
            "pre_tokenizer": pre, "tokenization_checked_prompts": checked, "seconds": round(seconds, 1),
            "method": record.get("method"), "task": record.get("task"), "input_format": prompts.name,
            "label_max_new_tokens": max_tokens, "model_dir": str(model_dir),
            "modelfile": str(out.with_suffix(".Modelfile"))}
    write_json(out.with_suffix(".json"), info)
    return info
