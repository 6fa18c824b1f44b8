"""`stepdistill serve --replicas N`: N llama.cpp workers behind one OpenAI-compatible front.

llama-cpp-python's server answers one request at a time (one lock around the model; neither its server nor
its `Llama` API decodes several sequences in one batch), so concurrent clients only queue. This front starts
N copies of server_app.py on loopback ports, the CPU threads split between them, and sends each request to
the live worker with the fewest requests in flight, passing the answer through as it comes (streamed chunks
too). It answers `GET /v1/models` itself (a worker's waits for the model lock) and `GET /workers` (each
worker's port, pid, requests in flight and answered). A worker that cannot be reached or whose process ended
gets no more requests, and the request goes to another (a chat request has no side effects, so sending it
again is safe); a live worker that fails mid-answer gives that request a 502; with no worker left, a 503.
A worker whose process ended (a crash, the OOM killer) is replaced by a new one on a new port
(WorkerSupervisor), at most --max_restarts times per slot, so one bad input cannot take the service down.

    python -m stepdistill.deploy.router --model FILE.gguf --model_alias NAME --replicas 2 [--port P] ...
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Callable

import httpx

from .server_app import RequestChecks, models_listing, read_body, send_json, send_problem

# Headers that describe one connection, not the answer: the front's own connection (and server) sets them.
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"host",
              b"content-length", b"proxy-connection", b"date", b"server"}


@dataclass
class Worker:
    """One llama.cpp server process on a loopback port (process None: one this front did not start)."""
    port: int
    process: subprocess.Popen | None = None
    in_flight: int = 0
    answered: int = 0
    unreachable: bool = False  # a connection was refused: the worker gets no more requests
    restarts: int = 0  # workers started in this slot after the first one's process ended

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return not self.unreachable and (self.process is None or self.process.poll() is None)

    def status(self) -> dict:
        return {"port": self.port, "pid": self.process.pid if self.process else None, "alive": self.alive,
                "in_flight": self.in_flight, "answered": self.answered, "restarts": self.restarts}

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None


class Router:
    """ASGI app: each request to the live worker with the fewest requests in flight (then the fewest answered)."""

    def __init__(self, workers: list[Worker], model_name: str):
        self.workers = workers
        self.model_name = model_name
        self.client: httpx.AsyncClient | None = None  # made in the server's event loop, on the first request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/v1/models":
            return await send_json(send, 200, models_listing(self.model_name))
        if scope["method"] == "GET" and scope["path"] == "/workers":
            return await send_json(send, 200, {"workers": [worker.status() for worker in self.workers]})
        body = await read_body(receive)
        await self.forward(scope, body, send)

    def pick(self, tried: list[Worker]) -> Worker | None:
        live = [worker for worker in self.workers if worker.alive and worker not in tried]
        return min(live, key=lambda worker: (worker.in_flight, worker.answered), default=None)

    async def forward(self, scope, body: bytes, send) -> None:
        """Try live workers until one takes the request; relay its answer, or say why none could."""
        tried: list[Worker] = []
        while (worker := self.pick(tried)) is not None:
            tried.append(worker)
            worker.in_flight += 1
            try:
                response = await self.open(worker, scope, body)
            except httpx.HTTPError as error:
                worker.in_flight -= 1
                if isinstance(error, httpx.ConnectError) or await exited(worker):
                    worker.unreachable = True  # gone: the next worker answers (a chat request changes nothing)
                    continue
                return await send_problem(send, 502, f"the llama.cpp worker on port {worker.port} failed while "
                                          f"answering ({type(error).__name__}: {error}); retry the request",
                                          "worker_error")
            try:
                await relay(response, send)
                worker.answered += 1
            finally:
                worker.in_flight -= 1
            return
        await send_problem(send, 503, f"no llama.cpp worker is running (all {len(self.workers)} stopped); "
                           "restart `stepdistill serve`", "no_worker")

    async def open(self, worker: Worker, scope, body: bytes) -> httpx.Response:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5.0),
                                            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in HOP_BY_HOP]
        query = scope.get("query_string", b"").decode("latin-1")
        url = worker.url + scope["path"] + (f"?{query}" if query else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        return await self.client.send(request, stream=True)


async def exited(worker: Worker, wait: float = 1.0) -> bool:
    """Whether the worker's process ended (its sockets close a moment before it can be reaped)."""
    if worker.process is None:
        return False
    for _ in range(int(wait / 0.05)):
        if worker.process.poll() is not None:
            return True
        await asyncio.sleep(0.05)
    return False


async def relay(response: httpx.Response, send) -> None:
    """Pass a worker's answer on as its bytes arrive (a streamed chat answer chunk by chunk)."""
    headers = [(name, value) for name, value in response.headers.raw if name.lower() not in HOP_BY_HOP]
    try:
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        await response.aclose()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class WorkerSupervisor:
    """Replaces each worker whose process ended with a new one, started by `start_one` (a new process on a new
    port, ready before it is put in the slot), at most `max_restarts` times per slot. It runs in its own thread:
    starting a llama.cpp server takes seconds, and requests keep going to the live workers meanwhile. A worker
    that is alive but unreachable is left alone (its process may still be loading or busy)."""

    def __init__(self, workers: list[Worker], start_one: Callable[[], Worker], max_restarts: int = 3,
                 interval: float = 1.0):
        self.workers, self.start_one = workers, start_one
        self.max_restarts, self.interval = max_restarts, interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="worker-supervisor", daemon=True)

    def replace_exited(self) -> list[int]:
        """Start a new worker for each slot whose process ended and has restarts left; the slots replaced."""
        replaced = []
        for slot, worker in enumerate(self.workers):
            if not worker.exited or worker.restarts >= self.max_restarts or self.stopping.is_set():
                continue
            worker.restarts += 1  # counted before the start, so a worker that cannot start is not retried forever
            try:
                new = self.start_one()
            except Exception as error:  # noqa: BLE001 - a failed start leaves the slot dead, the front serving
                print(f"worker on port {worker.port} ended; a new one did not start: {error}", file=sys.stderr)
                continue
            new.restarts = worker.restarts
            self.workers[slot] = new  # one list store: the front's next pick sees the new worker
            replaced.append(slot)
            print(f"worker on port {worker.port} ended (exit {worker.process.returncode}); "
                  f"restarted on port {new.port}", file=sys.stderr)
        return replaced

    def watch(self) -> None:
        while not self.stopping.wait(self.interval):
            self.replace_exited()

    def start(self) -> "WorkerSupervisor":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5.0)


def start_worker(model: str, model_name: str, threads: int, n_ctx: int) -> Worker:
    """One llama.cpp server (server_app.py) on a free loopback port; not yet ready."""
    from .serve import free_port, start_server

    port = free_port()
    return Worker(port, start_server(model, "127.0.0.1", port, model_name, threads, n_ctx))


def wait_ready(worker: Worker) -> Worker:
    from .serve import wait_until_ready

    wait_until_ready(f"{worker.url}/v1", worker.process)
    return worker


def start_workers(model: str, model_name: str, replicas: int, threads: int, n_ctx: int) -> list[Worker]:
    """`replicas` llama.cpp servers on free loopback ports, `threads` each; all ready or none."""
    workers = []
    try:
        for _ in range(replicas):
            workers.append(start_worker(model, model_name, threads, n_ctx))
        for worker in workers:
            wait_ready(worker)
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def replacement_starter(model: str, model_name: str, threads: int, n_ctx: int) -> Callable[[], Worker]:
    """What the supervisor calls to start a worker in place of one that ended (stopped again if never ready)."""
    def start_one() -> Worker:
        worker = start_worker(model, model_name, threads, n_ctx)
        try:
            return wait_ready(worker)
        except BaseException:
            stop_workers([worker])
            raise
    return start_one


def stop_workers(workers: list[Worker]) -> None:
    from .serve import stop_server

    for worker in workers:
        if worker.process is not None and worker.process.poll() is None:
            stop_server(worker.process)


def main(argv: list[str] | None = None) -> None:
    import os

    import uvicorn

    from ..processes import exit_with_parent
    from .server_app import server_arguments

    parser = server_arguments(__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--max_restarts", type=int, default=3, help="new workers per slot after one ends")
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent()
    threads = max(1, (args.n_threads or os.cpu_count() or 1) // args.replicas)  # the cores split between workers
    workers = start_workers(args.model, args.model_alias, args.replicas, threads, args.n_ctx)
    supervisor = WorkerSupervisor(workers, replacement_starter(args.model, args.model_alias, threads, args.n_ctx),
                                  args.max_restarts).start()
    try:
        app = RequestChecks(Router(workers, args.model_alias))
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="off")
    finally:
        supervisor.stop()
        stop_workers(workers)


if __name__ == "__main__":
    main()
