"""What is cut from long inputs and targets, the `single` answer, the label-loss rule for batches without
rationale rows, and batched generation against one-at-a-time generation (tiny random students, seconds)."""

import pytest
import torch

from stepdistill.student.features import Encoder, TwoTaskCollator, task_texts
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
