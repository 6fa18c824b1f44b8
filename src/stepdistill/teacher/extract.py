"""`stepdistill extract`: ask a teacher LLM for a rationale and a label for every input of a split.

Reads top to bottom: settings; the inputs; the prompt; the backend; which requests the cache already
answers (plan.py); send the rest (runner.py; or through the Batch API, batchapi.py); write
DIR/rationales.jsonl, then DIR/manifest.json last. Killed at any point, the same command resumes: answers
are committed to the SQLite cache as they arrive. --estimate, --export-requests and --import-results
send nothing and write no rationales (batchfiles.py). Memory does not grow with the number of inputs:
every step walks them a chunk at a time, and the request keys wait on disk (plan.py, keyindex.py).

    stepdistill extract --task svamp --split train --teacher openai:gpt-4o-mini --out runs/svamp-teacher
    stepdistill extract --task svamp --teacher local --limit 30 --max-tokens 96 --out /tmp/svamp-local
    stepdistill extract --task cqa --teacher replay --out runs/cqa-palm     # the released completions
    stepdistill extract ... --estimate --price-in 0.15 --price-out 0.60   # requests, tokens, cost; sends nothing
    stepdistill extract ... --export-requests runs/requests               # Batch API JSONL shards
    stepdistill extract ... --import-results out.jsonl errors.jsonl       # then the same command again
    stepdistill extract ... --batch-submit                                 # the OpenAI Batch API, end to end
    stepdistill extract ... --base-url http://gpu1:8000/v1 --base-url http://gpu2:8000/v1   # replicas
    stepdistill extract ... --recover-cache     # a damaged cache: copy its readable answers into a new one

Exit status: 0 when every request was answered (or held back by a budget you set); 1 when some requests
failed (the last line says to run the same command again, which asks only those); 2 on bad settings or
input, a dead endpoint (--max-connection-failures in a row), a damaged cache, or an --out or --cache in
use by another extract (each holds OUT/.extract.lock and CACHE.lock: concurrent runs are refused, so no
request is paid for twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..provenance import file_sha256, library_versions
from ..cliargs import option
from ..errors import DataError
from ..jsonio import write_json
from .backends import Backend, make_backend, redact_url
from .batchapi import submit_batches
from .batchfiles import estimate, export_requests, import_results
from .cache import MemoryStore, open_store
from .cost import Prices, cost_summary, load_prices
from .locks import extraction_locks
from .recover import recover_cache
from .output import KEEP_CHOICES, MANIFEST_FILE, RATIONALES_FILE, Tally, make_row, mark_kept, read_rationales
from .plan import Inputs, RequestPlan, load_inputs, prompt_builder, sampling
from .runner import Runner, RunStats
from .tokens import make_counter
from .rationalize import HINT_CHECKS, HintRequests, rationalize

log = logging.getLogger("stepdistill.teacher")


@dataclass
class ExtractSettings:
    task: str = option("", "cqa, svamp, anli1, esnli, or your own data: PATH[:SCORER] (a .jsonl/.csv/.tsv/.parquet "
                           "file or folder) or hf:NAME[:CONFIG][:SCORER]", required=True)
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
    price_in: float | None = option(None, "USD per million prompt tokens (for the manifest's cost, --max-cost, --estimate)")
    price_out: float | None = option(None, "USD per million completion tokens")
    price_file: str | None = option(None, "YAML with 'input' and 'output' prices, flat or under the model's name")
    max_cost: float | None = option(None, "stop cleanly before this run's estimated cost could exceed N USD (needs prices)")
    estimate: bool = option(False, "print the requests, tokens and cost the uncached inputs would take; send nothing")
    tokenizer: str = option("auto", "prompt token counter for --estimate and exports: auto, chars, hf:NAME, "
                                    "gguf:PATH or tiktoken:ENCODING (see teacher/tokens.py)")
    export_requests: str | None = option(None, "write OpenAI Batch API request files for the uncached requests to DIR "
                                               "(shards of <= 50,000 lines, 200 MB) and stop")
    import_results: list[str] = option([], "read Batch API result/error files (OpenAI's or vllm run-batch's) into "
                                           "the cache and stop; then run extract as usual")
    batch_submit: bool = option(False, "send the uncached requests through the OpenAI Batch API (upload, create, "
                                       "poll, download, import); resumes polling after a kill")
    batch_poll: float = option(30.0, "--batch-submit: first wait between status checks, seconds (grows x1.5 to 10 min)")
    cache: str | None = option(None, "SQLite answers cache (default: OUT/cache.sqlite); share one to reuse answers across runs")
    base_url: list[str] = option([], "openai: the server's URL, e.g. http://127.0.0.1:8000/v1 (default: OpenAI); "
                                     "several (repeat the flag): replicas, least outstanding requests first")
    api_key_env: str = option("OPENAI_API_KEY", "openai: environment variable holding the API key (never written anywhere)")
    prompt: str | None = option(None, "prompt template file (.yaml or .j2) for your own task or to replace a built-in prompt")
    prompt_style: str = option("auto", "completion, chat, or auto (the template's style; else chat for openai:, "
                                       "completion otherwise)", choices=("auto", "completion", "chat"))
    exemplars: int | None = option(None, "use only the first N few-shot exemplars (shorter prompts)")
    n_ctx: int = option(8192, "local: context length in tokens")
    threads: int = option(2, "local: CPU threads")
    max_connection_failures: int = option(20, "stop (exit 2) after N attempts in a row that could not connect "
                                              "(every replica, with several) and no answer in between")
    max_completion_chars: int = option(65536, "store at most N characters of a completion (and of its "
                                              "reasoning); the manifest counts the cut ones")
    recover_cache: bool = option(False, "copy the readable answers of a damaged cache into a new one and stop")
    progress: bool = option(True, "show a progress bar on stderr")
    rationalize: bool = option(False, "ask again, with the gold label as a hint, for inputs the teacher got wrong; "
                                      "keep hinted rationales that parse back to gold (rows tagged hinted: true)")
    hint_teacher: str | None = option(None, "--rationalize: the teacher for hinted requests (default: --teacher; "
                                             "needed with --teacher replay, e.g. local)")
    hint_check: str = option("auto", "--rationalize: also check a hinted rationale's own arithmetic and keep it only "
                                     "if every `a op b = c` in it is right and they get from the question's numbers "
                                     "to the answer: auto (for tasks scored numeric or equation), arithmetic, or none",
                             choices=HINT_CHECKS)

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
        if self.max_connection_failures < 1 or self.max_completion_chars < 1:
            raise DataError("--max-connection-failures and --max-completion-chars must be at least 1")
        if self.timeout <= 0 or self.backoff < 0:
            raise DataError("--timeout must be positive and --backoff not negative")
        self.base_url = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url or [])
        self.import_results = [self.import_results] if isinstance(self.import_results, str) else list(self.import_results)
        modes = [name for name, on in (("--estimate", self.estimate), ("--export-requests", self.export_requests),
                                       ("--import-results", self.import_results), ("--batch-submit", self.batch_submit),
                                       ("--recover-cache", self.recover_cache)) if on]
        if len(modes) > 1:
            raise DataError(f"{' and '.join(modes)} do different things: give one at a time")
        if self.max_cost is not None and (self.price_file is None and (self.price_in is None or self.price_out is None)):
            raise DataError("--max-cost needs prices: --price-in and --price-out, or --price-file")
        if (self.export_requests or self.batch_submit) and not self.teacher.startswith("openai:"):
            raise DataError("--export-requests and --batch-submit write OpenAI Batch API requests: they need an "
                            f"openai: teacher, not '{self.teacher}'")
        if self.batch_poll <= 0:
            raise DataError("--batch-poll must be positive")
        if self.rationalize and self.teacher == "replay" and self.hint_teacher in (None, "replay"):
            raise DataError("--rationalize with --teacher replay needs --hint-teacher (openai:MODEL or local): "
                            "the released completions cannot answer hinted requests")
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
    if settings.recover_cache:
        with extraction_locks(Path(settings.out), _cache_path(settings)):
            return {"mode": "recover", **recover_cache(_cache_path(settings))}
    inputs = load_inputs(settings, replay=settings.teacher == "replay" and backend is None)
    teacher = settings.teacher if backend is None else None
    backend = backend or _make_backend(settings, inputs.released)
    prices = load_prices(settings.price_in, settings.price_out, settings.price_file, backend.model)
    if settings.estimate or settings.export_requests or settings.import_results:
        return _without_requests(settings, inputs, backend, prices)
    with extraction_locks(Path(settings.out), _cache_path(settings) if backend.cacheable else None), \
            open_store(backend, _cache_path(settings)) as store:  # a damaged cache stops here, OUT untouched
        out = _unfinished_folder(settings.out)
        with _plan(settings, inputs, backend, store) as plan:
            plan.check_cache(store)
            send = submit_batches if settings.batch_submit else _send_missing
            stats, request_seconds = send(settings, plan, backend, store, prices)
            tally = _write_rows(out / RATIONALES_FILE, inputs.task, plan, store, stats, settings.keep)
            rationalized = _rationalize(settings, inputs, plan, backend, store, out, stats, tally, prices)
            manifest = _manifest(settings, inputs, plan, backend, store, teacher, prices,
                                 counts={"stats": stats, "tally": tally, "rationalized": rationalized},
                                 seconds={"total": time.perf_counter() - started, "requests": request_seconds})
        write_json(out / MANIFEST_FILE, manifest)  # last: its presence means the folder is complete
    return manifest


def _make_backend(settings: ExtractSettings, released: dict | None) -> Backend:
    sends = not (settings.estimate or settings.export_requests or settings.import_results)
    return make_backend(settings.teacher, base_url=settings.base_url, api_key_env=settings.api_key_env,
                        timeout=settings.timeout, n_ctx=settings.n_ctx, threads=settings.threads, released=released,
                        needs_key=sends)


def _plan(settings: ExtractSettings, inputs: Inputs, backend: Backend, store) -> RequestPlan:
    builder = prompt_builder(settings, inputs.task.name, backend)
    return RequestPlan(inputs, builder, sampling(settings, builder), backend,
                       label=f"{inputs.task.name}/{inputs.split}", memo=store)


def _without_requests(settings: ExtractSettings, inputs: Inputs, backend: Backend, prices: Prices) -> dict:
    """--import-results, --estimate or --export-requests: the batch side of the stage (batchfiles.py); no
    request is sent and OUT gets no rationales file."""
    cache_path = _cache_path(settings)
    if settings.import_results:
        with extraction_locks(Path(settings.out), cache_path), open_store(backend, cache_path) as store, \
                _plan(settings, inputs, backend, store) as plan:
            return {"mode": "import", **import_results(settings.import_results, plan, store, backend,
                                                             settings.max_completion_chars)}
    store = open_store(backend, cache_path) if cache_path.is_file() else MemoryStore()  # nothing cached yet
    with store, _plan(settings, inputs, backend, store) as plan:
        plan.check_cache(store)
        counter = make_counter(settings.tokenizer, backend)
        completion_each = store.mean_completion_tokens(backend.model) or settings.max_tokens
        if settings.estimate:
            return {"mode": "estimate", **estimate(plan, store, counter, completion_each, prices)}
        return {"mode": "export", "folder": settings.export_requests,
                **export_requests(Path(settings.export_requests), plan, store, backend, counter, completion_each, prices)}


def _cache_path(settings: ExtractSettings) -> Path:
    return Path(settings.cache) if settings.cache else Path(settings.out) / "cache.sqlite"


def _unfinished_folder(out: str) -> Path:
    """OUT, without its manifest: the folder is unfinished until the new manifest lands."""
    folder = Path(out)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)  # OUT exists: extraction_locks made it
    return folder


def _send_missing(settings: ExtractSettings, plan: RequestPlan, backend: Backend, store,
                  prices: Prices) -> tuple[RunStats, float]:
    """Send every request the cache cannot answer (runner.py); the run is logged in the cache."""
    from tqdm.auto import tqdm

    bar = tqdm(total=plan.requests, initial=plan.cache_hits, unit="req",
               desc=f"extract {plan.label}", disable=not settings.progress,
               dynamic_ncols=True, file=sys.stderr, smoothing=0.1)
    runner = Runner.from_settings(settings, backend, store, bar=bar, token_budget=settings.max_tokens_budget,
                                  cost_budget=settings.max_cost, prices=prices)
    runner.cache_hits = plan.cache_hits
    run_id = store.start_run(settings.out)
    started = time.perf_counter()
    try:
        asyncio.run(_fetch(runner, plan.pending(store), backend))
    finally:
        bar.close()
        stats = runner.stats
        store.finish_run(run_id, stats.requests_sent, stats.answered, len(stats.errors), stats.prompt_tokens,
                         stats.completion_tokens)
    return runner.stats, time.perf_counter() - started


def _rationalize(settings: ExtractSettings, inputs: Inputs, plan: RequestPlan, backend: Backend, store, out: Path,
                 stats: RunStats, tally: Tally, prices: Prices) -> dict | None:
    """--rationalize: hinted second requests for the inputs the teacher got wrong (teacher/rationalize.py)."""
    if not settings.rationalize:
        return None
    hints = HintRequests.build(settings, inputs.task, inputs, plan.builder, backend, store)
    return rationalize(hints, out / RATIONALES_FILE, settings, stats, tally, prices)


def _manifest(settings: ExtractSettings, inputs: Inputs, plan: RequestPlan, backend: Backend, store,
              teacher: str | None, prices: Prices, counts: dict, seconds: dict) -> dict:
    """What was asked, of whom, what came back, and what it cost: written last into OUT."""
    stats, summary, builder = counts["stats"], counts["tally"].summary(), plan.builder
    held_back = bool(stats.not_sent) or bool((counts["rationalized"] or {}).get("not_sent"))  # main or hinted pass
    task, split = inputs.task, inputs.split
    return {
        "stage": "extract",
        "task": task.name, "split": split, "protocol": task.protocol,
        "teacher": teacher or f"{backend.name}:{backend.model}", "model": backend.model,
        "backend": backend.describe(),
        "prompt_hash": builder.hash if builder else None,
        "prompt_style": builder.style if builder else None,
        "prompt_source": builder.spec.source if builder else "released completions (prompt unpublished)",
        "exemplars": len(builder.spec.exemplars) if builder else None,
        "sampling": {name: value for name, value in plan.params[0].as_dict().items() if name != "seed"},
        "samples": settings.samples, "keep": settings.keep, "rationalize": counts.get("rationalized"),
        "inputs": inputs.count, "requests": plan.requests, "cache_hits": plan.cache_hits,
        "requests_sent": stats.requests_sent, "answered": stats.answered, "retries": stats.retries,
        "failed": len(stats.errors), "not_sent": stats.not_sent, "completions_cut": stats.cut,
        "stopped_by_budget": held_back,
        **{name: summary[name] for name in ("rows", "parsed", "unparsable", "kept", "dropped", "parse_errors",
                                            "teacher_accuracy")},
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens,
                   "total": stats.prompt_tokens + stats.completion_tokens},
        "tokens_all_runs": store.totals(),
        "cost": cost_summary(prices, {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens},
                             store.totals()),
        "stopped_by_cost": held_back and settings.max_cost is not None,
        "batch_submit": settings.batch_submit,
        "seconds": round(seconds["total"], 3),
        "request_seconds": round(seconds["requests"], 3),
        "cache": str(store.path) if store.path else None,
        "input_file": str(task.input_path(split)), "input_sha256": _input_hash(task.input_path(split)),
        "settings": {**dataclasses.asdict(settings), "base_url": [redact_url(url) for url in settings.base_url]},
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


_ROW_JSON = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for every row, not one per json.dumps()


def _write_rows(path: Path, task, plan: RequestPlan, store, stats: RunStats, keep: str) -> Tally:
    """One row per input and sample, in input order, written atomically; inputs, keys and answers are
    read a chunk of inputs at a time (plan.walk), so that they are never all in memory."""
    tally = Tally()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as file:
        for chunk, keys in plan.walk():
            answers = store.get_many({key for row in keys for key, _ in row})
            for example, row in zip(chunk, keys):
                rows = [make_row(task, example, sample, answers.get(key),
                                 None if key in answers else stats.why_unanswered(key))
                        for sample, (key, _) in enumerate(row)]
                for row, reason in zip(rows, mark_kept(task, rows, keep)):
                    tally.add(row, reason)
                    file.write(_ROW_JSON(row) + "\n")
    tmp.replace(path)
    return tally


async def _fetch(runner: Runner, jobs, backend: Backend):
    try:
        return await runner.run(jobs)
    finally:
        await backend.aclose()


def _input_hash(path: Path) -> str | None:
    """None when the task's inputs do not come from one file (a dataset loaded by name, say)."""
    return file_sha256(path) if Path(path).is_file() else None


def _versions() -> dict:
    return library_versions("openai", "llama-cpp-python")


__all__ = ["ExtractSettings", "read_rationales", "run_extract"]
