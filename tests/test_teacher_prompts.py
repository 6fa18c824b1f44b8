"""Teacher prompts: our exemplars are right and in the parsers' format; templates render and fail clearly."""

import pytest

from stepdistill.errors import DataError
from stepdistill.tasks import get_task
from stepdistill.teacher.exemplars import EXEMPLARS
from stepdistill.teacher.prompts import BUILTIN, PromptBuilder, load_template, prompt_for, prompt_values


@pytest.mark.parametrize("name", ["cqa", "svamp", "anli1", "esnli"])
def test_every_exemplar_parses_back_to_its_label(name, data_dir):
    task = get_task(name, data_dir)
    builder = PromptBuilder(BUILTIN[name])
    assert 8 <= len(builder._shots) <= 10
    for (question, answer), ex in zip(builder._shots, EXEMPLARS[name]):
        parsed = task.parse(answer)
        assert parsed.ok, (answer, parsed.error)
        assert parsed.label == ex["label"]
        assert parsed.rationale == ex["rationale"]


@pytest.mark.parametrize("name", ["cqa", "svamp"])
def test_exemplars_come_from_train_with_the_gold_label(name, data_dir):
    task = get_task(name, data_dir)
    by_id = {ex.id: ex for ex in task.read_split("train")}
    for ex in EXEMPLARS[name]:
        gold = by_id[ex["id"]]
        assert ex["question"] == gold.fields["question"]
        if name == "cqa":
            assert ex["choices"] == gold.fields["choices"]
        assert task.score(ex["label"], gold.label), (ex["label"], gold.label)


@pytest.mark.parametrize("name", ["anli1", "esnli"])
def test_nli_exemplars_cover_all_three_labels_and_are_not_from_the_data(name, data_dir):
    task = get_task(name, data_dir)
    assert {ex["label"] for ex in EXEMPLARS[name]} == {"entailment", "neutral", "contradiction"}
    premises = {ex.fields["premise"] for split in task.release_splits for ex in task.read_split(split)}
    assert not premises & {ex["premise"] for ex in EXEMPLARS[name]}


def test_completion_prompt_ends_with_the_cue_and_holds_the_input(data_dir):
    task = get_task("cqa", data_dir)
    ex = task.read_split("test")[0]
    prompt = PromptBuilder(BUILTIN["cqa"]).render(prompt_values(ex))
    assert prompt.startswith("Answer each multiple-choice question.")
    assert prompt.endswith(ex.input.replace(ex.fields["question"], "Q: " + ex.fields["question"]) + "\nA:")
    assert prompt.count(". So the answer is (") == 8  # the instruction mentions it once more
    svamp = get_task("svamp", data_dir).read_split("test")[0]
    tail = PromptBuilder(BUILTIN["svamp"]).render(prompt_values(svamp)).rsplit("\n\n", 1)[1]
    assert tail == "Q: " + svamp.input.replace("\n", " ") + "\nA:"


def test_chat_prompt_alternates_turns_and_keeps_answers_whole():
    builder = PromptBuilder(BUILTIN["esnli"], style="chat", n_exemplars=3)
    messages = builder.render({"premise": "A cat sleeps.", "hypothesis": "An animal rests."})
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert messages[2]["content"].endswith("Answer: entailment")
    assert messages[-1]["content"] == "Premise: A cat sleeps.\nHypothesis: An animal rests.\nReasonings:"


def test_hash_changes_with_style_exemplars_and_nothing_else():
    base = PromptBuilder(BUILTIN["svamp"]).hash
    assert base == PromptBuilder(BUILTIN["svamp"]).hash
    assert len({base, PromptBuilder(BUILTIN["svamp"], style="chat").hash,
                PromptBuilder(BUILTIN["svamp"], n_exemplars=4).hash}) == 3


def test_yaml_template_for_an_own_task(tmp_path):
    path = tmp_path / "prompt.yaml"
    path.write_text(
        "instruction: Say the capital.\n"
        "input: \"Q: What is the capital of {{ country }}?\\nA:\"\n"
        "stop: \"\\n\\nQ:\"\n"
        "exemplars:\n"
        "  - {country: France, rationale: Paris is the seat of the French government., label: Paris}\n")
    spec = prompt_for("jsonl:x", path)
    builder = PromptBuilder(spec)
    assert builder.stop == ["\n\nQ:"]
    prompt = builder.render({"country": "Peru"})
    assert prompt == ("Say the capital.\n\nQ: What is the capital of France?\nA: Paris is the seat of the French "
                      "government. So the answer is Paris.\n\nQ: What is the capital of Peru?\nA:")
    chat = PromptBuilder(spec, style="chat").render({"country": "Peru"})
    assert chat[2] == {"role": "assistant", "content": "Paris is the seat of the French government. So the answer is Paris."}


def test_jinja_template_file_is_the_whole_prompt(tmp_path):
    path = tmp_path / "prompt.j2"
    path.write_text("Q: 2+2?\nA: Two and two make four. So the answer is 4.\n\nQ: {{ question }}\nA:")
    builder = PromptBuilder(load_template(path))
    assert builder.render({"question": "3+3?"}).endswith("Q: 3+3?\nA:")
    assert builder.render({"question": "3+3?"}) != PromptBuilder(load_template(path), style="chat").render({"question": "3+3?"})


@pytest.mark.parametrize("text, message", [
    ("input: [1, 2\n", "malformed YAML"),
    ("exemplars: []\n", "missing field 'input'"),
    ("input: 'Q: {{ q }'\n", "Jinja syntax error"),
    ("input: 'Q: {{ q }}'\nexemplars: [{x: 1, rationale: r, label: l}]\n", "'q' is undefined"),
    ("input: 'Q'\nprompt: x\n", "unknown field"),
])
def test_bad_templates_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        PromptBuilder(load_template(path))


def test_missing_field_at_render_names_the_input(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("input: 'Q: {{ question }}'\n")
    with pytest.raises(DataError, match="input 7.*'question' is undefined"):
        PromptBuilder(load_template(path)).render({"text": "hi"}, where="input 7")


def test_own_task_without_template_is_refused():
    with pytest.raises(DataError, match="--prompt"):
        prompt_for("jsonl:/tmp/x")
