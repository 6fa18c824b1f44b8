"""Batch API JSONL as the interchange format: request files out, result files in, and the estimate.

Out (`--export-requests DIR`): one line per request the cache cannot answer,
    {"custom_id": KEY, "method": "POST", "url": "/v1/chat/completions", "body": {...}}
in shards of at most 50,000 lines and 200 MB (the OpenAI Batch API's limits per file), and
DIR/export.json saying how many shards, requests and estimated tokens. custom_id is the cache key, so
nothing else must be remembered: the results carry it back.

In (`--import-results FILE...`): OpenAI's batch output and error files and what `vllm run-batch` writes,
    {"id", "custom_id", "response": {"status_code", "request_id", "body": {...}} | null, "error": ... | null}
(vLLM puts an error message string in "error" with status 400 and no body). Each file is imported in one
transaction: a truncated or damaged file changes nothing. Answers already cached are kept (importing a
file twice adds nothing); error lines are recorded as failures that the next run asks again; custom_ids
that are not requests of this extraction are counted and reported, and a file with none of ours is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..jsonio import iter_jsonl, write_json
from .backends import Backend, Completion, NullReply, TransientError, cap_completion, completion_from_reply
from .cost import Prices
from .plan import RequestPlan
from .tokens import TokenCounter

SHARD_LINES = 50_000
SHARD_BYTES = 200 * 1024 * 1024
EXPORT_MANIFEST = "export.json"


class ShardWriter:
    """requests-00000.jsonl, requests-00001.jsonl, ...: a new shard before either limit would be passed."""

    def __init__(self, folder: Path, max_lines: int = SHARD_LINES, max_bytes: int = SHARD_BYTES):
        self.folder, self.max_lines, self.max_bytes = folder, max_lines, max_bytes
        self.shards: list[dict] = []
        self._file = None

    def write(self, line: bytes) -> None:
        current = self.shards[-1] if self.shards else None
        if current is None or current["requests"] >= self.max_lines or current["bytes"] + len(line) > self.max_bytes:
            self._open_next()
            current = self.shards[-1]
        self._file.write(line)
        current["requests"] += 1
        current["bytes"] += len(line)

    def _open_next(self) -> None:
        self.close()
        name = f"requests-{len(self.shards):05d}.jsonl"
        self._file = (self.folder / name).open("wb")
        self.shards.append({"file": name, "requests": 0, "bytes": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def batch_line(backend: Backend, job) -> tuple[bytes, object]:
    """One Batch API request line for a job, and the prompt it holds."""
    prompt = job.prompt()
    path, body = backend.request(prompt, job.params)
    line = {"custom_id": job.key, "method": "POST", "url": "/v1" + path, "body": body}
    return (json.dumps(line, ensure_ascii=False) + "\n").encode(), prompt


def export_requests(folder: Path, plan: RequestPlan, store, backend: Backend, counter: TokenCounter,
                    completion_each: float, prices: Prices, limits: tuple[int, int] = (SHARD_LINES, SHARD_BYTES)) -> dict:
    """Write the request shards (every request `store` cannot answer) and DIR/export.json (last); returns
    the export manifest."""
    if not hasattr(backend, "request"):
        raise DataError(f"--export-requests writes OpenAI Batch API requests: it needs an openai: teacher, "
                        f"not {backend.name}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / EXPORT_MANIFEST).unlink(missing_ok=True)
    for old in folder.glob("requests-*.jsonl"):  # an earlier export's shards would be sent twice
        old.unlink()
    writer, prompt_tokens = ShardWriter(folder, *limits), 0
    try:
        for job in plan.pending(store):
            line, prompt = batch_line(backend, job)
            writer.write(line)
            prompt_tokens += counter.count(prompt)
    finally:
        writer.close()
    requests = sum(shard["requests"] for shard in writer.shards)
    manifest = {"format": "OpenAI Batch API requests (JSONL)", "model": backend.model, "shards": len(writer.shards),
                "files": writer.shards, "requests": requests, "already_cached": plan.cache_hits,
                **token_estimate(requests, prompt_tokens, completion_each, counter, prices)}
    write_json(folder / EXPORT_MANIFEST, manifest)
    return manifest


def token_estimate(requests: int, prompt_tokens: int, completion_each: float, counter: TokenCounter,
                   prices: Prices) -> dict:
    completion = round(requests * completion_each)
    return {"estimated_tokens": {"prompt": prompt_tokens, "completion": completion, "total": prompt_tokens + completion},
            "tokenizer": counter.name, "completion_tokens_each": round(completion_each, 1),
            "estimated_cost_usd": None if not prices.known else round(prices.cost(prompt_tokens, completion), 6)}


def estimate(plan: RequestPlan, store, counter: TokenCounter, completion_each: float, prices: Prices) -> dict:
    """What the uncached requests would take: requests, prompt tokens (counted), completion tokens (the
    cache's mean, else --max-tokens) and cost. Sends nothing, writes nothing."""
    requests = prompt_tokens = 0
    for job in plan.pending(store):
        requests += 1
        prompt_tokens += counter.count(job.prompt())
    return {"requests": requests, "already_cached": plan.cache_hits,
            **token_estimate(requests, prompt_tokens, completion_each, counter, prices)}


def parse_result(line: dict, where: str) -> tuple[Completion | None, str | None]:
    """(answer, None) for a successful result line, (None, why) for an error line."""
    response, error = line.get("response"), line.get("error")
    status = response.get("status_code") if isinstance(response, dict) else None
    body = response.get("body") if isinstance(response, dict) else None
    if error or status not in (200, None) or not isinstance(body, dict):
        return None, _error_text(error, status, body)
    try:
        return completion_from_reply(body), None
    except NullReply as problem:  # an answer that did not come: like an error line, the next run asks again
        return None, str(problem)
    except (TransientError, TypeError, ValueError) as problem:
        raise DataError(f"{where}: response body is not a completion ({problem})") from None


def _error_text(error, status, body) -> str:
    if isinstance(error, dict):
        detail = f"{error.get('code') or ''}: {error.get('message') or ''}".strip(": ")
    elif error:
        detail = str(error)
    elif isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = str(body["error"].get("message") or body["error"])
    else:
        detail = "no response body"
    return f"batch error{f' (HTTP {status})' if status else ''}: {detail[:300]}"


@dataclass
class ImportReport:
    files: list[dict] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(entry[name] for entry in self.files)

    def as_dict(self) -> dict:
        names = ("lines", "imported", "already_cached", "errors", "unknown", "duplicates", "cut", "prompt_tokens",
                 "completion_tokens")
        return {"files": self.files, **{name: self.total(name) for name in names}}


def import_results(paths: list[str], plan: RequestPlan, store, backend: Backend, max_chars: int | None = None) -> dict:
    """Read result files into the cache, one transaction per file, completions cut to `max_chars`;
    returns what each file held."""
    report = ImportReport()
    if not hasattr(store, "transaction"):
        raise DataError(f"--import-results fills the answers cache; teacher {backend.name} has none")
    for name in paths:
        path = Path(name)
        plan.index.forget_lines()
        with store.transaction():
            entry = _import_file(path, plan, store, backend, max_chars)
        report.files.append(entry)
    return report.as_dict()


def _import_file(path: Path, plan: RequestPlan, store, backend: Backend, max_chars: int | None) -> dict:
    entry = {"file": str(path), "lines": 0, "imported": 0, "already_cached": 0, "errors": 0, "unknown": 0,
             "duplicates": 0, "cut": 0, "first_duplicate": None, "prompt_tokens": 0, "completion_tokens": 0}
    try:
        for lineno, line in iter_jsonl(path):
            entry["lines"] += 1
            where = f"{path}:{lineno}"
            key = line.get("custom_id")
            if not isinstance(key, str):
                raise DataError(f"{where}: no 'custom_id': not a Batch API result line")
            if key not in plan.index:
                entry["unknown"] += 1
            elif (first := plan.index.first_line(key, lineno)) is not None:  # met before in this file
                entry["duplicates"] += 1
                entry["first_duplicate"] = entry["first_duplicate"] or f"{where} repeats line {first}"
            else:
                _store_result(entry, key, line, where, store, backend, path, max_chars)
    except DataError as error:
        raise DataError(f"{error} -- a truncated or damaged results file? Nothing from {path.name} was imported "
                        "and the cache is as it was; fix or download it again and import it again") from None
    if entry["lines"] and entry["unknown"] == entry["lines"]:
        raise DataError(f"{path}: none of its {entry['lines']} results is a request of this extraction (results "
                        "of another task, split, model, prompt or sampling settings?); nothing was imported")
    return entry


def _store_result(entry: dict, key: str, line: dict, where: str, store, backend: Backend, path: Path,
                  max_chars: int | None) -> None:
    answer, error = parse_result(line, where)
    if answer is not None:
        answer, cut = cap_completion(answer, max_chars)
        entry["cut"] += cut
    if answer is None:
        entry["errors"] += 1
        if not store.known([key]):
            store.record_failure(key, error, str(path))
    elif store.add_answer(key, backend.name, backend.model, answer):
        entry["imported"] += 1
        entry["prompt_tokens"] += answer.prompt_tokens
        entry["completion_tokens"] += answer.completion_tokens
    else:
        entry["already_cached"] += 1
