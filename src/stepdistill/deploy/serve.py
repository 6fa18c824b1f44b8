"""`stepdistill serve RUN`: the exported student behind llama.cpp's OpenAI-compatible server.

The server is llama_cpp.server's app (llama-cpp-python's `[server]` extra) in a child process, behind a thin
layer that turns malformed requests into 400s (server_app.py). `python -m llama_cpp.server --model FILE.gguf`
serves the same file the same way (tests check both). It answers
`/v1/chat/completions` with the chat template from the GGUF, which turns a user message into the label prompt.
That server answers one request at a time; `--replicas N` puts N of them behind one front (router.py).
`--engine batched` serves the same routes from batched_app.py instead, which decodes up to `--slots`
concurrent requests together in one llama.cpp context (continuous batching, batched.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..cliargs import option
from ..errors import DataError
from .export import QUANTS, ExportSettings, default_output, export, model_folder


ENGINES = ("llama-cpp", "batched")


@dataclass
class ServeSettings:
    run: str = option("", "a run folder of `stepdistill train`", cli=False)
    host: str = option("127.0.0.1", "address to listen on (0.0.0.0: every interface)")
    port: int = option(8000, "TCP port")
    quant: str = option("q8_0", "weights served (exported on first use, cached in RUN/export/)", choices=QUANTS)
    threads: int = option(0, "CPU threads for llama.cpp, split between the replicas (0: all cores)")
    replicas: int = option(1, "llama.cpp worker processes answering requests in parallel behind one port "
                              "(llama-cpp-python's server answers one at a time); try one per 2 cores")
    n_ctx: int = option(2048, "context window in tokens (prompt + answer; per slot with --engine batched)")
    engine: str = option("llama-cpp", "llama-cpp: llama-cpp-python's server (one request at a time per "
                                      "replica); batched: concurrent requests decoded together in one context",
                         choices=ENGINES)
    slots: int = option(8, "--engine batched: requests decoded together (each with its own --n-ctx tokens)")
    model_name: str = option("", "model name clients send (default: the run folder's name)")

    def __post_init__(self):
        if not self.run:
            raise DataError("serve needs a run folder")
        if self.replicas < 1:
            raise DataError(f"--replicas must be at least 1, got {self.replicas}")
        if self.slots < 1:
            raise DataError(f"--slots must be at least 1, got {self.slots}")
        if self.engine == "batched" and self.replicas > 1:
            raise DataError("--engine batched runs one process that batches concurrent requests itself: "
                            "use --slots (and --threads), not --replicas")


def cached_export(run: str, quant: str) -> Path:
    """RUN/export/student-QUANT.gguf, exported again when missing or older than the trained weights."""
    model_dir, _ = model_folder(run)
    path = default_output(model_dir, quant)
    newest_weights = max((p.stat().st_mtime for p in model_dir.glob("*.safetensors")), default=0.0)
    if not path.is_file() or path.stat().st_mtime < newest_weights:
        print(f"exporting {model_dir} to {path} ({quant}) ...", flush=True)
        export(ExportSettings(run=run, quant=quant))
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for servers started by the demo, tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_server(gguf_path: Path | str, host: str, port: int, model_name: str, threads: int = 0,
                 n_ctx: int = 2048, quiet: bool = False, replicas: int = 1, engine: str = "llama-cpp",
                 slots: int = 8) -> subprocess.Popen:
    """Start llama_cpp.server's app (server_app.py: request checks in front) on the GGUF, whose chat template
    builds the label prompt; with replicas > 1, the front of router.py over that many such servers; with engine
    "batched", batched_app.py (`slots` requests decoded together). The server stops when this process is gone.
    Returns the process."""
    module = "batched_app" if engine == "batched" else "server_app" if replicas == 1 else "router"
    command = [sys.executable, "-m", f"stepdistill.deploy.{module}", "--model", str(gguf_path),
               "--model_alias", model_name, "--host", host, "--port", str(port), "--n_ctx", str(n_ctx),
               "--n_threads", str(threads or os.cpu_count() or 1), "--exit_with_parent"]
    if replicas > 1:
        command += ["--replicas", str(replicas)]
    if engine == "batched":
        command += ["--slots", str(slots)]
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(command, stdout=output, stderr=output)


def wait_until_ready(base_url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll GET /v1/models until the server answers; a server that exits or never answers is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DataError(f"the llama.cpp server exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    raise DataError(f"the llama.cpp server did not answer at {base_url} within {timeout:.0f} s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def local_server(gguf_path: Path | str, threads: int = 0, n_ctx: int = 2048, model_name: str = "student",
                 replicas: int = 1, engine: str = "llama-cpp", slots: int = 8):
    """A server on a free loopback port for the duration of a `with` block (the demo, the report's served row,
    tests, benchmarks); yields its base URL, ready to answer."""
    port = free_port()
    process = start_server(gguf_path, "127.0.0.1", port, model_name, threads, n_ctx, quiet=True, replicas=replicas,
                           engine=engine, slots=slots)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ready(base_url, process)
        yield base_url
    finally:
        stop_server(process)


def serve(settings: ServeSettings) -> int:
    gguf_path = cached_export(settings.run, settings.quant)
    name = settings.model_name or Path(settings.run).resolve().name
    base_url = f"http://{settings.host}:{settings.port}/v1"
    process = start_server(gguf_path, settings.host, settings.port, name, settings.threads, settings.n_ctx,
                           replicas=settings.replicas, engine=settings.engine, slots=settings.slots)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        wait_until_ready(base_url, process)
        print(usage_text(base_url, name, gguf_path, settings.replicas, settings.engine, settings.slots), flush=True)
        return process.wait()
    except KeyboardInterrupt:
        print("stopping the server ...", file=sys.stderr)
        return 0
    finally:
        if process.poll() is None:
            stop_server(process)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def usage_text(base_url: str, name: str, gguf_path: Path, replicas: int = 1, engine: str = "llama-cpp",
               slots: int = 8) -> str:
    body = '{"model": "%s", "messages": [{"role": "user", "content": "YOUR QUESTION"}], "temperature": 0}' % name
    workers = f", {replicas} llama.cpp workers; GET {base_url[:-3]}/workers shows each" if replicas > 1 else ""
    batching = (f", up to {slots} concurrent requests decoded together; GET {base_url[:-3]}/stats shows the slots "
                "in use and the requests cancelled by clients that went away") if engine == "batched" else ""
    return (f"serving {gguf_path} (engine {engine}{workers}{batching})\n  URL:   {base_url}\n  model: {name}\n"
            f"  curl:  curl -s {base_url}/chat/completions -H 'Content-Type: application/json' -d '{body}'\n"
            f"  the answer is the label; add {{\"role\": \"system\", \"content\": \"rationale\"}} for the rationale\n"
            "Ctrl-C stops the server.")
