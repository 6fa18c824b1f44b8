"""Batch API files out and results in, --batch-submit against a loopback Files/Batches server, and the
estimate: every input answered once, nothing cached ever lost, bad files refused with their line."""

import json

import openai  # noqa: F401  imported up front: under load, importing it inside the first request is slow
import pytest

from support.loopback import LoopbackServer, default_answer, prompt_text
from stepdistill.errors import DataError
from stepdistill.teacher import batchapi
from stepdistill.teacher.batchfiles import ShardWriter
from stepdistill.teacher.cache import Cache
from stepdistill.teacher.extract import ExtractSettings, run_extract

NOWHERE = "http://127.0.0.1:9/v1"  # nothing listens: a run that sends nothing never notices


def batch_settings(tmp_path, data_dir, **kw):
    base = dict(task="svamp", split="test", limit=6, teacher="openai:loopback", base_url=NOWHERE,
                api_key_env="STEPDISTILL_NO_SUCH_KEY", out=str(tmp_path / "out"), data_dir=str(data_dir),
                progress=False, backoff=0.01, timeout=5.0)
    return ExtractSettings(**{**base, **kw})


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def openai_results(requests, errors=()):
    """What OpenAI's Batch API returns for request lines: output lines, and error lines for `errors`."""
    output, failed = [], []
    for number, request in enumerate(requests):
        body = request["body"]
        if request["custom_id"] in errors:
            failed.append({"id": f"batch_req_{number}", "custom_id": request["custom_id"], "error": None,
                           "response": {"status_code": 400, "request_id": "r",
                                        "body": {"error": {"message": "context too long", "type": "invalid_request_error"}}}})
            continue
        reply = {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                 "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": default_answer(prompt_text(body))}}]}
        output.append({"id": f"batch_req_{number}", "custom_id": request["custom_id"], "error": None,
                       "response": {"status_code": 200, "request_id": "r", "body": reply}})
    return output, failed


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def export(tmp_path, data_dir, **kw):
    folder = tmp_path / "requests"
    manifest = run_extract(batch_settings(tmp_path, data_dir, export_requests=str(folder), **kw))
    return manifest, read_lines(folder / "requests-00000.jsonl") if manifest["requests"] else []


def test_export_writes_batch_api_lines_keyed_by_the_cache_key(tmp_path, data_dir):
    manifest, lines = export(tmp_path, data_dir, price_in=1.0, price_out=2.0, tokenizer="chars")
    assert manifest["mode"] == "export" and manifest["shards"] == 1 and manifest["requests"] == len(lines) == 6
    assert all(set(line) == {"custom_id", "method", "url", "body"} for line in lines)
    assert {line["url"] for line in lines} == {"/v1/chat/completions"} and lines[0]["method"] == "POST"
    assert lines[0]["body"]["model"] == "loopback" and lines[0]["body"]["max_tokens"] == 256
    assert len({line["custom_id"] for line in lines}) == 6
    chars = sum(sum(-(-len(m["content"]) // 4) + 4 for m in line["body"]["messages"]) + 3 for line in lines)
    tokens = manifest["estimated_tokens"]
    assert tokens == {"prompt": chars, "completion": 6 * 256, "total": chars + 6 * 256}
    assert manifest["estimated_cost_usd"] == pytest.approx((chars * 1.0 + 6 * 256 * 2.0) / 1e6, abs=1e-6)
    assert json.loads((tmp_path / "requests" / "export.json").read_text())["requests"] == 6
    assert not (tmp_path / "out" / "rationales.jsonl").exists()


def test_shards_never_pass_the_line_or_byte_limit(tmp_path):
    writer = ShardWriter(tmp_path, max_lines=3, max_bytes=30)
    for number in range(8):  # 9-byte lines, but line 5 is 18 bytes
        writer.write(f'{{"n": {number}}}\n'.encode() * (2 if number == 5 else 1))
    writer.close()
    # 3 lines (the line limit); 9 + 9, as 18 more would pass 30 bytes; 18 + 9; the last line
    assert [shard["requests"] for shard in writer.shards] == [3, 2, 2, 1]
    assert [shard["bytes"] for shard in writer.shards] == [27, 18, 27, 9]
    assert [len(path.read_bytes()) for path in sorted(tmp_path.glob("requests-*.jsonl"))] == [27, 18, 27, 9]


def test_import_then_plain_extract_sends_nothing_and_error_lines_are_retried(tmp_path, data_dir):
    _, requests = export(tmp_path, data_dir)
    failing = {requests[2]["custom_id"]}
    output, errors = openai_results(requests, errors=failing)
    files = [write_jsonl(tmp_path / "output.jsonl", output), write_jsonl(tmp_path / "errors.jsonl", errors)]
    report = run_extract(batch_settings(tmp_path, data_dir, import_results=files))
    assert (report["imported"], report["errors"], report["unknown"], report["duplicates"]) == (5, 1, 0, 0)
    again = run_extract(batch_settings(tmp_path, data_dir, import_results=files))
    assert (again["imported"], again["already_cached"]) == (0, 5)  # the same file twice adds nothing
    with LoopbackServer() as server:
        manifest = run_extract(batch_settings(tmp_path, data_dir, base_url=server.url, api_key_env="NONE_SET"))
    assert manifest["cache_hits"] == 5 and manifest["requests_sent"] == len(server.log) == 1  # only the error line
    rows = read_lines(tmp_path / "out" / "rationales.jsonl")
    assert len(rows) == 6 and all(row["completion"] for row in rows)
    _, left = export(tmp_path, data_dir)
    assert left == []  # everything answered: the next export is empty


def test_vllm_run_batch_output_is_read(tmp_path, data_dir):
    _, requests = export(tmp_path, data_dir, limit=3)
    output, _ = openai_results(requests[:2])
    for line in output:
        line["id"] = "vllm-" + line["id"]
        line["response"]["request_id"] = "vllm-batch-1"
    vllm_error = {"id": "vllm-x", "custom_id": requests[2]["custom_id"], "error": "prompt is too long",
                  "response": {"status_code": 400, "request_id": "vllm-batch-2"}}
    report = run_extract(batch_settings(tmp_path, data_dir, limit=3,
                                        import_results=[write_jsonl(tmp_path / "vllm.jsonl", output + [vllm_error])]))
    assert (report["imported"], report["errors"]) == (2, 1)
    with Cache(tmp_path / "out" / "cache.sqlite") as cache:
        assert cache.failures([requests[2]["custom_id"]]) == {
            requests[2]["custom_id"]: "batch error (HTTP 400): prompt is too long"}


def test_bad_results_files_are_refused_and_nothing_cached_is_lost(tmp_path, data_dir):
    _, requests = export(tmp_path, data_dir)
    output, _ = openai_results(requests)
    first = write_jsonl(tmp_path / "first.jsonl", output[:2])
    run_extract(batch_settings(tmp_path, data_dir, import_results=[first]))
    cache_file = tmp_path / "out" / "cache.sqlite"

    def answers():
        with Cache(cache_file) as cache:
            return cache.totals()["answers"]

    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("".join(json.dumps(line) + "\n" for line in output)[:-40])
    with pytest.raises(DataError, match=r"truncated.jsonl:6: malformed JSON.*Nothing from truncated.jsonl was imported"):
        run_extract(batch_settings(tmp_path, data_dir, import_results=[str(truncated)]))
    assert answers() == 2  # neither lost nor half-imported

    _, other = export(tmp_path / "other", data_dir, max_tokens=99)  # another request: another key
    foreign = write_jsonl(tmp_path / "foreign.jsonl", openai_results(other)[0])
    with pytest.raises(DataError, match="none of its 6 results is a request of this extraction"):
        run_extract(batch_settings(tmp_path, data_dir, import_results=[foreign]))
    assert answers() == 2

    mixed = write_jsonl(tmp_path / "mixed.jsonl", output[2:4] + [output[3]] + openai_results(other)[0][:1])
    report = run_extract(batch_settings(tmp_path, data_dir, import_results=[mixed]))
    assert (report["imported"], report["duplicates"], report["unknown"]) == (2, 1, 1)
    assert "mixed.jsonl:3 repeats line 2" in report["files"][0]["first_duplicate"]
    assert answers() == 4


def test_batch_submit_uploads_creates_polls_and_imports(tmp_path, data_dir):
    with LoopbackServer(batch_polls=2) as server:
        _, requests = export(tmp_path / "probe", data_dir)
        server.batch_errors = {requests[4]["custom_id"]}
        manifest = run_extract(batch_settings(tmp_path, data_dir, base_url=server.url, batch_submit=True,
                                              batch_poll=0.01, price_in=0.5, price_out=1.0))
    assert server.log == []  # nothing went through the live endpoint
    methods = [(method, path.split("/")[2]) for method, path in server.api_log]
    assert methods[:2] == [("POST", "files"), ("POST", "batches")]
    assert methods.count(("POST", "batches")) == 1 and methods.count(("GET", "files")) == 2  # output + errors
    assert manifest["answered"] == 5 and manifest["failed"] == 1 and manifest["requests_sent"] == 6
    assert manifest["cost"]["run_usd"] == pytest.approx(
        (manifest["tokens"]["prompt"] * 0.5 + manifest["tokens"]["completion"] * 1.0) / 1e6, abs=1e-6)
    rows = read_lines(tmp_path / "out" / "rationales.jsonl")
    assert sum(row["completion"] is not None for row in rows) == 5
    assert [row["request_error"] for row in rows if row["completion"] is None] == [
        "batch error (HTTP 400): scripted batch error"]
    state = json.loads((tmp_path / "out" / "batch" / "batches.json").read_text())["batches"]
    assert len(state) == 1 and state[0]["imported"] and state[0]["batch_id"] == "batch_1"


def test_a_killed_batch_submit_resumes_polling_instead_of_paying_twice(tmp_path, data_dir, monkeypatch):
    def killed(client, state, first_wait):
        raise KeyboardInterrupt  # the process dies after creating the batch, before it ends

    with LoopbackServer(batch_polls=3) as server:
        settings = batch_settings(tmp_path, data_dir, base_url=server.url, batch_submit=True, batch_poll=0.01)
        with monkeypatch.context() as patch:
            patch.setattr(batchapi, "_poll", killed)
            with pytest.raises(KeyboardInterrupt):
                run_extract(settings)
        state = json.loads((tmp_path / "out" / "batch" / "batches.json").read_text())["batches"]
        assert state[0]["batch_id"] == "batch_1" and not state[0]["imported"]
        manifest = run_extract(settings)
    assert [path for method, path in server.api_log if method == "POST"] == ["/v1/files", "/v1/batches"]
    assert manifest["answered"] == 6 and len(server.batches) == 1


def test_estimate_counts_uncached_requests_and_sends_nothing(tmp_path, data_dir, capsys):
    _, requests = export(tmp_path, data_dir)
    output, _ = openai_results(requests[:2])
    run_extract(batch_settings(tmp_path, data_dir, import_results=[write_jsonl(tmp_path / "o.jsonl", output)]))
    report = run_extract(batch_settings(tmp_path, data_dir, estimate=True, price_in=2.0, price_out=8.0,
                                        tokenizer="chars"))
    assert report["requests"] == 4 and report["already_cached"] == 2
    assert report["completion_tokens_each"] == 20  # the cache's mean, not --max-tokens
    tokens = report["estimated_tokens"]
    assert tokens["completion"] == 80
    assert report["estimated_cost_usd"] == pytest.approx((tokens["prompt"] * 2.0 + 80 * 8.0) / 1e6, abs=1e-6)


def test_estimate_with_the_local_teachers_own_tokenizer(tmp_path, data_dir):
    pytest.importorskip("llama_cpp")
    from llama_cpp import Llama

    from stepdistill.paths import smollm2_gguf

    report = run_extract(batch_settings(tmp_path, data_dir, teacher="local", limit=2, estimate=True))
    assert report["tokenizer"].startswith("gguf:") and report["requests"] == 2
    vocab = Llama(model_path=str(smollm2_gguf()), vocab_only=True, verbose=False)
    _, requests = export(tmp_path, data_dir, limit=2, prompt_style="completion")
    prompts = [line["body"]["prompt"] for line in requests]
    assert report["estimated_tokens"]["prompt"] == sum(len(vocab.tokenize(p.encode(), add_bos=False, special=True))
                                                      for p in prompts)


def test_modes_refuse_each_other_and_cost_caps_need_prices(tmp_path, data_dir):
    with pytest.raises(DataError, match="one at a time"):
        batch_settings(tmp_path, data_dir, estimate=True, export_requests=str(tmp_path))
    with pytest.raises(DataError, match="--max-cost needs prices"):
        batch_settings(tmp_path, data_dir, max_cost=1.0)
    with pytest.raises(DataError, match="need an openai: teacher"):
        run_extract(batch_settings(tmp_path, data_dir, teacher="replay", export_requests=str(tmp_path / "x")))


def test_a_plan_met_before_is_read_back_and_any_change_makes_a_new_one(tmp_path, data_dir):
    from stepdistill.teacher.backends import FakeBackend
    from stepdistill.teacher.cache import Cache as AnswersCache

    first = FakeBackend()
    run_extract(batch_settings(tmp_path, data_dir, teacher="openai:x", limit=4), backend=first)
    with AnswersCache(tmp_path / "out" / "cache.sqlite") as cache:
        assert cache.db.execute("SELECT COUNT(DISTINCT plan) FROM plan_keys").fetchone()[0] == 1
    again = FakeBackend()
    manifest = run_extract(batch_settings(tmp_path, data_dir, teacher="openai:x", limit=4), backend=again)
    assert again.calls == [] and manifest["cache_hits"] == 4  # the remembered keys are the same requests
    changed = FakeBackend()
    run_extract(batch_settings(tmp_path, data_dir, teacher="openai:x", limit=4, exemplars=2), backend=changed)
    assert len(changed.calls) == 4  # another prompt: another plan, new requests
    with AnswersCache(tmp_path / "out" / "cache.sqlite") as cache:
        assert cache.db.execute("SELECT COUNT(DISTINCT plan) FROM plan_keys").fetchone()[0] == 2


def test_batch_submit_refuses_a_batch_that_could_pass_max_cost(tmp_path, data_dir):
    with LoopbackServer() as server:
        with pytest.raises(DataError, match="more than --max-cost 0.01; nothing was submitted"):
            run_extract(batch_settings(tmp_path, data_dir, base_url=server.url, batch_submit=True,
                                       price_in=10.0, price_out=10.0, max_cost=0.01))
    assert server.api_log == []


def test_the_command_line_takes_repeated_base_urls_and_prints_each_mode(tmp_path, data_dir, capsys):
    from stepdistill.cli import main

    common = ["extract", "--task", "svamp", "--split", "test", "--limit", "3", "--teacher", "openai:loopback",
              "--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--no-progress",
              "--base-url", NOWHERE, "--base-url", "http://127.0.0.1:10/v1"]
    assert main(common + ["--export-requests", str(tmp_path / "requests"), "--price-in", "1", "--price-out", "2"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 requests in 1 shard(s)" in printed and "cost $" in printed
    manifest = json.loads((tmp_path / "requests" / "export.json").read_text())
    assert manifest["requests"] == 3
    output, errors = openai_results(read_lines(tmp_path / "requests" / "requests-00000.jsonl"))
    files = [write_jsonl(tmp_path / "a.jsonl", output[:2]), write_jsonl(tmp_path / "b.jsonl", output[2:])]
    assert main(common + ["--import-results", *files]) == 0
    assert "3 result lines: 3 answers imported" in capsys.readouterr().out
    assert main(common + ["--price-in", "1", "--price-out", "2"]) == 0
    printed = capsys.readouterr().out
    assert "3 from cache, 0 new (0 sent" in printed and "cost: $0.0000 this run" in printed
    assert main(common + ["--estimate", "--export-requests", str(tmp_path / "x")]) == 2  # one mode at a time
