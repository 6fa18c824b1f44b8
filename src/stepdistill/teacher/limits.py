"""Pacing, retries and the token budget: what keeps a long extraction within a provider's limits.

- RateLimiter spaces requests evenly to stay under requests-per-minute and (estimated) tokens-per-minute,
  and holds every request back while a server's Retry-After runs, not only the one that got the 429.
- RetryPolicy: exponential backoff with jitter, or the server's Retry-After when it sent one.
- TokenBudget: a request is sent only if, counting what is already spent and what requests in flight may
  still spend (their prompt estimate plus max_tokens), the budget cannot be exceeded.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass


class RateLimiter:
    def __init__(self, rpm: float | None = None, tpm: float | None = None, clock=time.monotonic):
        self.request_interval = 60.0 / rpm if rpm else 0.0  # seconds between request starts
        self.token_interval = 60.0 / tpm if tpm else 0.0  # seconds per token
        self.clock = clock
        self._next_request = 0.0
        self._next_token = 0.0
        self.paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """A server asked us to wait (Retry-After): nobody sends until then."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def reserve(self, tokens: int) -> float:
        """Book the next slot for a request of about `tokens` tokens; the delay until it may start."""
        now = self.clock()
        start = max(now, self.paused_until, self._next_request, self._next_token)
        self._next_request = start + self.request_interval
        self._next_token = start + tokens * self.token_interval
        return start - now

    async def acquire(self, tokens: int) -> None:
        while True:
            delay = self.reserve(tokens)
            if delay > 0:
                await asyncio.sleep(delay)
            if self.clock() >= self.paused_until - 1e-3:  # a 429 may have paused us while we slept
                return


@dataclass
class RetryPolicy:
    retries: int = 6  # attempts after the first
    base: float = 1.0  # first backoff, seconds; doubles each attempt
    cap: float = 60.0  # longest backoff without a Retry-After
    max_retry_after: float = 600.0  # longest Retry-After we agree to wait

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random = random) -> float:
        """Seconds before attempt `attempt + 1` (attempt counts from 0)."""
        if retry_after is not None:
            wait = min(retry_after, self.max_retry_after)
            return wait + rng.uniform(0, min(1.0, 0.1 * wait + 0.05))  # a little spread, never earlier
        backoff = min(self.cap, self.base * 2 ** attempt)
        return rng.uniform(backoff / 2, backoff)  # "equal jitter": never zero, never in lockstep


class TokenBudget:
    """At most `limit` prompt + completion tokens for this run (None: unlimited)."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.spent = 0
        self.reserved = 0
        self.exhausted = False  # set once a request had to be held back; nothing more is sent

    def reserve(self, estimate: int) -> bool:
        if self.limit is None:
            return True
        if self.exhausted or self.spent + self.reserved + estimate > self.limit:
            self.exhausted = True
            return False
        self.reserved += estimate
        return True

    def settle(self, estimate: int, actual: int) -> None:
        self.spent += actual
        if self.limit is not None:
            self.reserved -= estimate


class TokenEstimator:
    """Upper estimate of a prompt's tokens before it is sent: 1 token per 3 characters until the server
    has reported real counts, then the highest tokens-per-character seen, plus 10%."""

    def __init__(self):
        self.seen: float | None = None  # highest tokens per character reported so far

    def prompt_tokens(self, chars: int) -> int:
        per_char = 1 / 3 if self.seen is None else self.seen
        return math.ceil(chars * per_char * 1.1) + 8

    def observe(self, chars: int, tokens: int) -> None:
        if chars > 200 and tokens > 0:  # short prompts are dominated by template overhead
            self.seen = max(self.seen or 0.0, tokens / chars)
