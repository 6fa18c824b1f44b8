"""`extract --rationalize`: a second, hinted request for the inputs the teacher got wrong.

Rationalization (as in STaR, Zelikman et al. 2022): for an input whose teacher answer is wrong or did
not parse, and whose gold label is known, ask again with the gold label given as a hint, in the task's
own prompt format (prompts.hinted_spec), and keep the new rationale only if it parses back to the gold
label with a rationale of its own (not the bare hinted answer). For tasks scored on numbers (SVAMP) the
rationale must also get all its sums right and reach the answer through them from the question's numbers
(`--hint-check`, arithmetic.check_arithmetic): the hint gives the answer away, and a weak teacher reaches it
through wrong sums, sums about other numbers, or a prompt exemplar's. Kept hinted rows replace the input's wrong rows for training (those are un-kept, with the reason
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
from typing import Iterable, Iterator

from ..arithmetic import answer_value, check_arithmetic
from ..errors import DataError
from ..jsonio import iter_jsonl, write_json
from .backends import Backend, Sampling, make_backend
from .cache import open_store, request_key
from .cost import Prices
from .output import FAILED, NOT_SENT, UNPARSABLE, WRONG, Tally, make_row
from .plan import prompt_builder
from .prompts import Prompt, PromptBuilder, hinted_spec, prompt_values
from .runner import Job, Runner

REPLACED = "replaced by a hinted rationale"
NO_RATIONALE = "the hint repeated without a rationale"
ARITHMETIC = "a wrong sum in the rationale, or no sums from the question's numbers to the answer"
HINT_CHECKS = ("auto", "arithmetic", "none")
NUMERIC_SCORERS = ("numeric", "equation")
EXAMPLES_FILE = "hinted_examples.json"
N_EXAMPLES = 5


@dataclass
class HintRequests:
    """What the hinted pass needs: the task, its inputs, the hinted prompt, a backend, a store, sampling."""
    task: object
    examples: Iterable  # the extraction's inputs, in order (plan.Inputs: read again each time it is walked)
    builder: PromptBuilder  # the hinted prompt
    backend: Backend
    store: object  # cache.Cache or cache.MemoryStore
    params: Sampling
    own_store: bool = False  # opened here (the main pass had no cache: replay), so closed here
    check_arithmetic: bool = False  # --hint-check: a kept hinted rationale's sums must be right and reach the answer

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
        check = settings.hint_check == "arithmetic" or (settings.hint_check == "auto" and task.scorer in NUMERIC_SCORERS)
        return cls(task, examples, hinted, backend, store, params, own_store, check)

    def prompt(self, example) -> Prompt:
        return self.builder.render({**prompt_values(example), "hint": example.label}, f"hinted input {example.id}")

    def key(self, example, prompt: Prompt) -> str:
        return request_key(self.backend.name, self.backend.model, prompt, self.params.as_dict(), 0,
                           example.id if self.backend.per_example else None)

    def chosen(self, rows_path: Path) -> Iterator[tuple[object, list[dict]]]:
        """(input, its rows) for each input that needs a hint, walking the inputs and rationales.jsonl
        side by side (both in input order), so neither is held whole."""
        for example, (example_id, rows) in zip(self.examples, read_groups(rows_path)):
            if example.id != example_id:
                raise DataError(f"{rows_path}: rows of '{example_id}' where '{example.id}' was expected: the file "
                                "changed while it was rewritten; run the same command again")
            if needs_hint(rows):
                yield example, rows


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
    `prices` those of the run, for --max-cost). Two passes over the inputs and rows, a row at a time:
    one sends what the cache lacks, the other writes the rows."""
    tried = sum(needs_hint(rows) for _, rows in read_groups(rows_path))
    stats = _send(req, rows_path, tried, settings, main_stats, prices)
    try:
        counts = _rewrite(req, rows_path, stats, tally, settings.samples)
    finally:
        if req.own_store:
            req.store.close()
    write_json(rows_path.parent / EXAMPLES_FILE, counts.pop("examples"))
    return {"tried": tried, **counts,
            "requests_sent": stats.requests_sent, "failed": len(stats.errors), "not_sent": stats.not_sent,
            "tokens": stats.prompt_tokens + stats.completion_tokens,
            "cost_usd": _round(prices.cost(stats.prompt_tokens, stats.completion_tokens)),
            "prompt_hash": req.builder.hash, "teacher": f"{req.backend.name}:{req.backend.model}",
            "check": "arithmetic" if req.check_arithmetic else "none",
            "examples_file": EXAMPLES_FILE}


def _send(req: HintRequests, rows_path: Path, tried: int, settings, main_stats, prices: Prices):
    """The hinted requests the cache lacks, through the same runner and limits as the main pass; the
    token budget and the cost cap are the run's, so the hinted pass gets what the main pass left."""
    from tqdm.auto import tqdm

    token_budget, cost_budget = left_over(settings, main_stats, prices)
    bar = tqdm(total=tried, unit="req", desc="rationalize (hinted)", disable=not settings.progress,
               dynamic_ncols=True, file=sys.stderr)
    runner = Runner.from_settings(settings, req.backend, req.store, bar=bar, token_budget=token_budget,
                                  cost_budget=cost_budget, prices=prices)

    def jobs():
        for example, _ in req.chosen(rows_path):
            prompt = req.prompt(example)
            key = req.key(example, prompt)
            if req.store.known([key]):
                bar.update(1)  # answered by an earlier run
            else:
                yield Job(key, lambda prompt=prompt: prompt, req.params, example.id)

    async def fetch():
        try:
            return await runner.run(jobs())
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


def _rewrite(req: HintRequests, rows_path: Path, stats, tally: Tally, samples: int) -> dict:
    """Each input's hinted row goes right after its own rows; a kept hinted row un-keeps the wrong ones.
    The tally's main-pass counts (answered, parsed, teacher accuracy) stay those of the main pass.
    Also collects the first few kept hinted rationales beside the teacher's own answer, for the report."""
    counts = {"answered": 0, "kept": 0, "replaced": 0, "examples": []}
    chosen = req.chosen(rows_path)
    upcoming = next(chosen, None)  # the next input that has a hinted row
    tmp = rows_path.with_name(rows_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for example_id, rows in read_groups(rows_path):
            if upcoming is not None and upcoming[0].id == example_id:
                rows = rows + [_hinted_row(req, upcoming[0], samples, stats)]
                _count(rows, tally, counts)
                upcoming = next(chosen, None)
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    tmp.replace(rows_path)
    return counts


def _hinted_row(req: HintRequests, example, samples: int, stats) -> dict:
    prompt = req.prompt(example)
    key = req.key(example, prompt)
    answer = req.store.get_many([key]).get(key)
    row = make_row(req.task, example, samples, answer, None if answer is not None else stats.why_unanswered(key))
    row["hinted"] = True
    row["kept"] = bool(row["correct"]) and bool((row["rationale"] or "").strip())  # not the hint alone
    if req.check_arithmetic and row["kept"]:
        check = check_arithmetic(row["rationale"])
        derives = check.derives(example.input, answer_value(example.label))
        row["arithmetic"] = {"statements": check.statements, "slips": list(check.slips),
                             "uses_question": check.uses_numbers_of(example.input), "derives_answer": derives}
        row["kept"] = check.consistent and derives
    return row


def _count(rows: list[dict], tally: Tally, counts: dict) -> None:
    """An input's rows, its hinted row last: update the tally and the counts; un-keep replaced rows."""
    hinted = rows[-1]
    tally.rows += 1
    counts["answered"] += hinted["completion"] is not None
    if not hinted["kept"]:
        tally.dropped[f"hinted: {_why_not_kept(hinted)}"] += 1
        return
    counts["kept"] += 1
    tally.kept += 1
    for row in (r for r in rows[:-1] if r["kept"]):
        counts["replaced"] += 1
        tally.kept -= 1
        tally.dropped[REPLACED] += 1
        row["kept"] = False
    if len(counts["examples"]) < N_EXAMPLES:
        first = rows[0]
        counts["examples"].append({
            "id": first["id"], "input": first["input"], "label": first["label"],
            "teacher_label": first["teacher_label"], "teacher_completion": first["completion"],
            "hinted_rationale": hinted["rationale"], "hinted_completion": hinted["completion"]})


def _why_not_kept(row: dict) -> str:
    if row["completion"] is None:
        return NOT_SENT if row["request_error"] == NOT_SENT else FAILED
    if row["parse_error"] is not None:
        return UNPARSABLE
    if not row["correct"]:
        return WRONG
    return ARITHMETIC if "arithmetic" in row else NO_RATIONALE
