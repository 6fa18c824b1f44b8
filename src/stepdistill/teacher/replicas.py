"""One teacher served by several replicas (`--base-url` given more than once).

Each request goes to the healthy replica with the fewest requests in flight (least outstanding
requests), so a slow replica gets fewer. A replica that fails (5xx, 429, timeout, broken connection) or
stalls is backed off on its own, exponentially (or for its Retry-After), and the request moves on to
another replica at once; the others are not held back. Only when every replica is backed off does the
failure go to the runner, whose retry policy then waits. It goes as a ConnectionFailed (which the
runner's circuit breaker counts) only when every replica's last attempt could not connect: one live
replica keeps the run going.
"""

from __future__ import annotations

import asyncio
import time

from .backends import Backend, Completion, ConnectionFailed, OpenAIBackend, Sampling, TransientError
from .prompts import Prompt


class Replica:
    def __init__(self, backend: OpenAIBackend):
        self.backend = backend
        self.outstanding = 0
        self.failures = 0  # in a row; reset by an answer
        self.down_until = 0.0
        self.answered = 0
        self.unreachable = False  # its last attempt could not connect

    def healthy(self, now: float) -> bool:
        return now >= self.down_until

    def failed(self, now: float, retry_after: float | None, base: float, cap: float) -> None:
        self.failures += 1
        pause = retry_after if retry_after is not None else min(cap, base * 2 ** (self.failures - 1))
        self.down_until = max(self.down_until, now + pause)


class ReplicaBackend(Backend):
    name = "openai"

    def __init__(self, replicas: list[OpenAIBackend], backoff: float = 1.0, cap: float = 60.0,
                 clock=time.monotonic):
        self.replicas = [Replica(backend) for backend in replicas]
        self.model = replicas[0].model
        self.backoff, self.cap, self.clock = backoff, cap, clock

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model,
                "replicas": [{**replica.backend.describe(), "answered": replica.answered}
                             for replica in self.replicas]}

    def redact(self, text: str) -> str:
        for replica in self.replicas:  # each URL may carry its own credential
            text = replica.backend.redact(text)
        return text

    def request(self, prompt: Prompt, params: Sampling) -> tuple[str, dict]:
        return self.replicas[0].backend.request(prompt, params)

    def sync_client(self):
        return self.replicas[0].backend.sync_client()

    def pick(self, tried: set[int]) -> Replica | None:
        """The healthy replica not yet tried for this request with the fewest requests in flight."""
        now = self.clock()
        candidates = [replica for index, replica in enumerate(self.replicas)
                      if index not in tried and replica.healthy(now)]
        return min(candidates, key=lambda replica: replica.outstanding, default=None)

    async def complete(self, prompt: Prompt, params: Sampling, example_id: str = "") -> Completion:
        tried: set[int] = set()
        last: TransientError | None = None
        while (replica := self.pick(tried)) is not None:
            tried.add(self.replicas.index(replica))
            try:
                answer = await self._on(replica, prompt, params)
            except TransientError as error:
                last = error
                continue
            return answer
        kind = ConnectionFailed if all(replica.unreachable for replica in self.replicas) else TransientError
        if last is None:
            wait = max(0.0, min(replica.down_until for replica in self.replicas) - self.clock())
            raise kind("every replica is backed off", retry_after=wait)
        raise kind(f"every replica failed; last: {last}")  # the runner's backoff takes over

    async def _on(self, replica: Replica, prompt: Prompt, params: Sampling) -> Completion:
        replica.outstanding += 1
        try:
            answer = await replica.backend.complete(prompt, params)
        except TransientError as error:
            replica.unreachable = isinstance(error, ConnectionFailed)
            replica.failed(self.clock(), error.retry_after, self.backoff, self.cap)
            raise
        except asyncio.CancelledError:  # the runner's timeout: this replica stalled
            replica.failed(self.clock(), None, self.backoff, self.cap)
            raise
        finally:
            replica.outstanding -= 1
        replica.failures, replica.answered, replica.unreachable = 0, replica.answered + 1, False
        return answer

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.backend.aclose()
