"""A trained Llama-family student (HF folder) -> an f16 GGUF file, on gguf-py's writer and name maps.

llama.cpp's own converter (convert_hf_to_gguf.py) is not shipped by a maintained registry package, so this
is a small converter for the one architecture our decoder-only students use. Two traps it handles:
- rotary layout: HF Llama keeps each head's rotary halves apart ([x0..x31 | x32..x63]); GGUF's llama
  expects the pairs interleaved, so q_proj / k_proj rows are permuted per head;
- the pre-tokenizer (`tokenizer.ggml.pre`): it picks the regex llama.cpp splits text with before BPE, and a
  wrong one silently changes the ids. The caller names it; export.py checks the result against HF's ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DataError

SUPPORTED_MODEL_TYPES = ("llama",)  # SmolLM/SmolLM2, Llama 2/3, TinyLlama, our tiny-llama


def read_config(model_dir: Path) -> dict:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise DataError(f"{model_dir}: no config.json (expected a run folder's model/)")
    config = json.loads(config_path.read_text())
    if config.get("is_encoder_decoder") or config.get("model_type") == "t5":
        raise DataError(f"{model_dir}: encoder-decoder (T5) students have no GGUF/server path here: this export "
                        f"writes the {', '.join(SUPPORTED_MODEL_TYPES)} family only, and llama-cpp-python's "
                        "OpenAI server serves decoder-only models. Use `stepdistill predict` / `stepdistill eval` "
                        "(HF generate) for T5, or train a decoder-only student (--student smollm2) to serve it; "
                        "an ONNX export for T5 is a possible later path")
    if config.get("model_type") not in SUPPORTED_MODEL_TYPES:
        raise DataError(f"{model_dir}: model_type {config.get('model_type')!r} is not supported by the GGUF "
                        f"export (supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise DataError(f"{model_dir}: Llama models with bias terms are not supported by the GGUF export")
    return config


def interleave_rotary(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """(out, in) q/k projection in HF's split-halves rotary order -> llama.cpp's interleaved pairs."""
    rows, cols = weight.shape
    return weight.reshape(n_heads, 2, rows // n_heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of the saved model as fp32 numpy arrays (safetensors, one file or shards)."""
    from safetensors.numpy import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise DataError(f"{model_dir}: no *.safetensors weights")
    weights: dict[str, np.ndarray] = {}
    for path in files:
        weights.update({name: array.astype(np.float32) for name, array in _load_any_dtype(path, load_file).items()})
    return weights


def _load_any_dtype(path: Path, load_file) -> dict[str, np.ndarray]:
    try:
        return load_file(str(path))
    except (TypeError, ValueError):  # bf16 has no numpy dtype: go through torch
        from safetensors.torch import load_file as load_torch
        return {name: tensor.float().numpy() for name, tensor in load_torch(str(path)).items()}


def gguf_tensors(weights: dict[str, np.ndarray], config: dict):
    """(gguf name, array) pairs: norms stay f32, matrices become f16, q/k rows interleaved."""
    import gguf

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    for hf_name, array in weights.items():
        if hf_name == "lm_head.weight" and config.get("tie_word_embeddings", False):
            continue  # tied: llama.cpp reuses token_embd.weight as the output matrix
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise DataError(f"no GGUF name for tensor {hf_name!r} (unsupported Llama variant)")
        if hf_name.endswith("q_proj.weight"):
            array = interleave_rotary(array, heads)
        elif hf_name.endswith("k_proj.weight"):
            array = interleave_rotary(array, kv_heads)
        yield name, array.astype(np.float16) if array.ndim == 2 else array


def write_hyperparameters(writer, config: dict, name: str) -> None:
    import gguf

    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    rope = config.get("rope_parameters") or {}
    writer.add_name(name)
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads", heads))
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config["hidden_size"] // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if rope.get("rope_type", "default") not in ("default", None):
        raise DataError(f"rope scaling {rope.get('rope_type')!r} is not supported by the GGUF export")


def write_vocab(writer, model_dir: Path, vocab_size: int, pre: str, template: str) -> None:
    """BPE (gpt2-style byte-level) vocabulary, merges, special ids and the chat template."""
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = {index: tok for index, tok in tokenizer.added_tokens_decoder.items()}
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(by_id[index])
        if index in added:
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise DataError(f"{model_dir}: the tokenizer has no BPE merges; llama.cpp's gpt2 tokenizer needs them")
    special.chat_template = template
    special.add_to_gguf(writer)


def convert_to_f16(model_dir: Path, out: Path, pre: str, template: str, name: str, progress: bool = True) -> Path:
    """Write `out` (f16 GGUF) from a saved HF Llama folder."""
    import gguf

    config = read_config(model_dir)
    writer = gguf.GGUFWriter(str(out), "llama")
    write_hyperparameters(writer, config, name)
    write_vocab(writer, model_dir, config["vocab_size"], pre, template)
    for tensor_name, array in gguf_tensors(load_weights(model_dir), config):
        writer.add_tensor(tensor_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=progress)
    writer.close()
    return out
