"""Extraction in bounded memory: a user's rows read lazily, the plan walked a chunk of inputs at a time,
keys and ids on disk (keyindex.py). Chunks are made tiny here so that every boundary is crossed."""

import json

import pytest

from stepdistill.errors import DataError
from stepdistill.tasks import get_task
from stepdistill.teacher import plan as plan_module
from stepdistill.teacher.backends import FakeBackend
from stepdistill.teacher.extract import ExtractSettings, run_extract
from stepdistill.teacher.keyindex import KeyIndex, SeenIds

PROMPT = ("input: \"Q: {{ question }}\\nA:\"\nstop: \"\\n\\nQ:\"\n"
          "exemplars:\n  - question: What is 1 plus 1?\n    rationale: One and one make two.\n    label: '2'\n")


def write_task(tmp_path, numbers, ids=None):
    folder = tmp_path / "task"
    folder.mkdir(exist_ok=True)
    ids = ids or [f"q{i}" for i in range(len(numbers))]
    (folder / "train.jsonl").write_text("".join(
        json.dumps({"id": one, "input": f"What is {n} plus {n}?", "label": str(2 * n)}) + "\n"
        for one, n in zip(ids, numbers)))
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    return dict(task=f"jsonl:{folder}", prompt=str(tmp_path / "prompt.yaml"), progress=False, keep="all")


def doubler(prompt):
    n = int(prompt.rsplit("What is ", 1)[1].split(" ")[0])
    return f" {n} and {n} make {2 * n}. So the answer is {2 * n}."


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(plan_module, "CHUNK", 3)


def test_a_users_rows_are_read_one_at_a_time(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"input": "a"}\n{"input": "b"}\n{"input": "c"}\n{not json\n')
    examples = get_task(str(path)).stream("train")
    assert [next(examples).input for _ in range(3)] == ["a", "b", "c"]  # read before the bad line is met
    with pytest.raises(DataError, match=r"rows.jsonl:4: malformed JSON"):
        next(examples)


def test_chunked_extraction_asks_each_distinct_prompt_once_and_writes_every_row_in_order(tmp_path, small_chunks):
    numbers = [0, 1, 2, 3, 4, 5, 6, 1, 8, 3]  # inputs 7 and 9 repeat the prompts of 1 and 3, in later chunks
    task = write_task(tmp_path, numbers)
    settings = ExtractSettings(**task, out=str(tmp_path / "out"), samples=2, temperature=0.7)
    fake = FakeBackend(answer=doubler)
    manifest = run_extract(settings, backend=fake)
    assert len(fake.calls) == 2 * 8 and manifest["requests"] == 16 and manifest["inputs"] == 10
    rows = [json.loads(line) for line in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]
    assert [(r["id"], r["sample"]) for r in rows] == [(f"q{i}", s) for i in range(10) for s in (0, 1)]
    assert [r["teacher_label"] for r in rows[::2]] == [str(2 * n) for n in numbers]
    again = FakeBackend(answer=doubler)
    second = run_extract(settings, backend=again)  # the plan is read back from the cache, in chunks too
    assert again.calls == [] and second["cache_hits"] == 16
    assert [json.loads(line) for line in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()] == rows


def test_half_answered_plan_sends_only_the_rest(tmp_path, small_chunks):
    task = write_task(tmp_path, list(range(10)))
    run_extract(ExtractSettings(**task, out=str(tmp_path / "a"), limit=4, cache=str(tmp_path / "c.sqlite")),
                backend=FakeBackend(answer=doubler))
    rest = FakeBackend(answer=doubler)
    manifest = run_extract(ExtractSettings(**task, out=str(tmp_path / "b"), cache=str(tmp_path / "c.sqlite")),
                           backend=rest)
    assert manifest["cache_hits"] == 4 and len(rest.calls) == 6 and manifest["kept"] == 10
    assert all("What is 3 plus" not in prompt.rsplit("Q:", 1)[-1] for prompt in rest.calls)


def test_a_repeated_id_in_a_later_chunk_is_refused_before_anything_is_sent(tmp_path, small_chunks):
    ids = [f"q{i}" for i in range(9)] + ["q1"]
    task = write_task(tmp_path, list(range(10)), ids)
    fake = FakeBackend(answer=doubler)
    with pytest.raises(DataError, match="input id 'q1' appears more than once"):
        run_extract(ExtractSettings(**task, out=str(tmp_path / "out")), backend=fake)
    assert fake.calls == []


def test_key_index_marks_first_uses_across_additions():
    index = KeyIndex()
    index.add([("a", "b"), ("c", "a")])
    index.add([("b", "d")])
    assert index.inputs == 3 and index.requests == 4
    assert index.rows(1, 3) == [[("c", True), ("a", False)], [("b", False), ("d", True)]]
    assert [key for group in index.distinct() for key in group] == ["a", "b", "c", "d"]
    assert "d" in index and "e" not in index
    assert index.first_line("a", 7) is None and index.first_line("a", 9) == 7
    index.forget_lines()
    assert index.first_line("a", 2) is None
    index.close()


def test_seen_ids_finds_a_repeat_within_and_across_additions():
    ids = SeenIds()
    assert ids.add(["x", "y"]) is None
    assert ids.add(["z", "x"]) == "x"
    assert ids.add(["w", "w"]) == "w"
    ids.close()


def test_a_remembered_plan_is_read_back_whatever_its_pieces(tmp_path):
    from stepdistill.teacher.cache import Cache

    keys = [bytes([n]) * 32 for n in range(6)]  # three inputs, two samples each
    with Cache(tmp_path / "c.sqlite") as cache:
        cache.remember_plan("p", [keys[0] + keys[1] + keys[2], keys[3], keys[4] + keys[5]])  # an input straddles
        rows = [row for piece in cache.plan_keys("p", 3, 2) for row in piece]
        assert rows == [(keys[0].hex(), keys[1].hex()), (keys[2].hex(), keys[3].hex()), (keys[4].hex(), keys[5].hex())]
        assert cache.plan_keys("p", 4, 2) is None and cache.plan_keys("q", 3, 2) is None  # another size, another plan
