"""The replica front of `stepdistill serve --replicas N` (deploy/router.py) over scripted OpenAI-compatible
workers (tests/support/loopback.py): who gets each request, and what a client sees when a worker fails.
The same front over real llama.cpp workers is tested in test_deploy.py."""

import asyncio
import json
import subprocess
import sys

import httpx

from stepdistill.deploy.router import Router, Worker, WorkerSupervisor
from stepdistill.deploy.serve import free_port
from stepdistill.deploy.server_app import RequestChecks
from support.loopback import LoopbackServer


def chat(content: str) -> dict:
    return {"model": "student", "messages": [{"role": "user", "content": content}], "temperature": 0}


class Front:
    """An HTTP client of the front (as ASGI, in the test's event loop), as a client of `serve` would be."""

    def __init__(self, router: Router):
        self.router = router
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=RequestChecks(router)),
                                        base_url="http://front")

    async def ask_all(self, bodies: list) -> list[httpx.Response]:
        """Send the chat requests at once."""
        return await asyncio.gather(*[
            self.client.post("/v1/chat/completions", content=body if isinstance(body, bytes) else json.dumps(body))
            for body in bodies])

    async def workers(self) -> list[dict]:
        return (await self.client.get("/workers")).json()["workers"]


def worker_on(server: LoopbackServer) -> Worker:
    return Worker(server.port)


def test_concurrent_requests_are_spread_over_the_workers():
    async def scenario(front: Front, first: LoopbackServer, second: LoopbackServer):
        replies = await front.ask_all([chat(f"question {i}") for i in range(6)])
        assert [reply.status_code for reply in replies] == [200] * 6
        assert len(first.log) == len(second.log) == 3  # fewest in flight first: 3 each, not 6 on one
        assert {reply.json()["choices"][0]["message"]["content"] for reply in replies} == {
            f"The question was 10 characters long. So the answer is question {i}." for i in range(6)}
        assert [(w["answered"], w["in_flight"], w["alive"]) for w in await front.workers()] == \
            [(3, 0, True), (3, 0, True)]
        assert (await front.client.get("/v1/models")).json()["data"][0]["id"] == "student"

    with LoopbackServer(delay=0.3) as first, LoopbackServer(delay=0.3) as second:
        asyncio.run(scenario(Front(Router([worker_on(first), worker_on(second)], "student")), first, second))


def test_bad_requests_get_400_from_the_front_without_reaching_a_worker():
    async def scenario(front: Front):
        replies = await front.ask_all([b'{"messages": [{', {"messages": []}, chat("fine")])
        assert [reply.status_code for reply in replies] == [400, 400, 200]
        assert "malformed JSON" in replies[0].json()["error"]["message"]

    with LoopbackServer() as worker:
        asyncio.run(scenario(Front(Router([worker_on(worker)], "student"))))
        assert len(worker.log) == 1


def test_an_unreachable_worker_is_skipped_and_the_other_answers():
    async def scenario(front: Front, alive: LoopbackServer):
        replies = await front.ask_all([chat(f"q{i}") for i in range(4)])
        assert [reply.status_code for reply in replies] == [200] * 4 and len(alive.log) == 4
        assert [w["alive"] for w in await front.workers()] == [False, True]

    with LoopbackServer() as alive:  # nobody listens on the first worker's port
        asyncio.run(scenario(Front(Router([Worker(free_port()), worker_on(alive)], "student")), alive))


def test_a_worker_failing_mid_answer_is_a_502_and_none_left_is_a_503():
    async def scenario(front: Front, flaky: LoopbackServer):
        dropped = (await front.ask_all([chat("cut")]))[0]
        assert dropped.status_code == 502 and str(flaky.port) in dropped.json()["error"]["message"]
        assert (await front.ask_all([chat("next")]))[0].status_code == 200  # the worker stays in
        flaky.stop()
        gone = (await front.ask_all([chat("after stop")]))[0]
        assert gone.status_code == 503 and "no llama.cpp worker is running" in gone.json()["error"]["message"]

    with LoopbackServer(script=["drop"]) as flaky:
        asyncio.run(scenario(Front(Router([worker_on(flaky)], "student")), flaky))


def test_a_request_cut_by_a_worker_that_died_goes_to_another():
    async def scenario(front: Front, dying: LoopbackServer, alive: LoopbackServer, process: subprocess.Popen):
        request = asyncio.ensure_future(front.ask_all([chat("question")]))
        while not dying.log:  # the request reached the first worker, which now "dies" before answering
            await asyncio.sleep(0.05)
        process.kill()
        process.wait()
        reply = (await request)[0]
        assert reply.status_code == 200 and len(alive.log) == 1
        assert [w["alive"] for w in await front.workers()] == [False, True]

    # stands for the first worker's llama.cpp process; its loopback server cuts the connection after 1 s
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    with LoopbackServer(script=["stall"], stall=1.0) as dying, LoopbackServer() as alive:
        router = Router([Worker(dying.port, process), worker_on(alive)], "student")
        asyncio.run(scenario(Front(router), dying, alive, process))


def stand_in_process() -> subprocess.Popen:
    """Stands for a worker's llama.cpp process: alive until killed."""
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)


def test_a_worker_whose_process_ended_is_replaced_and_answers():
    async def ask(front: Front) -> list[int]:
        return [reply.status_code for reply in await front.ask_all([chat(f"q{i}") for i in range(4)])]

    first, spare = stand_in_process(), stand_in_process()
    with LoopbackServer() as old, LoopbackServer() as new:
        workers = [Worker(old.port, first)]
        supervisor = WorkerSupervisor(workers, start_one=lambda: Worker(new.port, spare))
        assert supervisor.replace_exited() == []  # alive: left alone
        first.kill()
        first.wait()
        assert supervisor.replace_exited() == [0]
        assert workers[0].port == new.port and workers[0].restarts == 1
        assert asyncio.run(ask(Front(Router(workers, "student")))) == [200] * 4 and len(new.log) == 4
    spare.kill()
    spare.wait()


def test_restarts_stop_at_the_limit_and_a_failed_start_counts():
    attempts = []

    def start_one() -> Worker:
        attempts.append(1)
        process = stand_in_process()
        process.kill()
        process.wait()
        if len(attempts) == 1:
            raise RuntimeError("the new server exited before answering")
        return Worker(free_port(), process)  # starts, then ends at once: a crash loop

    dead = stand_in_process()
    dead.kill()
    dead.wait()
    workers = [Worker(free_port(), dead)]
    supervisor = WorkerSupervisor(workers, start_one, max_restarts=3)
    for _ in range(6):
        supervisor.replace_exited()
    assert len(attempts) == 3 and workers[0].restarts == 3
    assert workers[0].status()["restarts"] == 3 and not workers[0].alive
