"""The openai backend against a loopback server of our own that misbehaves on cue, and a killed run.

Every input must end up answered exactly once: nothing lost, nothing duplicated, the API key nowhere.
"""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time

import openai  # noqa: F401  imported here: under load, importing it inside the first request can pass --timeout 1
import pytest

from stepdistill.errors import DataError
from stepdistill.teacher.extract import ExtractSettings, run_extract
from support.loopback import LoopbackServer

KEY = "sk-test-never-write-me-7f3a9c1e"
KEY_ENV = "STEPDISTILL_TEST_API_KEY"


def svamp_answer(prompt: str) -> str:
    """A well-formed SVAMP completion that names its input, so each row can be matched to its prompt."""
    question = prompt.rsplit("Q: ", 1)[1][:30]
    return f" Working on '{question}'. The answer is (1 + 2)."


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def openai_settings(tmp_path, data_dir, url, **kw):
    base = dict(task="svamp", split="test", limit=8, teacher="openai:loopback", base_url=url, api_key_env=KEY_ENV,
                out=str(tmp_path / "out"), data_dir=str(data_dir), timeout=1.0, backoff=0.01, concurrency=4,
                progress=False, prompt_style="completion")
    return ExtractSettings(**{**base, **kw})


def assert_key_nowhere(folder, *texts):
    for path in folder.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    for text in texts:
        assert KEY not in text


def test_every_fault_is_survived_and_every_input_answered_once(tmp_path, data_dir, key, caplog, capsys):
    caplog.set_level("DEBUG")
    script = ["429", "500", "503", "malformed", "drop", "stall"]
    with LoopbackServer(script=script, retry_after=0.3, stall=10, answer=svamp_answer) as server:
        manifest = run_extract(openai_settings(tmp_path, data_dir, server.url, backoff=0.05))
    log = server.log
    assert [e["outcome"] for e in log[:6]] == script
    answered = server.answered()
    assert len(answered) == 8 and set(answered.values()) == {1}  # each input once, none twice
    assert manifest["answered"] == 8 and manifest["failed"] == 0 and manifest["retries"] == 6
    assert manifest["requests_sent"] == len(log) == 14
    rows = [json.loads(x) for x in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]
    assert len({r["id"] for r in rows}) == 8 and all(r["parse_error"] is None for r in rows)
    assert sorted(r["completion"] for r in rows) == sorted(svamp_answer(p) for p in answered)
    # the 429's Retry-After held every request back, not just the one that got it
    t429 = log[0]["time"]
    assert all(e["time"] >= t429 + 0.29 for e in log if e["n"] > 5)
    # the key was sent, and written nowhere
    assert {e["auth_sha256"] for e in log} == {hashlib.sha256(f"Bearer {KEY}".encode()).hexdigest()}
    captured = capsys.readouterr()
    assert_key_nowhere(tmp_path / "out", caplog.text, captured.out, captured.err, json.dumps(manifest))


def test_a_request_that_keeps_failing_is_recorded_and_retried_by_the_next_run(tmp_path, data_dir, key):
    with LoopbackServer(script=["503"] * 3, answer=svamp_answer) as server:
        manifest = run_extract(openai_settings(tmp_path, data_dir, server.url, limit=3, retries=2, concurrency=1))
        assert manifest["failed"] == 1 and manifest["answered"] == 2
        failed = [json.loads(x) for x in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()
                  if json.loads(x)["request_error"]]
        assert len(failed) == 1 and "gave up after 3 attempts" in failed[0]["request_error"]
        sent = len(server.log)
        again = run_extract(openai_settings(tmp_path, data_dir, server.url, limit=3))
        assert len(server.log) == sent + 1 and again["cache_hits"] == 2 and again["failed"] == 0


def test_a_refused_key_stops_the_run_and_is_not_repeated_back(tmp_path, data_dir, key, caplog):
    with LoopbackServer(script=["401"] * 50) as server:
        with pytest.raises(DataError, match="HTTP 401") as err:
            run_extract(openai_settings(tmp_path, data_dir, server.url, limit=50, concurrency=2))
        assert len(server.log) <= 3  # no hammering a server that refuses us
    assert KEY not in str(err.value) and KEY not in caplog.text


@pytest.mark.parametrize("style, path", [("chat", "/v1/chat/completions"), ("completion", "/v1/completions")])
def test_reasoning_is_kept_apart_from_the_answer(tmp_path, data_dir, key, style, path):
    with LoopbackServer(answer=svamp_answer, think="Let me add.") as server:
        manifest = run_extract(openai_settings(tmp_path, data_dir, server.url, limit=2, prompt_style=style))
    assert {e["path"] for e in server.log} == {path} and manifest["prompt_style"] == style
    rows = [json.loads(x) for x in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]
    assert all(r["reasoning"] == "Let me add." and "<think>" not in r["completion"] for r in rows)
    assert all(r["teacher_label"] == "(1 + 2)" for r in rows)


def test_no_key_and_no_server_is_a_clear_error(tmp_path, data_dir, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(DataError, match=KEY_ENV):
        run_extract(openai_settings(tmp_path, data_dir, None))


def answers_in(cache) -> int:
    try:
        with sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_killed_extraction_resumes_without_repeating_requests(tmp_path, data_dir, key):
    n, out = 60, tmp_path / "out"
    with LoopbackServer(delay=0.1, answer=svamp_answer) as server:
        cmd = [sys.executable, "-m", "stepdistill.cli", "extract", "--task", "svamp", "--split", "train",
               "--limit", str(n), "--teacher", "openai:loopback", "--base-url", server.url, "--api-key-env", KEY_ENV,
               "--concurrency", "2", "--out", str(out), "--data-dir", str(data_dir), "--prompt-style", "completion"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            deadline = time.time() + 90
            while answers_in(out / "cache.sqlite") < 10 and time.time() < deadline and proc.poll() is None:
                time.sleep(0.02)
        finally:
            proc.kill()
            stdout, stderr = proc.communicate(timeout=30)
        committed = answers_in(out / "cache.sqlite")
        before = len(server.log)
        assert 10 <= committed < n, stderr
        assert not (out / "manifest.json").exists()

        manifest = run_extract(openai_settings(tmp_path, data_dir, server.url, split="train", limit=n))
        resumed = server.log[before:]
    assert manifest["cache_hits"] == committed and manifest["answered"] == n - committed
    assert len(resumed) == n - committed  # nothing the killed run had committed was asked again
    asked_before = {e["prompt"] for e in server.log[:before]}
    assert len([e for e in resumed if e["prompt"] in asked_before]) <= 2  # at most the 2 in flight at the kill
    rows = [json.loads(x) for x in (out / "rationales.jsonl").read_text().splitlines()]
    assert len(rows) == n and all(r["completion"] for r in rows)
    assert_key_nowhere(out, stdout, stderr)
