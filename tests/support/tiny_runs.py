"""Tiny run folders for the deploy tests: a 2-layer Llama with a real (trained) byte-level BPE tokenizer, and a
tiny T5, saved the way `stepdistill train` saves them (model/ plus run.json)."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "Dan has 12 apples and eats 5. How many apples does Dan have now? 7",
    "A man is playing a guitar. </s> A person plays music. entailment",
    "There were 345 birds on 12 trees; 123 flew away. How many birds are left? 222",
    "It's 3:45pm and they'll re-use 10 boxes of 24 pens (x=2*y+1)!",
    "Café naïve résumé, “quotes” and 東京 🙂 — the question is easy.",
] * 20


def bpe_tokenizer(adds_bos: bool):
    """A byte-level BPE tokenizer (GPT-2's pre-tokenizer regex) trained on CORPUS: real merges, ~400 tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", bos_token="<s>")
    tokenizer.add_bos_token = adds_bos
    return tokenizer


def save_run(folder: Path, model, tokenizer, method: str = "dss") -> Path:
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    record = {"task": "svamp", "method": method, "student": "tiny", "is_seq2seq": False, "test_accuracy": 0.0,
              "settings": {"task": "svamp", "label_max_new_tokens": 8}}
    (folder / "run.json").write_text(json.dumps(record))
    return folder


def tiny_llama_run(folder: Path, adds_bos: bool = True, seed: int = 0) -> Path:
    """A random 2-layer Llama (GQA: 4 heads, 2 KV heads) whose weights are large enough to give peaked logits."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = bpe_tokenizer(adds_bos)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         rope_theta=10000.0, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0.0, 0.15)
    return save_run(folder, model, tokenizer)


def tiny_t5_run(folder: Path) -> Path:
    from stepdistill.student.models import tiny_student

    student = tiny_student("tiny-t5")
    return save_run(folder, student.model, student.tokenizer)


# A small chat template in the shape of SmolLM2's (turns closed by the EOS token), written with BOS at its start,
# as Llama-3-style templates are: a tokenizer that also adds BOS itself must still get one BOS, not two.
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def chat_student(folder: Path) -> Path:
    """A tiny Llama student folder (BPE tokenizer that adds BOS, with CHAT_TEMPLATE) for `train --student`."""
    model_dir = tiny_llama_run(folder) / "model"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(model_dir))
    return model_dir
