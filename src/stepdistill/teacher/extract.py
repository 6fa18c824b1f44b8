"""`stepdistill extract`: ask a teacher LLM for a rationale and a label for every input of a split.

Reads top to bottom: settings; the inputs; the prompt; the backend; which requests the cache already
answers; send the rest (runner.py); write DIR/rationales.jsonl, then DIR/manifest.json last. Killed at
any point, the same command resumes: answers are committed to the SQLite cache as they arrive.

    stepdistill extract --task svamp --split train --teacher openai:gpt-4o-mini --out runs/svamp-teacher
    stepdistill extract --task svamp --teacher local --limit 30 --max-tokens 96 --out /tmp/svamp-local
    stepdistill extract --task cqa --teacher replay --out runs/cqa-palm     # the released completions
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..provenance import file_sha256 as _file_hash, library_versions
from ..cliargs import option
from ..errors import DataError
from ..jsonio import write_json
from ..tasks import get_task
from .backends import Backend, Sampling, make_backend
from .cache import Cache, MemoryStore, request_key
from .limits import RateLimiter, RetryPolicy, TokenBudget
from .output import KEEP_CHOICES, MANIFEST_FILE, NOT_SENT, RATIONALES_FILE, Tally, make_row, mark_kept, read_rationales
from .prompts import PromptBuilder, prompt_for, prompt_values
from .runner import Job, Runner

log = logging.getLogger("stepdistill.teacher")


@dataclass
class ExtractSettings:
    task: str = option("", "cqa, svamp, anli1, esnli, or jsonl:PATH[:SCORER] for your own data", required=True)
    out: str = option("", "output folder: rationales.jsonl, then manifest.json (and cache.sqlite)", required=True)
    teacher: str = option("local", "openai:MODEL, local[:PATH.gguf] (default: the embedded SmolLM2) or replay")
    split: str | None = option(None, "release split (default: the task's training pool: train; valid for anli1/esnli)")
    data_dir: str | None = option(None, "the release's datasets/ folder (default: $STEPDISTILL_DATA, then ./datasets)")
    limit: int | None = option(None, "only the first N inputs of the split")
    keep: str = option("parsed", "rows kept for training: all, parsed (several samples: the majority answer), "
                                 "or correct (teacher label matches gold)", choices=KEEP_CHOICES)
    samples: int = option(1, "completions per input; more than 1 needs --temperature > 0")
    temperature: float = option(0.0, "sampling temperature (0: greedy)")
    top_p: float | None = option(None, "nucleus sampling (default: the server's)")
    max_tokens: int = option(256, "longest completion, in tokens")
    seed: int = option(0, "sampling seed; sample k uses seed + k")
    concurrency: int = option(8, "requests in flight at most")
    rpm: float | None = option(None, "requests per minute at most")
    tpm: float | None = option(None, "tokens per minute at most (prompt estimate + max_tokens)")
    timeout: float = option(120.0, "seconds one request to a server may take before it is retried")
    retries: int = option(6, "retries after a 429, 5xx, timeout, broken connection or malformed reply")
    backoff: float = option(1.0, "first retry delay in seconds; doubles each retry, with jitter (Retry-After wins)")
    max_tokens_budget: int | None = option(None, "stop cleanly before this run's prompt + completion tokens could exceed N")
    cache: str | None = option(None, "SQLite answers cache (default: OUT/cache.sqlite); share one to reuse answers across runs")
    base_url: str | None = option(None, "openai: the server's URL, e.g. http://127.0.0.1:8000/v1 (default: OpenAI)")
    api_key_env: str = option("OPENAI_API_KEY", "openai: environment variable holding the API key (never written anywhere)")
    prompt: str | None = option(None, "prompt template file (.yaml or .j2) for your own task or to replace a built-in prompt")
    prompt_style: str = option("auto", "completion, chat, or auto (the template's style; else chat for openai:, "
                                       "completion otherwise)", choices=("auto", "completion", "chat"))
    exemplars: int | None = option(None, "use only the first N few-shot exemplars (shorter prompts)")
    n_ctx: int = option(8192, "local: context length in tokens")
    threads: int = option(2, "local: CPU threads")
    progress: bool = option(True, "show a progress bar on stderr")

    def __post_init__(self):
        if not self.task or not self.out:
            raise DataError("extract needs --task and --out")
        if self.keep not in KEEP_CHOICES:
            raise DataError(f"--keep must be one of {', '.join(KEEP_CHOICES)}, got '{self.keep}'")
        if self.samples < 1 or self.concurrency < 1 or self.max_tokens < 1 or self.retries < 0:
            raise DataError("--samples, --concurrency and --max-tokens must be at least 1, --retries at least 0")
        if self.samples > 1 and self.temperature <= 0:
            raise DataError(f"--samples {self.samples} needs --temperature > 0, or every sample is the same answer")
        if self.limit is not None and self.limit < 1:
            raise DataError("--limit must be at least 1")
        if self.timeout <= 0 or self.backoff < 0:
            raise DataError("--timeout must be positive and --backoff not negative")
        for name, value, least in (("max-tokens-budget", self.max_tokens_budget, 1), ("rpm", self.rpm, 1e-9),
                                   ("tpm", self.tpm, 1e-9), ("n-ctx", self.n_ctx, 1), ("threads", self.threads, 1),
                                   ("exemplars", self.exemplars, 0), ("temperature", self.temperature, 0),
                                   ("seed", self.seed, 0), ("top-p", self.top_p, 1e-9)):
            if value is not None and not value >= least:  # `not >=` also catches nan
                raise DataError(f"--{name} must be {'positive' if 0 < least < 1 else f'at least {least}'}, got {value}")
        if self.top_p is not None and self.top_p > 1:
            raise DataError(f"--top-p must be in (0, 1], got {self.top_p}")


def run_extract(settings: ExtractSettings, backend: Backend | None = None) -> dict:
    """Extract rationales for one split; returns the manifest (also written to OUT/manifest.json).
    `backend` replaces the one --teacher names (tests pass a FakeBackend)."""
    started = time.perf_counter()
    s = settings
    task = get_task(s.task, s.data_dir)
    split = s.split or task.pool_split
    given = backend is not None
    replay = s.teacher == "replay" and not given
    examples = task.load(split, with_teacher=replay)
    examples = examples[: s.limit] if s.limit else examples
    if not examples:
        raise DataError(f"task {task.name} split {split}: no inputs")
    seen: set[str] = set()
    for dup in (ex.id for ex in examples):
        if dup in seen:
            raise DataError(f"{task.input_path(split)}: input id '{dup}' appears more than once; ids must be unique")
        seen.add(dup)
    if s.keep == "correct" and any(ex.label is None for ex in examples):
        raise DataError(f"--keep correct needs gold labels, but {sum(ex.label is None for ex in examples)} "
                        f"inputs of {task.name} {split} have none; use --keep parsed")

    released = None
    if replay:
        missing = [ex.id for ex in examples if ex.completion is None]
        if missing:
            raise DataError(f"--teacher replay: {task.name} {split} has no released completions "
                            f"(llm/{split}_CoT_*.json) for {len(missing)} inputs, e.g. {missing[0]}")
        if s.samples > 1:
            raise DataError("--teacher replay has one released completion per input: use --samples 1")
        released = {ex.id: ex.completion for ex in examples}
    if backend is None:
        backend = make_backend(s.teacher, base_url=s.base_url, api_key_env=s.api_key_env, timeout=s.timeout,
                               n_ctx=s.n_ctx, threads=s.threads, released=released)

    # The prompt (replay has none: PaLM's prompt was never published)
    builder = None
    if not replay:
        spec = prompt_for(task.name, s.prompt)
        style = s.prompt_style if s.prompt_style != "auto" else (
            spec.style or ("chat" if backend.name == "openai" else "completion"))
        builder = PromptBuilder(spec, style=style, n_exemplars=s.exemplars)
    stop = tuple(builder.stop) if builder else ()
    params = [Sampling(max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p, stop=stop,
                       seed=s.seed + k if s.temperature > 0 else None) for k in range(s.samples)]

    # Which requests are already answered: one key per (input, sample)
    def render(values: dict, where: str):
        return builder.render(values, where) if builder else ""

    keys: list[list[str]] = []
    first_use: dict[str, tuple[int, int]] = {}
    for i, ex in enumerate(examples):
        values = prompt_values(ex)
        prompt = render(values, f"input {ex.id}")
        row_keys = [request_key(backend.name, backend.model, prompt, params[k].as_dict(), k,
                                ex.id if backend.per_example else None) for k in range(s.samples)]
        keys.append(row_keys)
        for k, key in enumerate(row_keys):
            first_use.setdefault(key, (i, k))

    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)  # the folder is unfinished until the new manifest lands
    cache_path = Path(s.cache) if s.cache else out / "cache.sqlite"
    store = Cache(cache_path) if backend.cacheable else MemoryStore()
    known = store.known(first_use)
    jobs = (Job(key, functools.partial(render, prompt_values(examples[i]), f"input {examples[i].id}"),
                params[k], examples[i].id)
            for key, (i, k) in first_use.items() if key not in known)

    # Send what is missing
    from tqdm.auto import tqdm

    bar = tqdm(total=len(first_use), initial=len(known), unit="req", desc=f"extract {task.name}/{split}",
               disable=not s.progress, dynamic_ncols=True, file=sys.stderr, smoothing=0.1)
    runner = Runner(backend, store, concurrency=1 if backend.in_process else s.concurrency,
                    limiter=RateLimiter(s.rpm, s.tpm), policy=RetryPolicy(retries=s.retries, base=s.backoff),
                    timeout=s.timeout, budget=TokenBudget(s.max_tokens_budget), bar=bar)
    runner.cache_hits = len(known)
    run_id = store.start_run(str(out)) if isinstance(store, Cache) else None
    fetch_started = time.perf_counter()
    try:
        stats = asyncio.run(_fetch(runner, jobs, backend))
    finally:
        bar.close()
        st = runner.stats
        if run_id is not None:
            store.finish_run(run_id, st.requests_sent, st.answered, len(st.errors), st.prompt_tokens, st.completion_tokens)
    fetch_seconds = time.perf_counter() - fetch_started

    tally = _write_rows(out / RATIONALES_FILE, task, examples, keys, store, stats, s.keep)
    summary = tally.summary()
    manifest = {
        "stage": "extract",
        "task": task.name, "split": split, "protocol": task.protocol,
        "teacher": f"{backend.name}:{backend.model}" if given else s.teacher, "model": backend.model,
        "backend": backend.describe(),
        "prompt_hash": builder.hash if builder else None,
        "prompt_style": builder.style if builder else None,
        "prompt_source": builder.spec.source if builder else "released completions (prompt unpublished)",
        "exemplars": len(builder.spec.exemplars) if builder else None,
        "sampling": {k: v for k, v in params[0].as_dict().items() if k != "seed"}, "samples": s.samples,
        "keep": s.keep,
        "inputs": len(examples), "requests": len(first_use), "cache_hits": len(known),
        "requests_sent": stats.requests_sent, "answered": stats.answered, "retries": stats.retries,
        "failed": len(stats.errors), "not_sent": len(stats.not_sent),
        "stopped_by_budget": bool(stats.not_sent),
        **{k: summary[k] for k in ("rows", "parsed", "unparsable", "kept", "dropped", "parse_errors", "teacher_accuracy")},
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens,
                   "total": stats.prompt_tokens + stats.completion_tokens},
        "tokens_all_runs": store.totals() if isinstance(store, Cache) else None,
        "seconds": round(time.perf_counter() - started, 3),
        "request_seconds": round(fetch_seconds, 3),
        "cache": str(cache_path) if isinstance(store, Cache) else None,
        "input_file": str(task.input_path(split)), "input_sha256": _file_hash(task.input_path(split)),
        "settings": dataclasses.asdict(s),
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if isinstance(store, Cache):
        store.close()
    write_json(out / MANIFEST_FILE, manifest)  # last: its presence means the folder is complete
    return manifest


def _write_rows(path: Path, task, examples, keys, store, stats, keep: str) -> Tally:
    """One row per input and sample, in input order, written atomically; answers are read back from the
    store a thousand inputs at a time, so that they are never all in memory."""
    tally = Tally()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for start in range(0, len(examples), 1000):
            chunk = range(start, min(start + 1000, len(examples)))
            answers = store.get_many({key for i in chunk for key in keys[i]})
            for i in chunk:
                rows = []
                for k, key in enumerate(keys[i]):
                    error = stats.errors.get(key) or (NOT_SENT if key in stats.not_sent else "no answer")
                    rows.append(make_row(task, examples[i], k, answers.get(key), None if key in answers else error))
                for row, reason in zip(rows, mark_kept(task, rows, keep)):
                    tally.add(row, reason)
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return tally


async def _fetch(runner: Runner, jobs, backend: Backend):
    try:
        return await runner.run(jobs)
    finally:
        await backend.aclose()


def _versions() -> dict:
    return library_versions("openai", "llama-cpp-python")


__all__ = ["ExtractSettings", "read_rationales", "run_extract"]
