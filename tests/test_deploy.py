"""Shipping a student: chat template = training prompt, GGUF export loaded by llama.cpp in process, the server's
answers to good and bad requests, and `eval --endpoint`. Tiny models only (seconds); SmolLM2 checks are slow."""

import json
import os
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from stepdistill.cli import main
from stepdistill.deploy.convert import interleave_rotary
from stepdistill.deploy.export import ExportSettings, export
from stepdistill.deploy.serve import free_port, local_server, start_server, stop_server, wait_until_ready
from stepdistill.deploy.server_app import chat_request_problem, with_training_defaults
from stepdistill.deploy.template import chat_template
from stepdistill.errors import DataError
from stepdistill.student.features import Encoder, label_source, rationale_source
from support.chat_http import post_chat
from support.tiny_runs import bpe_tokenizer, tiny_llama_run, tiny_t5_run

llama_cpp = pytest.importorskip("llama_cpp")

QUESTIONS = ["Dan has 12 apples and eats 5. How many apples does Dan have now?",
             "A man is playing a guitar. </s> A person plays music.", "  odd   spacing\tand 東京 🙂 "]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return tiny_llama_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def tiny_f16(tiny_run):
    return export(ExportSettings(run=str(tiny_run), quant="f16"), progress=False)


def encoder_for(tokenizer) -> Encoder:
    return Encoder(tokenizer, False, max_source=512, max_target=8)


@pytest.mark.parametrize("adds_bos", [True, False])
def test_chat_template_rebuilds_the_training_prompt(adds_bos):
    tokenizer = bpe_tokenizer(adds_bos)
    tokenizer.chat_template = chat_template(adds_bos)
    encoder = encoder_for(tokenizer)
    for text in QUESTIONS:
        label_ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                                  add_generation_prompt=True, return_dict=False)
        assert label_ids == encoder.source_ids(label_source(text))
        rationale_ids = tokenizer.apply_chat_template(
            [{"role": "system", "content": "rationale"}, {"role": "user", "content": "earlier"},
             {"role": "assistant", "content": "x"}, {"role": "user", "content": text}],
            tokenize=True, add_generation_prompt=True, return_dict=False)
        assert rationale_ids == encoder.source_ids(rationale_source(text))
    assert (tokenizer.bos_token_id == label_ids[0]) is adds_bos


def test_interleave_rotary_pairs_the_halves_of_each_head():
    weight = np.arange(16, dtype=np.float32).reshape(16, 1)  # 2 heads of head_dim 8, one input column
    assert interleave_rotary(weight, 2)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]


def test_export_f16_loads_in_llama_cpp_and_matches_hf(tiny_run, tiny_f16):
    import torch

    from stepdistill.student.models import load_trained
    student = load_trained(tiny_run)
    llm = llama_cpp.Llama(tiny_f16["gguf"], n_ctx=256, logits_all=True, verbose=False, n_threads=1)
    ids = encoder_for(student.tokenizer).source_ids(label_source(QUESTIONS[0]))
    with torch.no_grad():
        hf_logits = student.model(torch.tensor([ids])).logits[0].numpy()
        hf_greedy = student.model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                                           eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
    llm.eval(ids)
    assert np.abs(np.array(llm.scores[: len(ids)]) - hf_logits).max() < 0.05 * np.abs(hf_logits).max()
    llm.reset()
    served = []
    for token in llm.generate(ids, temp=0.0):
        served.append(token)
        if len(served) == 8:
            break
    assert served == hf_greedy
    assert tiny_f16["pre_tokenizer"] == "gpt-2" and tiny_f16["tokenization_checked_prompts"] == 10


def test_llama_cpp_chat_formatter_sends_the_training_ids(tiny_run, tiny_f16):
    """The server path: llama-cpp-python renders the GGUF's template itself, then tokenizes with special tokens."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_run / "model"))
    llm = llama_cpp.Llama(tiny_f16["gguf"], vocab_only=True, verbose=False)
    formatter = Jinja2ChatFormatter(llm.metadata["tokenizer.chat_template"], eos_token="</s>", bos_token="<s>")
    for text in QUESTIONS:
        prompt = formatter(messages=[{"role": "user", "content": text}]).prompt
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == \
            encoder_for(tokenizer).source_ids(label_source(text))
    assert "[label]" in (tiny_run / "model" / "chat_template.jinja").read_text()


def test_q8_0_is_smaller_and_agrees(tiny_run, tiny_f16):
    q8 = export(ExportSettings(run=str(tiny_run), quant="q8_0"), progress=False)
    assert q8["bytes"] < 0.7 * tiny_f16["bytes"]
    ids = [1, 50, 60, 70, 80, 90]
    scores = []
    for path in (tiny_f16["gguf"], q8["gguf"]):
        llm = llama_cpp.Llama(path, n_ctx=64, logits_all=True, verbose=False, n_threads=1)
        llm.eval(ids)
        scores.append(np.array(llm.scores[: len(ids)]))
    assert (scores[0].argmax(-1) == scores[1].argmax(-1)).mean() >= 0.8


def test_wrong_pre_tokenizer_is_refused_and_keeps_the_old_file(tiny_run, tiny_f16):
    before = (tiny_run / "export" / "student-f16.gguf").read_bytes()
    with pytest.raises(DataError, match="differently from training"):
        export(ExportSettings(run=str(tiny_run), quant="f16", pre="smollm"), progress=False)
    assert (tiny_run / "export" / "student-f16.gguf").read_bytes() == before
    assert not list((tiny_run / "export").glob("*partial*"))


def test_t5_students_get_a_clear_error(tmp_path, capsys):
    run = tiny_t5_run(tmp_path / "t5")
    assert main(["export", str(run), "--quant", "f16"]) == 2
    err = capsys.readouterr().err
    assert "encoder-decoder" in err and "stepdistill predict" in err


@pytest.mark.parametrize("body, problem", [
    (b'{"messages": [{', "malformed JSON"),
    (b'[1, 2]', "JSON object"),
    (b'{"model": "m", "messages": []}', "non-empty list"),
    (b'{"messages": [{"role": "system", "content": "rationale"}]}', "role 'user'"),
])
def test_chat_request_problems(body, problem):
    assert problem in chat_request_problem(body)


def test_requests_get_no_repeat_penalty_unless_they_ask():
    assert json.loads(with_training_defaults(b'{"messages": []}'))["repeat_penalty"] == 1.0
    assert json.loads(with_training_defaults(b'{"repeat_penalty": 1.3}'))["repeat_penalty"] == 1.3


def test_chat_request_ok():
    assert chat_request_problem(b'{"messages": [{"role": "user", "content": "hi"}]}') is None


@pytest.fixture(scope="module")
def tiny_server(tiny_run, tiny_f16):
    with local_server(tiny_f16["gguf"], threads=1, n_ctx=256, model_name="tiny") as base_url:
        yield base_url


def test_server_answers_bad_requests_with_4xx_and_keeps_serving(tiny_server):
    good = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": QUESTIONS[0]}],
                       "max_tokens": 4, "temperature": 0}).encode()
    bad = [json.dumps({"model": "tiny", "messages": []}).encode(),
           json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "word " * 400}]}).encode(),
           b'{"model": "tiny", "messages": [{']
    for body in bad:
        status, reply = post_chat(tiny_server, body)
        assert 400 <= status < 500 and reply["error"]["message"]
        assert post_chat(tiny_server, good)[0] == 200


def streamed_events(base_url: str, body: bytes) -> list[str]:
    """The `data: ...` lines of a chat request sent with stream=True."""
    streamed = json.dumps(json.loads(body) | {"stream": True}).encode()
    request = urllib.request.Request(f"{base_url}/chat/completions", data=streamed,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return [line for line in response.read().decode().splitlines() if line.startswith("data: ")]


def test_streamed_answers_pass_the_request_checks(tiny_server):
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": QUESTIONS[0]}],
                       "max_tokens": 4, "temperature": 0}).encode()
    events = streamed_events(tiny_server, body)
    assert events[-1] == "data: [DONE]" and json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_eval_endpoint_scores_the_served_student(tiny_server, tmp_path, data_dir, capsys):
    out = tmp_path / "predictions.jsonl"
    assert main(["eval", "--endpoint", tiny_server, "--task", "svamp", "--split", "test", "--limit", "3",
                 "--data-dir", str(data_dir), "--max-new-tokens", "4", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 3 and result["model"] == "tiny" and result["latency_ms_p50"] > 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [set(r) >= {"id", "prediction", "gold", "correct", "latency_ms"} for r in rows] == [True] * 3


def test_eval_endpoint_unreachable_is_a_clear_error(tmp_path, data_dir, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert main(["eval", "--endpoint", url, "--model", "x", "--task", "svamp", "--limit", "1",
                 "--data-dir", str(data_dir), "--out", str(tmp_path / "p.jsonl")]) == 2
    assert url in capsys.readouterr().err


def test_report_served_row_serves_once_then_reads_the_cache(tmp_path, data_dir):
    from stepdistill.deploy.report_row import served_table
    run = tiny_llama_run(tmp_path / "sweep" / "runs" / "svamp-dss")
    record = json.loads((run / "run.json").read_text())
    record["settings"]["data_dir"] = str(data_dir)
    (run / "run.json").write_text(json.dumps(record))
    table = served_table(tmp_path / "sweep", {"quant": "q8_0", "limit": 2})
    assert "| svamp-dss | llama.cpp q8_0 | 2 |" in table
    cache = tmp_path / "sweep" / "served" / "svamp-dss-q8_0.json"
    cached = json.loads(cache.read_text())
    cached["accuracy"] = 12.5  # a second report reads the cache instead of serving again
    cache.write_text(json.dumps(cached))
    assert "| 12.50 |" in served_table(tmp_path / "sweep", {"quant": "q8_0", "limit": 2})


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def restarted_workers(port: int, dead_pid: int, timeout: float = 120.0) -> list[dict]:
    """The front's workers once the slot of the killed process holds a new, live one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = get_json(f"http://127.0.0.1:{port}/workers")["workers"]
        if workers[0]["pid"] != dead_pid and workers[0]["alive"]:
            return workers
        time.sleep(0.25)
    raise AssertionError(f"no worker replaced pid {dead_pid} within {timeout:.0f} s: {workers}")


def test_replicas_answer_concurrent_requests_in_parallel_and_survive_a_dead_worker(tiny_f16):
    """`serve --replicas 2`: both llama.cpp workers answer, streaming passes through, a killed one is skipped
    while a new one starts in its slot, which then answers too."""
    port = free_port()
    front = start_server(tiny_f16["gguf"], "127.0.0.1", port, "tiny", threads=2, n_ctx=256, quiet=True, replicas=2)
    base_url = f"http://127.0.0.1:{port}/v1"
    good = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": QUESTIONS[0]}],
                       "max_tokens": 8, "temperature": 0}).encode()
    try:
        wait_until_ready(base_url, front, timeout=120)
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda _: post_chat(base_url, good), range(6)))
        assert [status for status, _ in replies] == [200] * 6
        assert len({reply["choices"][0]["message"]["content"] for _, reply in replies}) == 1  # same weights
        workers = get_json(f"http://127.0.0.1:{port}/workers")["workers"]
        assert [w["answered"] > 0 for w in workers] == [True, True] and sum(w["answered"] for w in workers) == 6
        assert get_json(f"{base_url}/models")["data"][0]["id"] == "tiny"
        assert post_chat(base_url, b'{"model": "tiny", "messages": [{')[0] == 400

        events = streamed_events(base_url, good)
        assert len(events) > 2 and events[-1] == "data: [DONE]"

        os.kill(workers[0]["pid"], signal.SIGKILL)
        assert [post_chat(base_url, good)[0] for _ in range(3)] == [200] * 3  # the live worker answers meanwhile
        after = restarted_workers(port, workers[0]["pid"])  # a new llama.cpp process takes the dead one's slot
        assert [w["alive"] for w in after] == [True, True] and after[0]["restarts"] == 1
        assert after[1]["answered"] >= workers[1]["answered"] + 3
        with ThreadPoolExecutor(4) as pool:
            assert [status for status, _ in pool.map(lambda _: post_chat(base_url, good), range(4))] == [200] * 4
        assert get_json(f"http://127.0.0.1:{port}/workers")["workers"][0]["answered"] > 0
    finally:
        stop_server(front)
