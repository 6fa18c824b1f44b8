"""`serve --engine batched`: concurrent requests decoded together give llama.cpp's own one-at-a-time answers,
streamed or whole; bad requests get 400s; a failing decode fails its requests instead of hanging them; a request
whose client went away stops decoding and frees its slot."""

import json
import queue
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from stepdistill.deploy.export import ExportSettings, export
from stepdistill.deploy.serve import ServeSettings, local_server
from stepdistill.errors import DataError
from support.chat_http import post_chat
from support.tiny_runs import tiny_llama_run

llama_cpp = pytest.importorskip("llama_cpp")
openai = pytest.importorskip("openai")

PROMPTS = ["Dan has 12 apples and eats 5. How many apples does Dan have now?", "A man plays a guitar.",
           "  odd   spacing\tand 東京 🙂 ", "What is 3 + 4?", "Sara reads 20 pages a day for 3 days.",
           "a", "The cat sat on the mat. Where is the cat?", "Tom had 7 marbles and lost 2."]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    run = tiny_llama_run(tmp_path_factory.mktemp("run"))
    return export(ExportSettings(run=str(run), quant="f16"), progress=False)["gguf"]


@pytest.fixture(scope="module")
def batched_server(tiny_gguf):
    # 4 slots for 8 concurrent requests: some wait for a slot and join the running batch later
    with local_server(tiny_gguf, threads=1, n_ctx=128, model_name="tiny", engine="batched", slots=4) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(batched_server):
    return openai.OpenAI(base_url=batched_server, api_key="none", max_retries=0, timeout=60)


# one slot of 2048 tokens: a request of LONG tokens (the tiny model runs "What is 3 + 4?" to max_tokens) holds
# it for thousands of decode steps, so one that stops after a few dozen was cancelled
LONG = 1900


@pytest.fixture(scope="module")
def one_slot(tiny_gguf):
    """The base URL of a server with one slot of 2048 tokens, and a client of it."""
    with local_server(tiny_gguf, threads=1, n_ctx=2048, model_name="tiny", engine="batched", slots=1) as base_url:
        yield base_url, openai.OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=60)


def server_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url.removesuffix('/v1')}/stats", timeout=10) as response:
        return json.loads(response.read())


def stats_once(base_url: str, condition) -> dict:
    """The server's stats once `condition(stats)` holds (polled; 60 s at most, then the test fails)."""
    deadline = time.monotonic() + 60
    while not condition(stats := server_stats(base_url)):
        assert time.monotonic() < deadline, f"the server's stats never got there: {stats}"
        time.sleep(0.02)
    return stats


def one_at_a_time(gguf, prompts: list[str], max_tokens: int) -> list[dict]:
    """llama.cpp's own greedy answers, one request after the other."""
    llm = llama_cpp.Llama(str(gguf), n_ctx=128, n_threads=1, verbose=False)
    return [llm.create_chat_completion([{"role": "user", "content": text}], temperature=0, repeat_penalty=1.0,
                                       max_tokens=max_tokens) for text in prompts]


def ask(client, text: str, max_tokens: int = 12, **extra):
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": text}],
                                          temperature=0, max_tokens=max_tokens, **extra)


def test_concurrent_requests_get_llama_cpps_own_greedy_answers(client, tiny_gguf):
    with ThreadPoolExecutor(8) as pool:
        served = list(pool.map(lambda text: ask(client, text), PROMPTS))
    expected = one_at_a_time(tiny_gguf, PROMPTS, 12)
    assert [r.choices[0].message.content for r in served] == [e["choices"][0]["message"]["content"] for e in expected]
    assert [r.choices[0].finish_reason for r in served] == [e["choices"][0]["finish_reason"] for e in expected]


def test_streamed_text_equals_the_whole_answer(client):
    whole = ask(client, PROMPTS[0]).choices[0].message.content
    chunks = list(ask(client, PROMPTS[0], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_a_stop_string_cuts_the_answer_whole_and_streamed(client):
    whole = ask(client, PROMPTS[1]).choices[0].message.content
    stop = whole.strip()[2:4]
    cut = ask(client, PROMPTS[1], stop=[stop])
    assert cut.choices[0].message.content == whole[: whole.index(stop)] and cut.choices[0].finish_reason == "stop"
    chunks = list(ask(client, PROMPTS[1], stop=[stop], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole[: whole.index(stop)]


def test_sampling_is_seeded_and_top_p_keeps_the_likeliest():
    from stepdistill.deploy.batched import pick_token
    logits = np.array([0.0, 3.0, 2.9, -1.0])
    draws = [pick_token(logits, 1.0, 1.0, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    assert {pick_token(logits, 5.0, 0.01, np.random.default_rng(seed)) for seed in range(20)} == {1}
    assert len({pick_token(logits, 5.0, 1.0, np.random.default_rng(seed)) for seed in range(40)}) > 2


def test_max_tokens_ends_with_length_and_counts_usage(client, tiny_gguf):
    reply = ask(client, PROMPTS[3], max_tokens=3)
    expected = one_at_a_time(tiny_gguf, PROMPTS[3:4], 3)[0]
    assert reply.choices[0].finish_reason == expected["choices"][0]["finish_reason"] == "length"
    assert reply.usage.completion_tokens == 3
    assert reply.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 3


def test_bad_requests_get_400_and_the_server_keeps_answering(batched_server):
    good = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
                       "temperature": 0}).encode()
    too_long = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "word " * 400}]}).encode()
    for body in [b'{"model": "tiny", "messages": [{', json.dumps({"model": "tiny", "messages": []}).encode(),
                 too_long]:
        status, reply = post_chat(batched_server, body)
        assert status == 400 and reply["error"]["message"]
        assert post_chat(batched_server, good)[0] == 200
    status, reply = post_chat(batched_server, too_long)
    assert "slot holds 128 tokens" in reply["error"]["message"]


def test_a_failing_decode_fails_its_request_and_the_engine_goes_on(tiny_gguf):
    from stepdistill.deploy.batched import BatchedEngine, Sequence
    engine = BatchedEngine(str(tiny_gguf), slots=2, ctx_per_slot=64, threads=1)
    try:
        prompt, stop = engine.prompt_ids([{"role": "user", "content": "hi"}])
        events = queue.Queue()
        real_decode = engine.context.ctx.decode

        def broken(batch):
            raise RuntimeError("llama_decode returned 1")
        engine.context.ctx.decode = broken
        engine.submit(Sequence(prompt, 4, lambda kind, value: events.put((kind, value)), stop))
        assert events.get(timeout=20) == ("error", "decoding failed: llama_decode returned 1")
        engine.context.ctx.decode = real_decode
        engine.submit(Sequence(prompt, 2, lambda kind, value: events.put((kind, value)), stop))
        while (event := events.get(timeout=20))[0] == "text":
            pass
        assert event[0] == "done"
        with pytest.raises(DataError, match="slot holds 64 tokens"):
            engine.submit(Sequence(prompt, 64, lambda kind, value: None, stop))
    finally:
        engine.close()


def test_serve_settings_check_the_engine_options():
    with pytest.raises(DataError, match="--slots"):
        ServeSettings(run="r", engine="batched", slots=0)
    with pytest.raises(DataError, match="not --replicas"):
        ServeSettings(run="r", engine="batched", replicas=2)


def test_a_streamed_request_whose_client_leaves_frees_its_slot(one_slot):
    base_url, client = one_slot
    answer = ask(client, PROMPTS[0]).choices[0].message.content
    before = server_stats(base_url)
    stream = ask(client, PROMPTS[3], max_tokens=LONG, stream=True)
    received = [chunk for chunk, _ in zip(stream, range(4))]  # the role, then three pieces of text
    stream.close()
    after = stats_once(base_url, lambda stats: stats["running"] == 0)
    assert len(received) == 4 and received[-1].choices[0].delta.content
    assert after["cancelled_running"] == before["cancelled_running"] + 1
    assert after["finished"] == before["finished"]
    assert 3 <= after["cancelled_tokens"] - before["cancelled_tokens"] < LONG // 4
    assert after["steps"] - before["steps"] < LONG // 4
    # the freed slot's KV cells were cleared: its next request gets the answer it got before
    assert ask(client, PROMPTS[0]).choices[0].message.content == answer


def test_a_request_cancelled_while_it_waits_never_takes_a_slot(one_slot):
    base_url, client = one_slot
    before = server_stats(base_url)
    holder = ask(client, PROMPTS[3], max_tokens=LONG, stream=True)
    assert next(holder).choices[0].delta.role == "assistant" and next(holder).choices[0].delta.content  # it runs
    waiter = ask(client, PROMPTS[0], max_tokens=LONG, stream=True)  # headers come before a slot does
    stats_once(base_url, lambda stats: stats["waiting"] == 1)
    waiter.close()
    during = stats_once(base_url, lambda stats: stats["waiting"] == 0)
    assert during["cancelled_waiting"] == before["cancelled_waiting"] + 1
    assert during["admitted"] == before["admitted"] + 1 and during["running"] == 1
    holder.close()
    after = stats_once(base_url, lambda stats: stats["running"] == 0)
    assert after["admitted"] == before["admitted"] + 1
    assert after["cancelled_running"] == before["cancelled_running"] + 1


def test_a_whole_answer_whose_client_times_out_is_cancelled(one_slot):
    base_url, client = one_slot
    before = server_stats(base_url)
    with pytest.raises(openai.APITimeoutError):
        ask(client.with_options(timeout=0.5), PROMPTS[3], max_tokens=LONG)
    cancelled = ("cancelled_running", "cancelled_waiting")

    def ended(stats: dict) -> bool:  # on a busy CPU the server may reach the request only after its client left
        return sum(stats[key] - before[key] for key in (*cancelled, "finished")) >= 1 and \
            stats["running"] == stats["waiting"] == 0

    after = stats_once(base_url, ended)
    assert sum(after[key] - before[key] for key in cancelled) == 1  # running or still waiting by then
    assert after["finished"] == before["finished"]  # it did not decode on to max_tokens
