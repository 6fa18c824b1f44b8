"""--input-format: prefix sources as they always were; chat sources equal the student's own chat template, with one
BOS and no loss on the prompt; a chat run trains, is evaluated, predicts and is served in its format; students
that cannot take it are refused before any work (tiny students, seconds)."""

import json
import warnings

import pytest

from stepdistill.cli import main
from stepdistill.deploy.template import training_chat_template
from stepdistill.errors import DataError
from stepdistill.student import infer
from stepdistill.student.features import IGNORE, Encoder, task_texts
from stepdistill.student.prompts import (LABEL_INSTRUCTION, PREFIX, RATIONALE_INSTRUCTION, PromptFormat,
                                         prompt_format)
from stepdistill.student.settings import TrainSettings
from stepdistill.student.train import run_train
from stepdistill.tasks.base import Example
from support.tiny_runs import CHAT_TEMPLATE, bpe_tokenizer, chat_student

QUESTIONS = ["Dan has 12 apples and eats 5. How many apples does Dan have now?",
             "A man is playing a guitar. </s> A person plays music.", "odd   spacing\tand 東京 🙂 'quotes' \"too\""]
CHAT_RUN = dict(max_steps=2, batch_size=4, eval_limit=4, eval_steps=2, label_max_new_tokens=4, max_target_len=32,
                max_source_len=256, logging_steps=1, progress=False, eval_batch_size=4, test=False)


def chat_messages(instruction: str, text: str) -> list[dict]:
    return [{"role": "system", "content": instruction}, {"role": "user", "content": text}]


def chat_tokenizer(adds_bos: bool, template: str = CHAT_TEMPLATE):
    tokenizer = bpe_tokenizer(adds_bos)
    tokenizer.chat_template = template
    return tokenizer


def test_prefix_sources_are_the_paper_prefixes():
    texts = task_texts(Example("1", "q", "y"), "dss", "y", "because", prompts=PREFIX)
    assert texts.label == ("[label] q", "y") and texts.rationale == ("[rationale] q", "because")
    assert prompt_format("prefix", None, True, "tiny-t5") is PREFIX
    assert PREFIX.split("[rationale] q\n") == ("[rationale] ", "q\n")


def test_auto_is_chat_for_a_decoder_only_student_with_a_template_and_else_prefix():
    chat = chat_tokenizer(adds_bos=True)
    assert prompt_format("auto", chat, False, "tiny") == prompt_format("chat", chat, False, "tiny")
    assert prompt_format("auto", chat, True, "tiny-t5") is PREFIX  # an encoder-decoder student: the paper's format
    assert prompt_format("auto", bpe_tokenizer(True), False, "tiny") is PREFIX  # no chat template


@pytest.mark.parametrize("adds_bos", [True, False])
@pytest.mark.parametrize("template_bos", [True, False])
def test_chat_sources_are_the_students_chat_template_with_one_bos(adds_bos, template_bos):
    """Training ids, and the served template's ids (deploy/template.py) for the same user message."""
    template = CHAT_TEMPLATE if template_bos else CHAT_TEMPLATE.replace("{{ bos_token }}", "")
    tokenizer = chat_tokenizer(adds_bos, template)
    prompts = prompt_format("chat", tokenizer, False, "tiny")
    encoder = Encoder(tokenizer, False, max_source=512, max_target=32, prompts=prompts)
    served = chat_tokenizer(adds_bos, training_chat_template(tokenizer, prompts))
    for text in QUESTIONS:
        for source, instruction, system in ((prompts.label(text), LABEL_INSTRUCTION, []),
                                            (prompts.rationale(text), RATIONALE_INSTRUCTION, ["rationale"])):
            user = text.replace("</s>", "\n")  # NLI's marker: a newline in the chat format
            assert source == tokenizer.apply_chat_template(chat_messages(instruction, user), tokenize=False,
                                                           add_generation_prompt=True)
            ids, labels = encoder.encode(source, "( 12.0 - 5.0 )")
            prompt = encoder.source_ids(source)
            assert (ids[0] == tokenizer.bos_token_id) is (adds_bos or template_bos)
            assert ids[1] != tokenizer.bos_token_id  # never two BOS
            assert tokenizer.decode(prompt, skip_special_tokens=True).endswith("<|assistant|>\n")  # no "\n" added
            assert labels == [IGNORE] * len(prompt) + ids[len(prompt):] and len(ids) > len(prompt)
            messages = [{"role": "system", "content": content} for content in system] + [{"role": "user", "content": text}]
            assert served.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                              return_dict=False) == prompt


def test_nli_premise_and_hypothesis_stay_in_one_chat_turn():
    """The prefix format joins them with the EOS token, as the paper does; in the chat format that token ends
    the user turn (SmolLM2's <|im_end|>), so a newline joins them there, in training and in old records alike."""
    tokenizer = chat_tokenizer(True)
    chat = prompt_format("chat", tokenizer, False, "tiny")
    nli, plain = "A man plays. </s> A person plays.", "A man plays. A person plays."
    for prompts, extra_eos in ((chat, 0), (PREFIX, 1)):
        encoder = Encoder(tokenizer, False, max_source=512, max_target=32, prompts=prompts)
        ids, plain_ids = encoder.source_ids(prompts.label(nli)), encoder.source_ids(prompts.label(plain))
        assert ids.count(tokenizer.eos_token_id) == plain_ids.count(tokenizer.eos_token_id) + extra_eos
    assert "A man plays. \n A person plays." in chat.label(nli) and "</s> A" in PREFIX.label(nli)
    old_record = {key: value for key, value in chat.record().items() if key != "separator"}
    assert PromptFormat.from_record(old_record).separator is None  # runs trained before: EOS, as they were
    assert PromptFormat.from_record(chat.record()) == chat


def test_single_trains_on_the_label_format():
    prompts = prompt_format("chat", chat_tokenizer(True), False, "tiny")
    texts = task_texts(Example("1", "q", "y"), "single", "y", "because", prompts=prompts)
    assert texts.label == (prompts.label("q"), "because So the answer is y.") and texts.rationale is None


def test_a_long_chat_input_keeps_the_template_and_the_question():
    tokenizer = chat_tokenizer(True)
    prompts = prompt_format("chat", tokenizer, False, "tiny")
    encoder = Encoder(tokenizer, False, max_source=64, max_target=8, prompts=prompts)
    text = tokenizer.decode(encoder.source_ids(prompts.label("Tom picked apples all day. " * 10 + "How many?")))
    assert encoder.sources_cut == 1
    assert text.startswith(prompts.label_parts[0]) and text.endswith("How many?" + prompts.label_parts[1])
    with pytest.raises(DataError, match="--max-source-len 16 leaves no room"):
        Encoder(tokenizer, False, max_source=16, max_target=8, prompts=prompts).source_ids(prompts.label("x" * 40))


def test_a_template_that_changes_the_user_message_is_refused():
    trimming = CHAT_TEMPLATE.replace("message['content']", "message['content'] | replace('?', '')")
    with pytest.raises(DataError, match="student tiny changes the user message"):
        prompt_format("chat", chat_tokenizer(True, trimming), False, "tiny")
    no_system = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
    with pytest.raises(DataError, match="cannot render a system and a user message"):
        prompt_format("chat", chat_tokenizer(True, no_system), False, "tiny")


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory, data_dir):
    """A dss run in chat format (2 steps); every source generation saw is recorded."""
    student = chat_student(tmp_path_factory.mktemp("student"))
    out = tmp_path_factory.mktemp("run") / "chat"
    seen: list[str] = []
    real_generate = infer.generate

    def recording_generate(student, sources, *args, **kwargs):
        seen.extend(sources)
        return real_generate(student, sources, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "every evaluated checkpoint")  # 2 steps of a random model score 0%
        patch.setattr(infer, "generate", recording_generate)
        record = run_train(TrainSettings(task="svamp", method="dss", student=str(student), out=str(out),
                                         data_dir=str(data_dir), **CHAT_RUN))  # the default, auto: chat here
    return out, student, record, seen


def test_a_chat_run_trains_and_validates_on_chat_sources(chat_run, data_dir):
    from transformers import AutoTokenizer

    out, student, record, seen = chat_run
    prompts = prompt_format("chat", AutoTokenizer.from_pretrained(str(student)), False, str(student))
    assert record["steps"] == 2 and record["settings"]["input_format"] == "chat"
    assert json.loads((out / "settings.json").read_text())["input_format"] == "chat"
    assert PromptFormat.from_record(record["prompt_format"]) == prompts
    valid = [json.loads(line)["input"] for line in (out / "predictions_valid.jsonl").read_text().splitlines()]
    assert seen and set(seen) == {prompts.label(text) for text in valid}  # validation generated in chat format


def test_predict_of_a_chat_run_uses_its_format(chat_run, capsys, monkeypatch):
    out, _, record, _ = chat_run
    prompts = PromptFormat.from_record(record["prompt_format"])
    seen: list[str] = []
    real_generate = infer.generate
    monkeypatch.setattr(infer, "generate", lambda student, sources, *a, **k: seen.extend(sources) or
                        real_generate(student, sources, *a, **k))
    assert main(["predict", "--model", str(out), "--with-rationale", "Tom has 3 apples. How many?"]) == 0
    assert seen == [prompts.label("Tom has 3 apples. How many?"), prompts.rationale("Tom has 3 apples. How many?")]
    assert set(json.loads(capsys.readouterr().out)) == {"id", "prediction", "rationale"}
    assert main(["predict", "--model", str(out / "model"), "Tom?"]) == 0  # the run's model/ folder: the same format
    assert seen[-1] == prompts.label("Tom?")


def test_the_served_template_rebuilds_the_chat_training_source(chat_run):
    """transformers' apply_chat_template on the run folder's tokenizer gives the ids training built."""
    from transformers import AutoTokenizer

    out, _, record, _ = chat_run
    prompts = PromptFormat.from_record(record["prompt_format"])
    tokenizer = AutoTokenizer.from_pretrained(str(out / "model"))
    encoder = Encoder(tokenizer, False, max_source=1 << 20, max_target=8, prompts=prompts)
    for text in QUESTIONS:
        served = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                               add_generation_prompt=True, return_dict=False)
        assert served == encoder.source_ids(prompts.label(text))
        served = tokenizer.apply_chat_template([{"role": "system", "content": "rationale"},
                                                {"role": "user", "content": text}], tokenize=True,
                                               add_generation_prompt=True, return_dict=False)
        assert served == encoder.source_ids(prompts.rationale(text))
        assert served.count(tokenizer.bos_token_id) == 1


def test_the_exported_gguf_serves_the_chat_training_source(chat_run):
    """Export checks llama.cpp's ids on its probe prompts; llama-cpp-python's own formatter agrees here too."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from transformers import AutoTokenizer

    from stepdistill.deploy.export import ExportSettings, export

    out, _, record, _ = chat_run
    info = export(ExportSettings(run=str(out), quant="f16"), progress=False)
    assert info["input_format"] == "chat" and info["tokenization_checked_prompts"] == 10
    prompts = PromptFormat.from_record(record["prompt_format"])
    encoder = Encoder(AutoTokenizer.from_pretrained(str(out / "model")), False, 1 << 20, 8, prompts)
    llm = llama_cpp.Llama(info["gguf"], vocab_only=True, verbose=False)
    formatter = Jinja2ChatFormatter(llm.metadata["tokenizer.chat_template"], eos_token="</s>", bos_token="<s>")
    for text in QUESTIONS:
        prompt = formatter(messages=[{"role": "user", "content": text}]).prompt
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == encoder.source_ids(prompts.label(text))
    modelfile = (out / "export" / "student-f16.Modelfile").read_text()
    assert f"{prompts.label_parts[0]}{{{{ .Prompt }}}}{prompts.label_parts[1]}" in modelfile


@pytest.mark.parametrize("student, reason", [("tiny-t5", "tiny-t5 is an encoder-decoder model"),
                                             ("tiny-llama", "tokenizer of student tiny-llama has no chat template")])
def test_chat_format_needs_a_decoder_with_a_chat_template(student, reason, tmp_path, data_dir, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "svamp", "--data-dir", str(data_dir), "--student", student, "--out", str(out),
                 "--input-format", "chat", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: --input-format chat") and reason in err
    assert not out.exists()  # refused before the run folder was made


def test_a_run_started_in_prefix_format_refuses_to_resume_under_auto_for_a_chat_student(chat_run, tmp_path, data_dir):
    """A run begun before auto became the default stored `prefix`; auto now resolves to chat for this student, and
    --resume names the setting instead of continuing in another format."""
    from stepdistill.student.guards import with_input_format
    from stepdistill.student.resume import settings_differences

    _, student, _, _ = chat_run
    settings = TrainSettings(task="svamp", student=str(student), out=str(tmp_path), data_dir=str(data_dir), **CHAT_RUN)
    resolved = with_input_format(settings)
    assert settings.input_format == "auto" and resolved.input_format == "chat"
    stored = {**resolved.__dict__, "input_format": "prefix"}
    assert settings_differences(stored, resolved) == ["--input-format was 'prefix', now 'chat'"]
    assert settings_differences(resolved.__dict__, with_input_format(settings)) == []  # auto again: the same run
