"""Several --base-url replicas: least outstanding requests first, a failing or stalling replica backed off
on its own while the other answers; and the cost cap."""

import json
import time

import openai  # noqa: F401  imported up front: under load, importing it inside the first request is slow
import pytest

from support.loopback import LoopbackServer
from stepdistill.errors import DataError
from stepdistill.teacher.backends import FakeBackend
from stepdistill.teacher.cost import Prices, load_prices
from stepdistill.teacher.extract import ExtractSettings, run_extract


def settings(tmp_path, data_dir, urls, **kw):
    base = dict(task="svamp", split="train", limit=40, teacher="openai:loopback", base_url=urls,
                api_key_env="STEPDISTILL_NO_SUCH_KEY", out=str(tmp_path / "out"), data_dir=str(data_dir),
                progress=False, backoff=0.05, timeout=1.0, concurrency=4, prompt_style="completion")
    return ExtractSettings(**{**base, **kw})


def answered_prompts(*servers):
    counts = {}
    for server in servers:
        for prompt, times in server.answered().items():
            counts[prompt] = counts.get(prompt, 0) + times
    return counts


def test_requests_go_to_the_replica_with_fewer_outstanding(tmp_path, data_dir):
    with LoopbackServer(delay=1.0) as slow, LoopbackServer(delay=0.0) as fast:
        manifest = run_extract(settings(tmp_path, data_dir, [slow.url, fast.url], timeout=30.0))  # no retries
    assert manifest["answered"] == 40 and manifest["failed"] == 0
    assert len(fast.log) > 2 * len(slow.log) > 0  # the slow one holds its requests longer, so gets fewer
    counts = answered_prompts(slow, fast)
    assert len(counts) == 40 and set(counts.values()) == {1}
    replicas = manifest["backend"]["replicas"]
    assert [replica["answered"] for replica in replicas] == [len(slow.log), len(fast.log)]


@pytest.mark.parametrize("fault", ["503", "stall"])
def test_a_failing_or_stalling_replica_is_backed_off_and_the_other_answers(tmp_path, data_dir, fault):
    with LoopbackServer(script=[fault] * 100, stall=5) as broken, LoopbackServer(delay=0.01) as healthy:
        started = time.perf_counter()
        manifest = run_extract(settings(tmp_path, data_dir, [broken.url, healthy.url]))
        seconds = time.perf_counter() - started
    assert manifest["answered"] == 40 and manifest["failed"] == 0
    assert len(broken.answered()) == 0 and len(healthy.answered()) == 40
    # backed off exponentially: a handful of tries, not one per request
    assert len(broken.log) <= 8, [entry["outcome"] for entry in broken.log]
    assert seconds < 20
    rows = [json.loads(line) for line in (tmp_path / "out" / "rationales.jsonl").read_text().splitlines()]
    assert all(row["completion"] for row in rows)


def test_max_cost_stops_before_it_would_be_passed(tmp_path, data_dir):
    prices = dict(price_in=1000.0, price_out=2000.0)  # USD per million: a request costs about a dollar
    fake = FakeBackend(answer=" It is 3. The answer is (1 + 2).")
    manifest = run_extract(settings(tmp_path, data_dir, [], teacher="openai:x", max_cost=3.0, concurrency=1,
                                    max_tokens=32, **prices), backend=fake)
    assert manifest["stopped_by_cost"] and 0 < manifest["answered"] < 40
    tokens = manifest["tokens"]
    assert manifest["cost"]["run_usd"] == pytest.approx((tokens["prompt"] * 1000 + tokens["completion"] * 2000) / 1e6,
                                                        abs=1e-6)
    assert manifest["cost"]["run_usd"] <= 3.0
    assert manifest["not_sent"] == 40 - manifest["answered"]


def test_prices_from_flags_or_a_file(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("input: 0.15\noutput: 0.60\n")
    per_model = tmp_path / "models.yaml"
    per_model.write_text("gpt-4o-mini: {input: 0.075, output: 0.30}\ngpt-4o: {input: 1.25, output: 5.0}\n")
    assert load_prices(None, None, str(flat), "any") == Prices(0.15, 0.60)
    assert load_prices(None, None, str(per_model), "gpt-4o") == Prices(1.25, 5.0)
    assert load_prices(0.5, None, str(per_model), "gpt-4o-mini") == Prices(0.5, 0.30)  # a flag wins
    assert Prices(0.15, 0.60).cost(1_000_000, 500_000) == pytest.approx(0.45)
    with pytest.raises(DataError, match="under the model name 'o3'"):
        load_prices(None, None, str(per_model), "o3")
