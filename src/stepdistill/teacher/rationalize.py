"""`extract --rationalize`: a second, hinted request for the inputs the teacher got wrong.

Rationalization (as in STaR, Zelikman et al. 2022): for an input whose teacher answer is wrong or did
not parse, and whose gold label is known, ask again with the gold label given as a hint, in the task's
own prompt format (prompts.hinted_spec), and keep the new rationale only if it parses back to the gold
label with a rationale of its own (not the bare hinted answer). Kept hinted rows replace the input's wrong rows for training (those are un-kept, with the reason
"replaced by a hinted rationale"); `stepdistill train --hinted exclude` leaves hinted rows out again.

Reads top to bottom: choose the inputs; build one hinted request each (cached like every other request,
same store, same runner); send what the cache lacks; rewrite rationales.jsonl with each input's hinted row
after its own rows (tagged `"hinted": true`); count tried / kept for the manifest; write a few kept
hinted rows to hinted_examples.json for the report.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..jsonio import iter_jsonl, write_json
from .backends import Backend, Sampling, make_backend
from .cache import open_store, request_key
from .cost import Prices
from .output import FAILED, NOT_SENT, UNPARSABLE, WRONG, Tally, make_row
from .plan import prompt_builder
from .prompts import PromptBuilder, hinted_spec, prompt_values
from .runner import Job, Runner

REPLACED = "replaced by a hinted rationale"
NO_RATIONALE = "the hint repeated without a rationale"
EXAMPLES_FILE = "hinted_examples.json"
N_EXAMPLES = 5


@dataclass
class HintRequests:
    """What the hinted pass needs: the task, its inputs, the hinted prompt, a backend, a store, sampling."""
    task: object
    examples: list  # the extraction's inputs, in order
    builder: PromptBuilder  # the hinted prompt
    backend: Backend
    store: object  # cache.Cache or cache.MemoryStore
    params: Sampling
    own_store: bool = False  # opened here (the main pass had no cache: replay), so closed here

    @classmethod
    def build(cls, settings, task, examples, builder, backend, store) -> "HintRequests":
        """The main pass's prompt, backend and store, unless --hint-teacher names another teacher (needed
        after --teacher replay, whose prompt was never published: the task's built-in prompt is used)."""
        if settings.hint_teacher:
            backend = make_backend(settings.hint_teacher, base_url=settings.base_url, api_key_env=settings.api_key_env,
                                   timeout=settings.timeout, n_ctx=settings.n_ctx, threads=settings.threads)
        builder = builder or prompt_builder(settings, task.name, backend)
        own_store = not store.persistent and backend.cacheable  # replay's main pass had no cache
        if own_store:
            store = open_store(backend, Path(settings.cache) if settings.cache else Path(settings.out) / "cache.sqlite")
        params = Sampling(max_tokens=settings.max_tokens, temperature=settings.temperature, top_p=settings.top_p,
                          stop=tuple(builder.stop), seed=settings.seed if settings.temperature > 0 else None)
        hinted = PromptBuilder(hinted_spec(builder.spec), style=builder.style)
        return cls(task, examples, hinted, backend, store, params, own_store)


def needs_hint(rows: list[dict]) -> bool:
    """An input is rationalized when it has a gold label, the teacher answered, and no answer is right."""
    answered = [r for r in rows if r["completion"] is not None]
    return bool(answered) and rows[0]["label"] is not None and not any(r["correct"] for r in answered)


def read_groups(path: Path):
    """rationales.jsonl as (id, rows) groups, in file order (rows of one input are adjacent)."""
    group: list[dict] = []
    for _, row in iter_jsonl(path):
        if group and row["id"] != group[0]["id"]:
            yield group[0]["id"], group
            group = []
        group.append(row)
    if group:
        yield group[0]["id"], group


def rationalize(req: HintRequests, rows_path: Path, settings, main_stats, tally: Tally, prices: Prices) -> dict:
    """Send the hinted requests, rewrite `rows_path` with the hinted rows, update `tally`; return the
    counts for the manifest (`settings` are the ExtractSettings; `main_stats` the main pass's RunStats;
    `prices` those of the run, for --max-cost)."""
    by_id = {ex.id: ex for ex in req.examples}
    chosen = [by_id[i] for i, rows in read_groups(rows_path) if needs_hint(rows)]
    builder = req.builder

    def render(example):
        return builder.render({**prompt_values(example), "hint": example.label}, f"hinted input {example.id}")

    keys = {ex.id: request_key(req.backend.name, req.backend.model, render(ex), req.params.as_dict(), 0,
                               ex.id if req.backend.per_example else None) for ex in chosen}
    stats = _send(req, chosen, keys, render, settings, main_stats, prices)
    answers = req.store.get_many(set(keys.values()))
    if req.own_store:
        req.store.close()
    hinted_rows = {}
    for ex in chosen:
        key = keys[ex.id]
        error = stats.errors.get(key) or (NOT_SENT if key in stats.not_sent else "no answer")
        row = make_row(req.task, ex, settings.samples, answers.get(key), None if key in answers else error)
        row["hinted"] = True
        row["kept"] = bool(row["correct"]) and bool((row["rationale"] or "").strip())  # not the hint alone
        hinted_rows[ex.id] = row
    counts = _rewrite(rows_path, hinted_rows, tally)
    _write_examples(rows_path.parent / EXAMPLES_FILE, rows_path, hinted_rows)
    return {"tried": len(chosen), "answered": sum(r["completion"] is not None for r in hinted_rows.values()),
            "kept": counts["kept"], "replaced": counts["replaced"],
            "requests_sent": stats.requests_sent, "failed": len(stats.errors), "not_sent": len(stats.not_sent),
            "tokens": stats.prompt_tokens + stats.completion_tokens,
            "cost_usd": _round(prices.cost(stats.prompt_tokens, stats.completion_tokens)), "prompt_hash": builder.hash,
            "teacher": f"{req.backend.name}:{req.backend.model}",
            "examples_file": EXAMPLES_FILE}


def _send(req: HintRequests, chosen, keys, render, settings, main_stats, prices: Prices):
    """The hinted requests the cache lacks, through the same runner and limits as the main pass; the
    token budget and the cost cap are the run's, so the hinted pass gets what the main pass left."""
    from tqdm.auto import tqdm

    known = req.store.known(set(keys.values()))
    jobs = [Job(keys[ex.id], lambda ex=ex: render(ex), req.params, ex.id) for ex in chosen if keys[ex.id] not in known]
    token_budget, cost_budget = left_over(settings, main_stats, prices)
    bar = tqdm(total=len(chosen), initial=len(chosen) - len(jobs), unit="req", desc="rationalize (hinted)",
               disable=not settings.progress, dynamic_ncols=True, file=sys.stderr)
    runner = Runner.from_settings(settings, req.backend, req.store, bar=bar, token_budget=token_budget,
                                  cost_budget=cost_budget, prices=prices)

    async def fetch():
        try:
            return await runner.run(jobs)
        finally:
            await req.backend.aclose()

    try:
        return asyncio.run(fetch())
    finally:
        bar.close()


def left_over(settings, main_stats, prices: Prices) -> tuple[int | None, float | None]:
    """What --max-tokens-budget and --max-cost leave after the main pass (None: no cap)."""
    spent_tokens = main_stats.prompt_tokens + main_stats.completion_tokens
    tokens = None if settings.max_tokens_budget is None else max(0, settings.max_tokens_budget - spent_tokens)
    spent_cost = prices.cost(main_stats.prompt_tokens, main_stats.completion_tokens) or 0.0
    cost = None if settings.max_cost is None else max(0.0, settings.max_cost - spent_cost)
    return tokens, cost


def _round(cost: float | None) -> float | None:
    return None if cost is None else round(cost, 6)


def _rewrite(rows_path: Path, hinted_rows: dict, tally: Tally) -> dict:
    """Each input's hinted row goes right after its own rows; a kept hinted row un-keeps the wrong ones.
    The tally's main-pass counts (answered, parsed, teacher accuracy) stay those of the main pass."""
    counts = {"kept": 0, "replaced": 0}
    tmp = rows_path.with_name(rows_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for example_id, rows in read_groups(rows_path):
            hinted = hinted_rows.get(example_id)
            if hinted is not None:
                rows = rows + [hinted]
                tally.rows += 1
                if hinted["kept"]:
                    counts["kept"] += 1
                    tally.kept += 1
                    for row in (r for r in rows[:-1] if r["kept"]):
                        counts["replaced"] += 1
                        tally.kept -= 1
                        tally.dropped[REPLACED] += 1
                        row["kept"] = False
                else:
                    tally.dropped[f"hinted: {_why_not_kept(hinted)}"] += 1
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    tmp.replace(rows_path)
    return counts


def _why_not_kept(row: dict) -> str:
    if row["completion"] is None:
        return NOT_SENT if row["request_error"] == NOT_SENT else FAILED
    if row["parse_error"] is not None:
        return UNPARSABLE
    return WRONG if not row["correct"] else NO_RATIONALE


def _write_examples(path: Path, rows_path: Path, hinted_rows: dict) -> None:
    """The first few kept hinted rationales beside the teacher's own (wrong) answer, for the report."""
    shown = []
    for example_id, rows in read_groups(rows_path):
        hinted = hinted_rows.get(example_id)
        if hinted is None or not hinted["kept"]:
            continue
        first = rows[0]
        shown.append({"id": example_id, "input": first["input"], "label": first["label"],
                      "teacher_label": first["teacher_label"], "teacher_completion": first["completion"],
                      "hinted_rationale": hinted["rationale"], "hinted_completion": hinted["completion"]})
        if len(shown) == N_EXAMPLES:
            break
    write_json(path, shown)
