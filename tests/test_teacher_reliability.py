"""Issue 9, the extraction's part: a dead endpoint, a run with failures, a damaged cache, two runs on one
folder or cache, null and huge completions, credentials in --base-url, unwritable --out, non-UTF-8 input."""

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.teacher.backends import ConnectionFailed, FakeBackend, OpenAIBackend, TransientError
from stepdistill.teacher.extract import ExtractSettings, run_extract
from stepdistill.teacher.locks import exclusive
from support.loopback import LoopbackServer
from test_teacher_faults import KEY_ENV, key, openai_settings, svamp_answer  # noqa: F401  (key: a fixture)

SECRET = "pa55-in-the-url-9d2e"


def dead_url(userinfo: str = "") -> str:
    """A loopback URL where nothing listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://{userinfo}127.0.0.1:{port}/v1"


def rows(out):
    return [json.loads(line) for line in (out / "rationales.jsonl").read_text().splitlines()]


def cli_args(tmp_path, data_dir, url, *extra):
    return ["extract", "--task", "svamp", "--split", "test", "--teacher", "openai:loopback", "--base-url", url,
            "--api-key-env", KEY_ENV, "--out", str(tmp_path / "out"), "--data-dir", str(data_dir),
            "--prompt-style", "completion", "--timeout", "30", "--backoff", "0.01", "--no-progress", *extra]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# -- 5: a dead endpoint stops; failures exit non-zero ----------------------------------------------------
def test_a_dead_endpoint_trips_the_breaker_and_the_url_credential_stays_hidden(tmp_path, data_dir, key, capsys):
    url = dead_url(f"user:{SECRET}@")
    rc = main(cli_args(tmp_path, data_dir, url, "--limit", "20", "--retries", "6",
                       "--max-connection-failures", "5", "--concurrency", "2"))
    err = one_error_line(capsys)
    assert rc == 2 and "unreachable" in err and "5 connection failures in a row" in err
    assert SECRET not in err and not (tmp_path / "out" / "manifest.json").exists()


def test_a_connect_timeout_counts_as_a_connection_failure_and_a_read_timeout_does_not():
    import openai
    from openai._base_client import httpx2 as http  # the HTTP library this openai release is built on
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1")
    backend._connect()
    for cause, kind in ((http.ConnectTimeout("x"), ConnectionFailed), (http.ReadTimeout("x"), TransientError)):
        error = openai.APITimeoutError(request=http.Request("POST", "http://127.0.0.1:9/v1"))
        error.__cause__ = cause
        assert type(backend._classify(error)) is kind


def test_a_run_that_ends_with_failures_exits_1_and_says_how_to_retry(tmp_path, data_dir, key, capsys):
    with LoopbackServer(script=["503"] * 3, answer=svamp_answer) as server:
        rc = main(cli_args(tmp_path, data_dir, server.url, "--limit", "3", "--retries", "2", "--concurrency", "1"))
        out = capsys.readouterr().out
        assert rc == 1 and "1 failed" in out and "run the same command again" in out
        assert main(cli_args(tmp_path, data_dir, server.url, "--limit", "3")) == 0  # asks only the failed one


def test_with_replicas_the_breaker_waits_for_every_replica_to_be_dead(tmp_path, data_dir, key):
    with LoopbackServer(answer=svamp_answer) as server:
        manifest = run_extract(openai_settings(tmp_path, data_dir, [dead_url(), server.url], limit=8,
                                               max_connection_failures=1, timeout=30.0))
    assert manifest["answered"] == 8 and manifest["failed"] == 0
    with pytest.raises(DataError, match="unreachable"):
        run_extract(openai_settings(tmp_path, data_dir, [dead_url(), dead_url()], limit=8, retries=50,
                                    max_connection_failures=3, out=str(tmp_path / "dead")))


# -- 11: null and huge completions ------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["completion", "chat"])
def test_a_null_completion_is_retried_not_cached_as_empty(tmp_path, data_dir, key, style):
    with LoopbackServer(script=["null", "null"], answer=svamp_answer) as server:
        manifest = run_extract(openai_settings(tmp_path, data_dir, server.url, limit=3, concurrency=1,
                                               prompt_style=style))
    assert manifest["retries"] == 2 and manifest["answered"] == 3 and manifest["failed"] == 0
    assert all(row["completion"] and row["parse_error"] is None for row in rows(tmp_path / "out"))


def test_a_huge_completion_is_stored_cut_and_counted(tmp_path, data_dir, key):
    def huge_first(prompt):
        return svamp_answer(prompt) + (" and on" * 50_000 if "Paige" in prompt else "")
    with LoopbackServer(answer=huge_first) as server:
        manifest = run_extract(openai_settings(tmp_path, data_dir, server.url, limit=3, max_completion_chars=2000))
    assert manifest["completions_cut"] == 1
    lengths = sorted(len(row["completion"]) for row in rows(tmp_path / "out"))
    assert lengths[-1] == 2000 and lengths[0] < 200
    assert (tmp_path / "out" / "cache.sqlite").stat().st_size < 200_000  # not the 350 KB that came back


def test_imported_batch_results_are_held_to_the_same_rules(tmp_path, data_dir):
    from test_teacher_batch import batch_settings, export, openai_results, write_jsonl
    _, requests = export(tmp_path, data_dir)
    output, _ = openai_results(requests)
    output[0]["response"]["body"]["choices"][0]["message"]["content"] = None
    output[1]["response"]["body"]["choices"][0]["message"]["content"] = "x" * 5000
    report = run_extract(batch_settings(tmp_path, data_dir, max_completion_chars=100,
                                        import_results=[write_jsonl(tmp_path / "out.jsonl", output)]))
    assert (report["imported"], report["errors"], report["cut"]) == (5, 1, 1)


# -- 12: credentials in --base-url ------------------------------------------------------------------------
def test_a_credential_in_the_base_url_is_written_nowhere(tmp_path, data_dir, key, caplog, capsys):
    caplog.set_level("DEBUG")
    with LoopbackServer(script=["503", "drop"], answer=svamp_answer) as server:
        url = server.url.replace("http://", f"http://user:{SECRET}@")
        manifest = run_extract(openai_settings(tmp_path, data_dir, url, limit=3))
        exported = run_extract(openai_settings(tmp_path, data_dir, url, limit=4,
                                               export_requests=str(tmp_path / "out" / "requests")))
    assert manifest["answered"] == 3 and exported["requests"] == 1
    assert manifest["backend"]["base_url"] == server.url.replace("http://", "http://***@")
    captured = capsys.readouterr()
    for text in (json.dumps(manifest), caplog.text, captured.out, captured.err):
        assert SECRET not in text
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# -- 8: a damaged cache -----------------------------------------------------------------------------------
def long_answer(prompt):
    return " " + "Adding step by step. " * 100 + "The answer is (1 + 2)."


def test_a_damaged_cache_keeps_the_output_and_can_be_recovered(tmp_path, data_dir, capsys):
    first = FakeBackend(answer=long_answer)
    base = dict(task="svamp", split="test", limit=40, out=str(tmp_path / "out"), data_dir=str(data_dir),
                progress=False)
    run_extract(ExtractSettings(**base), backend=first)
    out, cache = tmp_path / "out", tmp_path / "out" / "cache.sqlite"
    manifest_before = (out / "manifest.json").read_bytes()
    data = bytearray(cache.read_bytes())
    answer_at = [match.start() for match in re.finditer(rb"Adding step by step\. The", data)]
    assert len(answer_at) == 40
    page = answer_at[20] // 4096 * 4096  # a page of the answers table, half-way through
    data[page:page + 600] = b"\xa5" * 600  # its header and first cells: garbage
    cache.write_bytes(bytes(data))

    with pytest.raises(DataError, match="damaged.*--recover-cache"):
        run_extract(ExtractSettings(**base), backend=FakeBackend(answer=long_answer))
    assert (out / "manifest.json").read_bytes() == manifest_before  # the finished output is untouched

    assert main(["extract", "--task", "svamp", "--split", "test", "--limit", "40", "--out", str(out),
                 "--data-dir", str(data_dir), "--recover-cache"]) == 0
    assert "recovered" in capsys.readouterr().out and (out / "cache.sqlite.damaged").is_file()
    again = FakeBackend(answer=long_answer)
    manifest = run_extract(ExtractSettings(**base), backend=again)
    assert 0 < len(again.calls) < 40 and manifest["cache_hits"] == 40 - len(again.calls)
    assert manifest["answered"] == len(again.calls) and manifest["rows"] == 40


# -- 9: one extraction at a time per folder and per cache -----------------------------------------------------
def test_an_output_folder_in_use_is_refused_and_a_stale_lock_taken_over(tmp_path, data_dir):
    base = dict(task="svamp", split="test", limit=2, data_dir=str(data_dir), progress=False)
    out = tmp_path / "out"
    with exclusive(out / ".extract.lock", "test"):
        with pytest.raises(DataError, match=f"in use by PID {os.getpid()}"):
            run_extract(ExtractSettings(**base, out=str(out)), backend=FakeBackend())
    shared = tmp_path / "shared.sqlite"
    with exclusive(tmp_path / "shared.sqlite.lock", "test"):  # another --out, the same --cache: refused too
        with pytest.raises(DataError, match=f"answers cache {shared} is in use by PID {os.getpid()}"):
            run_extract(ExtractSettings(**base, out=str(tmp_path / "other"), cache=str(shared)), backend=FakeBackend())
    (out / ".extract.lock").write_text("999999999\n")  # left by a killed run: no process holds it
    manifest = run_extract(ExtractSettings(**base, out=str(out)), backend=FakeBackend())
    assert manifest["answered"] == 2 and (out / ".extract.lock").read_text().strip() == str(os.getpid())


def test_a_second_process_on_one_out_is_refused_and_a_killed_ones_lock_taken_over(tmp_path, data_dir, key, capsys):
    out, lock = tmp_path / "out", tmp_path / "out" / ".extract.lock"
    with LoopbackServer(delay=0.2, answer=svamp_answer) as server:
        args = cli_args(tmp_path, data_dir, server.url, "--limit", "40", "--concurrency", "1")
        first = subprocess.Popen([sys.executable, "-m", "stepdistill.cli", *args], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            deadline = time.time() + 120
            while not server.log and time.time() < deadline and first.poll() is None:
                time.sleep(0.05)  # the first run holds the lock once it sends
            assert server.log and first.poll() is None, first.stderr.read() if first.poll() is not None else ""
            assert main(args) == 2
            assert f"output folder {out} is in use by PID {first.pid}" in one_error_line(capsys)
        finally:
            first.kill()  # kill -9: no clean-up, the lock file stays with a dead PID in it
            first.communicate(timeout=60)
        assert lock.read_text().strip() == str(first.pid)
        assert main(args) == 0 and lock.read_text().strip() == str(os.getpid())


# -- clear errors ---------------------------------------------------------------------------------------------------
def test_an_unwritable_out_is_one_line_and_exit_2(tmp_path, data_dir, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc = main(["extract", "--task", "svamp", "--split", "test", "--limit", "2", "--teacher", "replay",
               "--out", str(blocker / "out"), "--data-dir", str(data_dir)])
    err = one_error_line(capsys)
    assert rc == 2 and "cannot write there" in err and str(blocker) in err


def test_non_utf8_input_names_the_file_and_line(tmp_path, capsys):
    folder = tmp_path / "own"
    folder.mkdir()
    lines = [json.dumps({"id": f"q{i}", "input": f"What is {i}?", "label": str(i)}).encode() for i in range(3)]
    lines[2] = lines[2].replace(b"What", b"Wh\xe4t")  # Latin-1, not UTF-8
    (folder / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")  # a BOM is fine
    rc = main(["extract", "--task", f"jsonl:{folder}", "--split", "train", "--out", str(tmp_path / "out"),
               "--teacher", "openai:x", "--base-url", dead_url()])
    err = one_error_line(capsys)
    assert rc == 2 and f"{folder / 'train.jsonl'}:3" in err and "UTF-8" in err
