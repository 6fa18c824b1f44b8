"""Send the requests the cache cannot answer: bounded concurrency, pacing, retries, budget, progress.

`concurrency` workers share one iterator of jobs, so no more than that many requests are ever in flight
and half a million inputs never become half a million tasks. Each answer is written to the store as soon
as it arrives. A request that still fails after its retries is recorded with its reason and the run goes
on; one the server can never accept (bad key, unknown model) stops the run (FatalError), and so does a
dead endpoint: `max_connection_failures` attempts in a row that could not connect, with no answer in
between (a circuit breaker; with replicas only a failure of every replica counts, see replicas.py).
A completion longer than `max_completion_chars` is cut to that length before it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from .backends import (Backend, Completion, ConnectionFailed, FatalError, RequestFailed, Sampling, TransientError,
                       cap_completion)
from .cost import Prices
from .limits import RateLimiter, RetryPolicy, TokenBudget, TokenEstimator
from .output import NOT_SENT
from .prompts import Prompt

log = logging.getLogger("stepdistill.teacher")


@dataclass
class Job:
    key: str
    prompt: Callable[[], Prompt]  # rendered when sent, not held in memory for every pending input
    params: Sampling
    example_id: str


@dataclass
class RunStats:
    requests_sent: int = 0  # HTTP (or in-process) attempts, retries included
    answered: int = 0  # new answers stored
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # key -> why it failed after all retries
    not_sent: int = 0  # requests held back by the token or cost budget
    cut: int = 0  # completions longer than max_completion_chars, stored cut

    def why_unanswered(self, key: str) -> str:
        """Why a request of this run has no answer. Once a budget held one back, every later one was held
        back too, so a count says it: a request neither answered nor failed was not sent."""
        return self.errors.get(key) or (NOT_SENT if self.not_sent else "no answer")



def prompt_chars(prompt: Prompt) -> int:
    return len(prompt) if isinstance(prompt, str) else sum(len(message["content"]) + 8 for message in prompt)


class Runner:
    @classmethod
    def from_settings(cls, settings, backend: Backend, store, *, bar, token_budget: float | None,
                      cost_budget: float | None = None, prices: Prices | None = None) -> "Runner":
        """The runner an extraction's settings describe (concurrency, limits, retries, circuit breaker,
        completion cap): one place for the main pass and the hinted pass, so both obey the same limits."""
        return cls(backend, store, concurrency=1 if backend.in_process else settings.concurrency,
                   limiter=RateLimiter(settings.rpm, settings.tpm),
                   policy=RetryPolicy(retries=settings.retries, base=settings.backoff),
                   timeout=settings.timeout, budget=TokenBudget(token_budget), cost_budget=TokenBudget(cost_budget),
                   prices=prices, bar=bar, max_connection_failures=settings.max_connection_failures,
                   max_completion_chars=settings.max_completion_chars)

    def __init__(self, backend: Backend, store, *, concurrency: int = 8, limiter: RateLimiter | None = None,
                 policy: RetryPolicy | None = None, timeout: float | None = None,
                 budget: TokenBudget | None = None, cost_budget: TokenBudget | None = None,
                 prices: Prices | None = None, bar=None, max_connection_failures: int = 20,
                 max_completion_chars: int | None = None):
        self.backend, self.store = backend, store
        self.concurrency = max(1, concurrency)
        self.limiter = limiter or RateLimiter()
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.budget = budget or TokenBudget(None)
        self.cost_budget = cost_budget or TokenBudget(None)  # the same accounting, in USD (--max-cost)
        self.prices = prices or Prices()
        self.estimator = TokenEstimator()
        self.bar = bar
        self.cache_hits = 0  # shown on the progress bar
        self.stats = RunStats()
        self._fatal: list[FatalError] = []
        self.max_connection_failures = max_connection_failures
        self.max_completion_chars = max_completion_chars
        self.connection_failures = 0  # attempts in a row that could not connect; reset by any answer

    async def run(self, jobs: Iterable[Job]) -> RunStats:
        queue = iter(jobs)  # one shared iterator: each job goes to exactly one worker
        await asyncio.gather(*(self._worker(queue) for _ in range(self.concurrency)))
        if self._fatal:
            raise self._fatal[0]
        return self.stats

    async def _worker(self, queue: Iterator[Job]) -> None:
        for job in queue:
            if self._fatal:
                return
            try:
                await self._one(job)
            except FatalError as error:
                self._fatal.append(error)
                return

    async def _one(self, job: Job) -> None:
        prompt = job.prompt()
        chars = prompt_chars(prompt)
        prompt_estimate = self.estimator.prompt_tokens(chars)
        estimate = prompt_estimate + job.params.max_tokens
        cost_estimate = self.prices.cost(prompt_estimate, job.params.max_tokens) or 0.0
        if not self._reserve(estimate, cost_estimate):
            self.stats.not_sent += 1
            return
        spent, spent_cost = 0, 0.0
        try:
            result = await self._attempts(job, prompt, estimate)
            if isinstance(result, Completion):
                self.connection_failures = 0
                result, cut = cap_completion(result, self.max_completion_chars)
                self.stats.cut += cut
                self.store.put(job.key, self.backend.name, self.backend.model, result)
                self.stats.answered += 1
                self.stats.prompt_tokens += result.prompt_tokens
                self.stats.completion_tokens += result.completion_tokens
                spent = result.prompt_tokens + result.completion_tokens
                spent_cost = self.prices.cost(result.prompt_tokens, result.completion_tokens) or 0.0
                self.estimator.observe(chars, result.prompt_tokens)
            else:
                self.stats.errors[job.key] = result
                log.warning("request for %s failed: %s", job.example_id, result)
        finally:
            self.budget.settle(estimate, spent)
            self.cost_budget.settle(cost_estimate, spent_cost)
        self._progress()

    def _reserve(self, tokens: int, cost: float) -> bool:
        """Room in both budgets (tokens, USD), or neither is touched."""
        if not self.budget.reserve(tokens):
            return False
        if not self.cost_budget.reserve(cost):
            self.budget.settle(tokens, 0)
            self.budget.exhausted = True
            return False
        return True

    async def _attempts(self, job: Job, prompt: Prompt, estimate: int) -> Completion | str:
        """The answer, or why there is none after every retry."""
        for attempt in range(self.policy.retries + 1):
            await self.limiter.acquire(estimate)
            self.stats.requests_sent += 1
            try:
                call = self.backend.complete(prompt, job.params, job.example_id)
                if self.timeout and not self.backend.in_process:
                    return await asyncio.wait_for(call, self.timeout)
                return await call
            except (TransientError, asyncio.TimeoutError) as error:
                retry_after = getattr(error, "retry_after", None)
                reason = str(error) if isinstance(error, TransientError) else f"timed out after {self.timeout:g} s"
                self._count_connection(error)
                if retry_after:
                    self.limiter.pause(retry_after)
                if attempt == self.policy.retries:
                    return f"gave up after {attempt + 1} attempts; last: {reason}"
                self.stats.retries += 1
                wait = self.policy.delay(attempt, retry_after)
                log.info("retrying %s in %.2f s (attempt %d): %s", job.example_id, wait, attempt + 2, reason)
                await asyncio.sleep(wait)
            except RequestFailed as error:
                return str(error)
            except FatalError:
                raise
            except Exception as error:  # noqa: BLE001: one odd reply must not end a 500k-input run
                return f"unexpected error: {type(error).__name__}: {self.backend.redact(str(error))[:300]}"
        raise AssertionError("unreachable")

    def _count_connection(self, error: Exception) -> None:
        """The circuit breaker: a dead endpoint stops the run instead of retrying every input for hours."""
        if not isinstance(error, ConnectionFailed):
            return
        self.connection_failures += 1
        if self.connection_failures >= self.max_connection_failures:
            raise FatalError(f"the teacher endpoint is unreachable: {self.connection_failures} connection "
                             f"failures in a row, no answer in between (last: {error}); check --base-url and "
                             "that the server runs, then run the same command again (answers so far are cached)")

    def _progress(self) -> None:
        if self.bar is None:
            return
        stats = self.stats
        self.bar.update(1)
        self.bar.set_postfix_str(f"hits={self.cache_hits} new={stats.answered} failed={len(stats.errors)} "
                                 f"retries={stats.retries} tokens={stats.prompt_tokens + stats.completion_tokens:,}",
                                 refresh=False)
