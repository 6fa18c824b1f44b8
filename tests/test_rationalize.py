"""--rationalize with a scripted teacher: which inputs get a hinted request, what is kept, counts, cache."""

import json

import pytest
import yaml

from stepdistill.errors import DataError
from stepdistill.teacher.backends import FakeBackend
from stepdistill.teacher.extract import ExtractSettings, run_extract
from stepdistill.teacher.output import read_rationales
from stepdistill.teacher.prompts import BUILTIN, PromptBuilder, hinted_spec, load_template
from stepdistill.teacher.rationalize import ARITHMETIC, EXAMPLES_FILE, NO_RATIONALE, REPLACED


@pytest.fixture
def own_task(tmp_path):
    """Ten doublings with gold labels, as CSV, and a YAML prompt without a `hinted` template."""
    data = tmp_path / "doublings.csv"
    data.write_text("id,input,label\n" + "".join(f"q{i},What is {i} plus {i}?,{2 * i}\n" for i in range(10)))
    prompt = tmp_path / "prompt.yaml"
    prompt.write_text(yaml.safe_dump({"input": "Q: {{ question }}\nA:", "stop": ["\n\nQ:"], "exemplars": [
        {"question": "What is 1 plus 1?", "rationale": "One and one make two.", "label": "2"}]}))
    return f"{data}:numeric", str(prompt)


def hint_aware(wrong=(1, 2, 3, 4, 6), unparsable=(5,), hint_ignored=(4,), bare=(6,)):
    """Right unless i is in `wrong` (one too many) or `unparsable` (no answer cue); given a hint, it
    repeats the hinted answer, except for i in `hint_ignored`, where it stays wrong, and for i in `bare`,
    where it gives the answer with no rationale."""
    def answer(prompt):
        query = prompt.rsplit("\n\n", 1)[-1]
        i = int(query.rsplit("What is ", 1)[1].split(" ")[0])
        if query.startswith("Hint:"):
            hint = int(query.split("the answer is ")[1].split(".")[0])
            total = hint + 1 if i in hint_ignored else hint
            if i in bare:
                return f" So the answer is {total}."
            return f" Twice {i} is {total}. So the answer is {total}."
        if i in unparsable:
            return f" {i} and {i}, hmm."
        total = 2 * i + (i in wrong)
        return f" {i} and {i} make {total}. So the answer is {total}."
    return answer


def extract(tmp_path, own_task, fake, **kw):
    """--rationalize on own_task; the arithmetic check is off unless asked for (`Twice 1 is 2` computes nothing)."""
    task, prompt = own_task
    kw.setdefault("hint_check", "none")
    return run_extract(ExtractSettings(task=task, prompt=prompt, out=str(tmp_path / "out"), progress=False,
                                       backoff=0.001, rationalize=True, **kw), backend=fake)


def rows(tmp_path):
    return [json.loads(line) for line in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]


def test_wrong_and_unparsable_inputs_are_asked_again_and_kept_when_they_parse_back(tmp_path, own_task):
    fake = FakeBackend(answer=hint_aware())
    manifest = extract(tmp_path, own_task, fake)
    hinted_calls = [p for p in fake.calls if "Hint: the answer is" in p.rsplit("\n\n", 1)[-1]]
    assert len(fake.calls) == 10 + 6 and len(hinted_calls) == 6
    assert manifest["rationalize"]["tried"] == 6 and manifest["rationalize"]["kept"] == 4
    assert manifest["rationalize"]["replaced"] == 3  # q1-q3 were parsed (kept under --keep parsed), now replaced
    got = rows(tmp_path)
    hinted = [r for r in got if r.get("hinted")]
    assert [r["id"] for r in hinted] == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert [r["kept"] for r in hinted] == [True, True, True, False, True, False]  # q6: the bare hinted answer
    assert all(r["sample"] == 1 for r in hinted)
    # each hinted row follows its input's own row; the replaced wrong rows are no longer kept
    assert [r["id"] for r in got[:4]] == ["q0", "q1", "q1", "q2"]
    kept = read_rationales(tmp_path / "out")
    assert kept["q1"]["hinted"] is True and kept["q1"]["rationale"] == "Twice 1 is 2."
    assert kept["q4"]["teacher_label"] == "9" and not kept["q4"].get("hinted")  # hint ignored: the old row stays
    assert manifest["kept"] == sum(r["kept"] for r in got) == 10  # q5 did not parse; its hinted row is kept
    assert manifest["dropped"][REPLACED] == 3 and manifest["dropped"][f"hinted: {NO_RATIONALE}"] == 1
    assert manifest["teacher_accuracy"] == 40.0  # the main pass's accuracy, hints not counted
    shown = json.loads((tmp_path / "out" / EXAMPLES_FILE).read_text())
    assert [s["id"] for s in shown] == ["q1", "q2", "q3", "q5"]
    assert shown[0]["teacher_label"] == "3" and shown[0]["hinted_rationale"] == "Twice 1 is 2."


def test_hinted_requests_are_cached_like_the_others(tmp_path, own_task):
    extract(tmp_path, own_task, FakeBackend(answer=hint_aware()))
    again = FakeBackend(answer=hint_aware())
    manifest = extract(tmp_path, own_task, again)
    assert again.calls == [] and manifest["rationalize"]["requests_sent"] == 0
    assert manifest["rationalize"]["kept"] == 4 and len(rows(tmp_path)) == 16


def test_the_builtin_hinted_prompts_render_and_their_exemplars_parse_back(data_dir):
    from stepdistill.tasks import get_task
    for name, spec in BUILTIN.items():
        task = get_task(name, data_dir)
        example = task.load(task.pool_split, with_teacher=False)[0]
        builder = PromptBuilder(hinted_spec(spec))
        from stepdistill.teacher.prompts import prompt_values
        prompt = builder.render({**prompt_values(example), "hint": example.label})
        query = prompt.rsplit(spec.separator, 1)[-1]
        assert "answer is" in query and example.label in query, name
        assert "hint" in builder.spec.instruction


def test_a_user_prompt_can_name_its_own_hinted_template(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("input: \"Q: {{ question }}\\nA:\"\nhinted: \"Q: {{ question }} ({{ hint }})\\nA:\"\n"
                    "exemplars:\n  - {question: 'What is 1 plus 1?', rationale: 'One and one.', label: '2'}\n")
    builder = PromptBuilder(hinted_spec(load_template(path)))
    assert builder.render({"question": "What is 2 plus 2?", "hint": "4"}).endswith(
        "Q: What is 1 plus 1? (2)\nA: One and one. So the answer is 2.\n\nQ: What is 2 plus 2? (4)\nA:")


def test_replay_needs_a_hint_teacher_and_gets_the_builtin_prompt_and_a_cache(tmp_path, data_dir):
    with pytest.raises(DataError, match="--hint-teacher"):
        ExtractSettings(task="svamp", out="x", teacher="replay", rationalize=True)
    from stepdistill.tasks import get_task
    from stepdistill.teacher.backends import ReplayBackend
    from stepdistill.teacher.cache import Cache, MemoryStore
    from stepdistill.teacher.rationalize import HintRequests

    settings = ExtractSettings(task="svamp", out=str(tmp_path), teacher="replay", rationalize=True,
                               hint_teacher="local", data_dir=str(data_dir))
    task = get_task("svamp", data_dir)
    examples = task.load("train")[:3]
    hints = HintRequests.build(settings, task, examples, None, ReplayBackend({}), MemoryStore())
    assert hints.backend.name == "local" and hints.own_store and isinstance(hints.store, Cache)
    assert hints.params.stop == ("\n\nQ:",)
    prompt = hints.builder.render({"question": examples[0].input, "hint": examples[0].label})
    assert prompt.endswith(f"Hint: the answer is {examples[0].label}.\nA:")
    hints.store.close()


@pytest.mark.parametrize("cap", ["max_cost", "max_tokens_budget"])
def test_the_cost_and_token_caps_bound_the_hinted_pass_too(tmp_path, own_task, cap):
    """The caps are the run's: the main pass fits, and the hinted pass gets only what it left."""
    free = extract(tmp_path / "free", own_task, FakeBackend(answer=hint_aware()), max_tokens=32)
    main_tokens = free["tokens"]["total"]  # the main pass alone (FakeBackend: 4 characters a token)
    assert free["rationalize"]["requests_sent"] == 6
    prices = dict(price_in=1000.0, price_out=1000.0)  # USD per million tokens: a USD per thousand tokens
    limit = {"max_cost": (main_tokens + 150) / 1000, "max_tokens_budget": main_tokens + 150}[cap]
    fake = FakeBackend(answer=hint_aware())
    manifest = extract(tmp_path, own_task, fake, max_tokens=32, concurrency=1, **prices, **{cap: limit})
    hinted = manifest["rationalize"]
    assert manifest["answered"] == 10 and manifest["not_sent"] == 0  # the main pass was not held back
    assert 0 < hinted["requests_sent"] < 6 and hinted["not_sent"] == 6 - hinted["requests_sent"]
    assert hinted["tokens"] <= 150
    assert manifest["stopped_by_budget"] and manifest["stopped_by_cost"] == (cap == "max_cost")
    if cap == "max_cost":
        assert manifest["cost"]["run_usd"] + hinted["cost_usd"] <= limit


def sloppy_hints(prompt):
    """Wrong for every input but q0; given a hint, q1-q2 add it up right, q3 gets a right sum of its numbers
    that is not the answer, q4-q6 reach the hint through a wrong sum, q7-q8 only restate it, q9 copies a right
    sum about something else (a prompt exemplar's)."""
    query = prompt.rsplit("\n\n", 1)[-1]
    i = int(query.rsplit("What is ", 1)[1].split(" ")[0])
    if not query.startswith("Hint:"):
        return f" {i} and {i} make {2 * i + (i > 0)}. So the answer is {2 * i + (i > 0)}."
    if i <= 2:
        return f" {i} + {i} = {2 * i}. So the answer is {2 * i}."
    if i == 3:
        return f" {i} * {i} = {i * i}. So the answer is {2 * i}."
    if i <= 6:
        return f" {i} + {i} = {2 * i + 3}. So the answer is {2 * i}."
    if i <= 8:
        return f" The answer must be {2 * i}. So the answer is {2 * i}."
    return f" The book has 31 * 61 = 1891 pages. So the answer is {2 * i}."


@pytest.mark.parametrize("check, kept", [("auto", 2), ("arithmetic", 2), ("none", 9)])
def test_hinted_rationales_of_a_numeric_task_must_get_their_own_sums_right_to_the_answer(tmp_path, own_task, check, kept):
    manifest = extract(tmp_path, own_task, FakeBackend(answer=sloppy_hints), hint_check=check)
    assert manifest["rationalize"]["tried"] == 9 and manifest["rationalize"]["kept"] == kept
    assert manifest["rationalize"]["check"] == ("none" if check == "none" else "arithmetic")
    hinted = {r["id"]: r for r in rows(tmp_path) if r.get("hinted")}
    if check != "none":
        assert manifest["dropped"][f"hinted: {ARITHMETIC}"] == 7
        assert hinted["q3"]["arithmetic"] == {"statements": 1, "slips": [], "uses_question": True,
                                              "derives_answer": False}
        assert hinted["q4"]["arithmetic"] == {"statements": 1, "slips": ["4 + 4 = 11"], "uses_question": True,
                                              "derives_answer": False}
        assert hinted["q8"]["arithmetic"] == {"statements": 0, "slips": [], "uses_question": False,
                                              "derives_answer": False}
        assert hinted["q9"]["arithmetic"] == {"statements": 1, "slips": [], "uses_question": False,
                                              "derives_answer": False}
        assert not any(hinted[q]["kept"] for q in ("q3", "q8", "q9"))
        assert hinted["q2"]["kept"] and hinted["q2"]["arithmetic"]["slips"] == []
    else:
        assert all("arithmetic" not in r for r in hinted.values())


def test_the_arithmetic_check_is_off_by_default_for_tasks_scored_on_text(tmp_path, own_task):
    task, prompt = own_task
    manifest = extract(tmp_path, (task.replace(":numeric", ":exact"), prompt), FakeBackend(answer=sloppy_hints),
                       hint_check="auto")
    assert manifest["rationalize"]["check"] == "none" and manifest["rationalize"]["kept"] == 9
