"""What is cut from long inputs and targets, the `single` answer, the loss of batches without rationale rows or
with rationale-only rows (each task a mean over its own tokens, computed by hand here), and batched generation
against one-at-a-time generation (tiny random students, seconds)."""

import pytest
import torch

from stepdistill.student.features import IGNORE, Encoder, TwoTaskCollator, task_texts
from stepdistill.student.infer import generate, label_from_single
from stepdistill.student.loss import task_loss, two_task_loss
from stepdistill.student.models import load_student
from stepdistill.tasks.base import Example

QUESTION = "How many apples does Tom have now?"
LONG_INPUT = "Tom picked apples in the orchard all day long. " * 6 + QUESTION


@pytest.fixture(scope="module")
def llama():
    return load_student("tiny-llama")


def test_long_decoder_input_keeps_its_task_prefix_and_its_question(llama):
    encoder = Encoder(llama.tokenizer, False, max_source=64, max_target=16)
    for source in (f"[label] {LONG_INPUT}", f"[rationale] {LONG_INPUT}"):
        ids = encoder.source_ids(source)
        text = llama.tokenizer.decode(ids)
        assert len(ids) == 64
        assert text.startswith(source.split(" ")[0] + " ") and text.endswith(QUESTION + "\n")
    assert encoder.sources_cut == 2
    assert llama.tokenizer.decode(encoder.source_ids("[label] short?")) == "[label] short?\n"
    assert encoder.sources_cut == 2  # a short input is not cut


def test_long_seq2seq_input_keeps_its_prefix_and_eos():
    t5 = load_student("tiny-t5")
    encoder = Encoder(t5.tokenizer, True, max_source=64, max_target=16)
    ids = encoder.source_ids(f"[label] {LONG_INPUT}")
    assert len(ids) == 64 and t5.tokenizer.decode(ids[:8]) == "[label] " and encoder.sources_cut == 1


def test_long_single_target_cuts_the_rationale_and_keeps_the_answer(llama):
    encoder = Encoder(llama.tokenizer, False, max_source=64, max_target=48)
    _, target = task_texts(Example("1", "q", "( 3.0 + 4.0 )"), "single", "( 3.0 + 4.0 )",
                           "He had three and got four more. " * 5).label
    ids = encoder.target_ids(target)
    text = llama.tokenizer.decode(ids, skip_special_tokens=True)
    assert len(ids) == 48 and ids[-1] == llama.tokenizer.eos_token_id and encoder.targets_cut == 1
    assert text.startswith("He had three") and text.endswith(" So the answer is ( 3.0 + 4.0 ).")
    assert label_from_single(text) == "( 3.0 + 4.0 )"
    rationale_row = encoder.target_ids("He had three and got four more. " * 5)  # other targets keep their start
    assert llama.tokenizer.decode(rationale_row[:12]) == "He had three" and len(rationale_row) == 48


def test_single_without_a_rationale_trains_on_the_answer_sentence():
    texts = task_texts(Example("1", "q", "y"), "single", "( 1.0 + 2.0 )", None)
    assert texts.label == ("[label] q", "So the answer is ( 1.0 + 2.0 ).")
    assert label_from_single(texts.label[1]) == "( 1.0 + 2.0 )"  # what the scorer reads back


def _label_rows(student):
    encoder = Encoder(student.tokenizer, student.is_seq2seq, 64, 16)
    rows = [encoder.encode(f"[label] {question}", answer) for question, answer in (("1+1?", "2"), ("2+5?", "7"))]
    return TwoTaskCollator(student.tokenizer.pad_token_id, student.is_seq2seq)(
        [{"label_input_ids": ids, "label_labels": labels, "rationale_input_ids": [], "rationale_labels": []}
         for ids, labels in rows])


def test_a_batch_without_rationale_rows_weights_the_label_loss_by_alpha(llama):
    batch = _label_rows(llama)
    assert "rationale" not in batch
    with torch.no_grad():
        label_loss = task_loss(llama.model, batch["label"], False)
        for alpha in (0.3, 0.5):
            loss, label_part, rationale_part = two_task_loss(llama.model, batch, False, alpha)
            torch.testing.assert_close(loss, alpha * label_loss)
            torch.testing.assert_close(label_part, label_loss)
            assert rationale_part is None
        loss, _, _ = two_task_loss(llama.model, batch, False, 1.0)  # standard: the label loss itself
        torch.testing.assert_close(loss, label_loss)


def _encoded(student, label: tuple[str, str] | None, rationale: tuple[str, str] | None) -> dict:
    """One dataset row; a part given as None is empty, as build_dataset writes it."""
    encoder = Encoder(student.tokenizer, student.is_seq2seq, 64, 24)
    label_ids, label_labels = encoder.encode(*label) if label else ([], [])
    rationale_ids, rationale_labels = encoder.encode(*rationale) if rationale else ([], [])
    return {"label_input_ids": label_ids, "label_labels": label_labels,
            "rationale_input_ids": rationale_ids, "rationale_labels": rationale_labels}


def _hand_mean_nll(model, rows: list[tuple[list[int], list[int]]]) -> torch.Tensor:
    """Mean over every target token of the rows of -log p(token | the tokens before it), each row run alone
    (no padding): the reference for a task's loss."""
    total, tokens = torch.tensor(0.0), 0
    for ids, labels in rows:
        log_probs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)  # (T, V)
        for position in range(1, len(ids)):
            if labels[position] != IGNORE:
                total = total - log_probs[position - 1, labels[position]]
                tokens += 1
    return total / tokens


MIXED = [  # (label part, rationale part) of four rows: both, rationale-only (two), label-only
    (("[label] Tom has 3 apples and buys 2. How many?", "5"), ("[rationale] Tom has 3 apples and buys 2. How many?",
                                                              "3 + 2 = 5 apples.")),
    (None, ("[rationale] Tom has 3 apples and buys 2. How many?", "He had three, then two more, so five.")),
    (None, ("[rationale] Tom has 3 apples and buys 2. How many?", "Add them.")),
    (("[label] Ann has 9 pens and loses 4. How many now?", "5"), None),
]


def test_a_batch_with_rationale_only_rows_gives_the_hand_computed_loss(llama):
    features = [_encoded(llama, label, rationale) for label, rationale in MIXED]
    batch = TwoTaskCollator(llama.tokenizer.pad_token_id, False)(features)
    assert batch["label"]["input_ids"].shape[0] == 2 and batch["rationale"]["input_ids"].shape[0] == 3
    llama.model.eval()
    with torch.no_grad():
        label_mean = _hand_mean_nll(llama.model, [(f["label_input_ids"], f["label_labels"]) for f in features
                                                  if f["label_input_ids"]])
        rationale_mean = _hand_mean_nll(llama.model, [(f["rationale_input_ids"], f["rationale_labels"])
                                                      for f in features if f["rationale_input_ids"]])
        loss, label_part, rationale_part = two_task_loss(llama.model, batch, False, 0.3)
    torch.testing.assert_close(label_part, label_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rationale_part, rationale_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, 0.3 * label_mean + 0.7 * rationale_mean, atol=1e-5, rtol=1e-5)


def test_a_batch_without_label_tokens_is_the_rationale_loss_alone_and_never_nan(llama):
    features = [_encoded(llama, None, rationale) for _, rationale in MIXED[1:3]]
    batch = TwoTaskCollator(llama.tokenizer.pad_token_id, False)(features)
    assert set(batch) == {"rationale"}
    with torch.no_grad():
        rationale_loss = task_loss(llama.model, batch["rationale"], False)
        loss, label_part, rationale_part = two_task_loss(llama.model, batch, False, 0.3)
    assert label_part is None and torch.isfinite(loss)
    torch.testing.assert_close(loss, 0.7 * rationale_loss)
    torch.testing.assert_close(rationale_part, rationale_loss)
    # label rows whose targets are all masked count as no label tokens too: no 0/0 mean
    masked = {**batch, "label": {**batch["rationale"], "labels": torch.full_like(batch["rationale"]["labels"], IGNORE)}}
    with torch.no_grad():
        loss, label_part, _ = two_task_loss(llama.model, masked, False, 0.3)
    assert label_part is None and torch.isfinite(loss)
    torch.testing.assert_close(loss, 0.7 * rationale_loss)


def test_a_batch_with_nothing_to_learn_is_zero_and_backward_runs(llama):
    batch = TwoTaskCollator(llama.tokenizer.pad_token_id, False)([_encoded(llama, None, MIXED[1][1])])
    llama.model.zero_grad(set_to_none=True)
    loss, label_part, rationale_part = two_task_loss(llama.model, batch, False, 1.0)  # dss at alpha 1: label only
    assert loss.detach().item() == 0.0 and label_part is None and rationale_part is None
    loss.backward()
    grads = [param.grad for param in llama.model.parameters() if param.grad is not None]
    assert grads and all(not grad.any() for grad in grads)
    llama.model.zero_grad(set_to_none=True)


SOURCES = ["[label] 1+1?", "[label] Tom has 3 apples and eats one. How many are left?", "[label] 7",
           "[label] A much longer question about trains leaving stations at different speeds?", "[label] ok?"]


@pytest.mark.parametrize("spec", ["tiny-llama", "tiny-t5"])
def test_batched_left_padded_generation_equals_one_at_a_time(spec):
    student = load_student(spec, seed=0)
    with torch.no_grad():  # larger random weights: the untrained tiny T5 otherwise answers every input alike
        for parameter in student.model.parameters():
            parameter.mul_(3.0)
    batched = generate(student, SOURCES, max_new_tokens=8, batch_size=len(SOURCES), progress=False)
    alone = [generate(student, [source], max_new_tokens=8, batch_size=1, progress=False)[0] for source in SOURCES]
    assert batched == alone
    assert len(set(alone)) > 1  # the inputs lead to different continuations: a real comparison


@pytest.mark.parametrize("with_bos", [True, False])
def test_bos_follows_what_a_reloaded_tokenizer_does_not_its_flag(tmp_path, with_bos):
    """transformers 5 reads add_bos_token as False from a saved Llama-style tokenizer that still puts BOS first
    (a hub student, a run's model/ folder): the rule follows the tokenizer's behaviour, so training, eval and
    the served template agree with how the model was pretrained."""
    from transformers import AutoTokenizer

    from stepdistill.student.features import adds_bos
    from support.tiny_runs import bpe_tokenizer

    bpe_tokenizer(with_bos).save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    puts_bos = reloaded("a").input_ids[0] == reloaded.bos_token_id
    assert puts_bos == with_bos and adds_bos(reloaded) == with_bos
    ids = Encoder(reloaded, False, max_source=64, max_target=8).source_ids("[label] two apples")
    assert ids.count(reloaded.bos_token_id) == int(with_bos) and (ids[0] == reloaded.bos_token_id) == with_bos
