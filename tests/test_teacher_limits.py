"""Pacing, backoff, budget, the cache and reply parsing, each checked against hand computations."""

import asyncio
import random

import pytest

from stepdistill.teacher.backends import Completion, split_think, parse_retry_after
from stepdistill.teacher.cache import Cache, request_key
from stepdistill.teacher.limits import RateLimiter, RetryPolicy, TokenBudget, TokenEstimator


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_rate_limiter_spaces_requests_and_tokens():
    clock = FakeClock()
    limiter = RateLimiter(rpm=120, clock=clock)  # one every 0.5 s
    assert [limiter.reserve(10) for _ in range(3)] == [0.0, 0.5, 1.0]
    tokens = RateLimiter(tpm=6000, clock=clock)  # 100 tokens a second
    assert tokens.reserve(50) == 0.0
    assert tokens.reserve(50) == pytest.approx(0.5)
    assert tokens.reserve(1) == pytest.approx(1.0)


def test_retry_after_pauses_everyone():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert limiter.reserve(1) == 0.0
    limiter.pause(3.0)
    assert limiter.reserve(1) == pytest.approx(3.0)


def test_acquire_really_waits():
    async def go():
        limiter = RateLimiter(rpm=600)  # 0.1 s apart
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(4):
            await limiter.acquire(1)
        return loop.time() - start
    assert 0.28 <= asyncio.run(go()) < 0.6


def test_backoff_doubles_with_jitter_and_obeys_retry_after():
    policy = RetryPolicy(base=1.0, cap=8.0)
    rng = random.Random(0)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 8)]:
        for _ in range(50):
            assert ceiling / 2 <= policy.delay(attempt, rng=rng) <= ceiling
    assert 5.0 <= policy.delay(0, retry_after=5.0, rng=rng) <= 5.6
    assert policy.delay(0, retry_after=10_000, rng=rng) <= policy.max_retry_after + 1


def test_budget_refuses_what_could_overflow_and_stays_stopped():
    budget = TokenBudget(1000)
    assert budget.reserve(400) and budget.reserve(400)
    assert not budget.reserve(400)  # 800 reserved + 400 > 1000
    budget.settle(400, 100)
    assert not budget.reserve(10)  # once stopped, stopped: a clean end, no late stragglers
    assert TokenBudget(None).reserve(10**12)


def test_token_estimate_is_an_upper_bound_after_observation():
    est = TokenEstimator()
    assert est.prompt_tokens(3000) >= 1000
    est.observe(4000, 1000)
    assert 1000 <= est.prompt_tokens(4000) <= 1200


@pytest.mark.parametrize("text, answer, reasoning", [
    ("<think>add them</think>\nSo the answer is 4.", "So the answer is 4.", "add them"),
    ("add them</think> So the answer is 4.", "So the answer is 4.", "add them"),
    ("<think>never finished", "", "never finished"),
    ("So the answer is 4.", "So the answer is 4.", None),
])
def test_split_think(text, answer, reasoning):
    assert split_think(text) == (answer, reasoning)


def test_retry_after_header_forms():
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_cache_key_covers_every_input_of_the_answer():
    base = dict(backend="openai", model="m", prompt="p", params={"temperature": 0}, sample=0)
    key = request_key(**base)
    assert key == request_key(**base)
    for change in [{"backend": "local"}, {"model": "n"}, {"prompt": "q"}, {"params": {"temperature": 1}},
                   {"sample": 1}, {"prompt": [{"role": "user", "content": "p"}]}]:
        assert request_key(**{**base, **change}) != key


def test_cache_persists_and_totals(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put("k1", "fake", "m", Completion("a", "why", 10, 5))
    cache.put("k2", "fake", "m", Completion("b", None, 1, 1))
    cache.close()
    again = Cache(tmp_path / "c.sqlite")
    assert again.known(["k1", "k2", "k3"]) == {"k1", "k2"}
    assert again.get_many(["k1"])["k1"] == Completion("a", "why", 10, 5)
    assert again.totals() == {"answers": 2, "prompt": 11, "completion": 6, "total": 17}
    assert len(again.known([f"x{i}" for i in range(2000)] + ["k2"])) == 1  # more keys than SQLite binds at once
