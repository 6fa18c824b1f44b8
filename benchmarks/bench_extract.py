"""Throughput of `stepdistill extract` (figures in BENCHMARKS.md, section "Teacher extraction").

1. Loopback: a local OpenAI-compatible server (tests/support/loopback.py, its own process) answers every
   request after a fixed delay (200 ms). With --concurrency 32 the ideal rate is 32 / 0.2 s = 160 requests/s.
   Cold: N inputs with an empty cache. Warm: the same N again, every answer from the cache.
2. llama.cpp: the real `python -m llama_cpp.server` with the embedded SmolLM2-135M GGUF, on this machine's CPUs.
3. Scale (--scale N...): a generated task of N additions (a two-shot YAML prompt), each phase in a fresh
   process, so its peak resident memory is its own: export the Batch API requests; a stand-in batch engine
   answers them (not timed; what vllm run-batch or OpenAI would do); import the results; the warm re-run
   that writes rationales.jsonl from the cache; and (--live N) a cold run of N through the loopback server.

    .venv/bin/python benchmarks/bench_extract.py --repeats 5            # parts 1 and 2
    .venv/bin/python benchmarks/bench_extract.py --skip-llama --inputs 1000
    .venv/bin/python benchmarks/bench_extract.py --skip-llama --skip-loopback --scale 10000 100000 --live 10000 100000

Wall time is measured around run_extract() (inputs, prompts, cache, requests, rationales.jsonl, manifest),
with the progress bar on, as a user runs it; Python's start-up and imports are not included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from stepdistill.paths import data_dir as find_data_dir
from stepdistill.paths import smollm2_gguf
from stepdistill.teacher.extract import ExtractSettings, run_extract

LOOPBACK = Path(__file__).resolve().parents[1] / "tests" / "support" / "loopback.py"


def start(cmd: list[str], url_from_stdout: bool, port: int | None = None, timeout: float = 120):
    """A server process and its base URL, once it answers GET /models."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if url_from_stdout else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip() if url_from_stdout else f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/models", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"server did not start: {' '.join(cmd)}")
            time.sleep(0.3)


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def extract(url: str, out: Path, cache: Path, **kw) -> tuple[float, dict]:
    settings = ExtractSettings(teacher=f"openai:{kw.pop('model', 'loopback')}", base_url=url, out=str(out),
                        cache=str(cache), keep="all", **kw)
    started = time.perf_counter()
    manifest = run_extract(settings)
    return time.perf_counter() - started, manifest


def bench_loopback(args, data: Path) -> dict:
    proc, url = start([sys.executable, str(LOOPBACK), "--delay", str(args.delay)], True)
    ideal = args.concurrency / args.delay
    cold, warm = [], []
    try:
        for run in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                kw = dict(task="cqa", split="train", limit=args.inputs, data_dir=str(data), concurrency=args.concurrency,
                          max_tokens=128, timeout=30)
                secs, manifest = extract(url, tmp / "out", tmp / "cache.sqlite", **kw)
                assert manifest["answered"] == args.inputs and manifest["failed"] == 0, manifest
                cold.append(secs)
                secs, manifest = extract(url, tmp / "out", tmp / "cache.sqlite", **kw)
                assert manifest["requests_sent"] == 0 and manifest["cache_hits"] == args.inputs, manifest
                warm.append(secs)
            print(f"run {run + 1}: cold {cold[-1]:.2f} s ({args.inputs / cold[-1]:.1f} req/s, "
                  f"{100 * args.inputs / cold[-1] / ideal:.1f}% of ideal), warm {warm[-1]:.2f} s", file=sys.stderr)
    finally:
        stop(proc)
    cold_median = statistics.median(cold)
    return {"inputs": args.inputs, "concurrency": args.concurrency, "delay_s": args.delay, "ideal_rps": ideal,
            "cold_s": [round(x, 2) for x in cold], "cold_median_s": round(cold_median, 2),
            "cold_median_rps": round(args.inputs / cold_median, 1),
            "cold_median_pct_of_ideal": round(100 * args.inputs / cold_median / ideal, 1),
            "warm_s": [round(x, 2) for x in warm], "warm_median_s": round(statistics.median(warm), 2)}


def bench_llama(args, data: Path, threads: int) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads), "--model_alias", "smollm2"]
    proc, url = start(cmd, False, port)
    results = []
    try:
        for style in ("completion", "chat"):
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                secs, manifest = extract(url, tmp / "out", tmp / "cache.sqlite", model="smollm2", task="svamp", split="test",
                                  limit=args.llama_inputs, data_dir=str(data), concurrency=4,
                                  max_tokens=args.llama_max_tokens, timeout=600, prompt_style=style)
            results.append({"style": style, "inputs": args.llama_inputs, "seconds": round(secs, 1),
                            "rps": round(args.llama_inputs / secs, 2),
                            "prompt_tokens": manifest["tokens"]["prompt"], "completion_tokens": manifest["tokens"]["completion"],
                            "completion_tokens_per_s": round(manifest["tokens"]["completion"] / secs, 1),
                            "parsed": manifest["parsed"], "teacher_accuracy": manifest["teacher_accuracy"]})
            print(f"llama.cpp, {threads} thread(s), {style}: {results[-1]}", file=sys.stderr)
    finally:
        stop(proc)
    return {"threads": threads, "max_tokens": args.llama_max_tokens, "runs": results}


PROMPT = """input: "Q: {{ question }}\\nA:"
stop: ["\\n\\nQ:"]
exemplars:
  - {question: "What is 2 plus 3?", rationale: "2 and 3 make 5.", label: "5"}
  - {question: "What is 10 plus 7?", rationale: "10 and 7 make 17.", label: "17"}
"""


def generated_task(folder: Path, n: int) -> dict:
    """N additions with gold labels as a jsonl task, and its prompt file: the scale benchmark's inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.jsonl").open("w") as file:
        for index in range(n):
            left, right = index % 997, index // 997
            file.write(json.dumps({"id": f"g{index}", "input": f"What is {left} plus {right}?",
                                   "label": str(left + right)}) + "\n")
    (folder / "prompt.yaml").write_text(PROMPT)
    return dict(task=f"jsonl:{folder}", split="train", prompt=str(folder / "prompt.yaml"), prompt_style="completion",
                teacher="openai:loopback", keep="all", max_tokens=64, api_key_env="STEPDISTILL_NO_SUCH_KEY")


def stand_in_batch_engine(requests: Path, results: Path) -> None:
    """Answer every request line in OpenAI's batch output format (the job vllm run-batch does)."""
    sys.path.insert(0, str(LOOPBACK.parent))
    from loopback import default_answer

    with results.open("w") as out:
        for shard in sorted(requests.glob("requests-*.jsonl")):
            for line in shard.open():
                request = json.loads(line)
                text = default_answer(request["body"]["prompt"])
                body = {"object": "text_completion", "model": request["body"]["model"],
                        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 60, "completion_tokens": 12, "total_tokens": 72}}
                out.write(json.dumps({"id": "r", "custom_id": request["custom_id"], "error": None,
                                      "response": {"status_code": 200, "request_id": "r", "body": body}}) + "\n")


def run_phase(phase: str, settings: dict) -> dict:
    """One phase in this process (called as `--phase NAME --settings JSON`): seconds and peak memory."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    base_rss, cpu_before = before.ru_maxrss / 1024, before.ru_utime + before.ru_stime
    started = time.perf_counter()
    manifest = run_extract(ExtractSettings(**settings))
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before  # what the wall time would be with a core to itself
    peak = usage.ru_maxrss / 1024
    keep = ("requests", "imported", "already_cached", "cache_hits", "requests_sent", "answered", "rows", "shards")
    return {"phase": phase, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "peak_rss_mb": round(peak, 1),
            "rss_before_mb": round(base_rss, 1), **{name: manifest[name] for name in keep if name in manifest}}


def phase_in_child(phase: str, settings: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--settings", json.dumps(settings)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"phase {phase} failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{phase}: {result}", file=sys.stderr)
    return result


def bench_scale(args, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = {**generated_task(tmp / "task", n), "out": str(tmp / "out"), "cache": str(tmp / "cache.sqlite"),
                "progress": False, "base_url": "http://127.0.0.1:9/v1"}
        phases = [phase_in_child("export", {**base, "export_requests": str(tmp / "requests"), "tokenizer": "chars"})]
        stand_in_batch_engine(tmp / "requests", tmp / "results.jsonl")
        phases.append(phase_in_child("import", {**base, "import_results": [str(tmp / "results.jsonl")]}))
        phases.append(phase_in_child("warm re-run (writes rationales.jsonl)", base))
        phases.append(phase_in_child("import again (adds nothing)", {**base, "import_results": [str(tmp / "results.jsonl")]}))
        if n in (args.live or []):
            proc, url = start([sys.executable, str(LOOPBACK), "--delay", str(args.delay)], True)
            try:
                live = {**base, "base_url": url, "cache": str(tmp / "live.sqlite"), "out": str(tmp / "live"),
                        "concurrency": args.concurrency, "timeout": 60}
                result = phase_in_child("live cold run (loopback)", live)
                result["pct_of_ideal"] = round(100 * n / result["seconds"] / (args.concurrency / args.delay), 1)
                phases.append(result)
            finally:
                stop(proc)
        return {"inputs": n, "phases": phases}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.2, help="loopback server's answer delay, seconds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-llama", action="store_true")
    parser.add_argument("--llama-inputs", type=int, default=20)
    parser.add_argument("--llama-max-tokens", type=int, default=96)
    parser.add_argument("--llama-threads", type=int, nargs="+", default=[2], help="one server run per value")
    parser.add_argument("--skip-loopback", action="store_true")
    parser.add_argument("--data-dir")
    parser.add_argument("--scale", type=int, nargs="*", default=[], help="input counts for the scale benchmark")
    parser.add_argument("--live", type=int, nargs="*", default=[], help="of those, the counts also run live via loopback")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, json.loads(args.settings))))
        return
    data = find_data_dir(args.data_dir)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if not args.skip_loopback:
        report["loopback"] = bench_loopback(args, data)
    if not args.skip_llama:
        report["llama_cpp_server"] = [bench_llama(args, data, n) for n in args.llama_threads]
    if args.scale:
        report["scale"] = [bench_scale(args, n) for n in args.scale]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
