"""`--batch-submit`: the uncached requests through the OpenAI Batch API with the official client.

Export the request shards (batchfiles.py), then per shard: upload it (Files API, purpose "batch"),
create a batch, and write OUT/batch/batches.json at once after each step, so that a process killed at
any point resumes polling the batches it created instead of paying for them twice. Poll with growing
waits until every batch ends, download its output and error files, import them into the cache. Any
OpenAI-compatible server with the Files and Batches endpoints works (`--base-url`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..errors import DataError
from ..jsonio import read_json, write_json
from .batchfiles import export_requests, import_results
from .runner import RunStats
from .tokens import approximate

log = logging.getLogger("stepdistill.teacher")
STATE_FILE = "batches.json"
TERMINAL = ("completed", "failed", "expired", "cancelled")
LONGEST_WAIT = 600.0


class BatchState:
    """OUT/batch/batches.json: one entry per shard, {file, input_file_id, batch_id, status, imported}."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: list[dict] = read_json(path)["batches"] if path.is_file() else []

    def save(self) -> None:
        write_json(self.path, {"batches": self.entries})

    def unfinished(self) -> list[dict]:
        return [entry for entry in self.entries if not entry.get("imported")]


def submit_batches(settings, plan, backend, store, prices) -> tuple[RunStats, float]:
    started = time.perf_counter()
    folder = Path(settings.out) / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    state = BatchState(folder / STATE_FILE)
    client = backend.sync_client()
    if not state.unfinished():
        state.entries = _export(folder, plan, store, backend, settings, prices)
        state.save()
    stats = RunStats()
    for entry in state.unfinished():
        _create(client, folder, entry, state)
        stats.requests_sent += entry["requests"]
    _poll(client, state, settings.batch_poll)
    for entry in state.unfinished():
        _collect(client, folder, entry, plan, store, backend, stats)
        state.save()
    for keys in plan.index.distinct():  # what is still unanswered after the import, and why
        failures = store.failures(keys)
        answered = store.known(failures)
        stats.errors.update((key, error) for key, error in failures.items() if key not in answered)
    return stats, time.perf_counter() - started


def _export(folder: Path, plan, store, backend, settings, prices) -> list[dict]:
    manifest = export_requests(folder, plan, store, backend, approximate(), settings.max_tokens, prices)
    cost = manifest["estimated_cost_usd"]
    if settings.max_cost is not None and cost is not None and cost > settings.max_cost:
        raise DataError(f"these {manifest['requests']} requests could cost up to ${cost:,.4f} (prompts counted by "
                        f"{manifest['tokenizer']}, --max-tokens each), more than --max-cost {settings.max_cost:g}; "
                        "nothing was submitted (use --limit, or export and submit part of the shards)")
    return [{"file": shard["file"], "requests": shard["requests"], "input_file_id": None, "batch_id": None,
             "status": None, "imported": False} for shard in manifest["files"]]


def _create(client, folder: Path, entry: dict, state: BatchState) -> None:
    """Upload the shard and create its batch, unless an earlier (killed) run already did."""
    path = folder / entry["file"]
    if entry["input_file_id"] is None:
        uploaded = client.files.create(file=(path.name, path.read_bytes()), purpose="batch")
        entry["input_file_id"] = uploaded.id
        state.save()
    if entry["batch_id"] is None:
        with path.open(encoding="utf-8") as file:
            endpoint = json.loads(file.readline())["url"]
        batch = client.batches.create(input_file_id=entry["input_file_id"], endpoint=endpoint,
                                      completion_window="24h", metadata={"stepdistill_shard": entry["file"]})
        entry["batch_id"], entry["status"] = batch.id, batch.status
        state.save()
        log.warning("created batch %s for %s (%d requests)", batch.id, entry["file"], entry["requests"])


def _poll(client, state: BatchState, first_wait: float) -> None:
    """Until every batch has ended; the wait grows by half each round, up to ten minutes."""
    wait = first_wait
    while True:
        for entry in state.unfinished():
            if entry["status"] not in TERMINAL:
                batch = client.batches.retrieve(entry["batch_id"])
                entry.update(status=batch.status, output_file_id=batch.output_file_id,
                             error_file_id=batch.error_file_id)
        state.save()
        waiting = [entry["batch_id"] for entry in state.unfinished() if entry["status"] not in TERMINAL]
        if not waiting:
            return
        log.info("%d batch(es) still running; next check in %.0f s", len(waiting), wait)
        time.sleep(wait)
        wait = min(LONGEST_WAIT, wait * 1.5)


def _collect(client, folder: Path, entry: dict, plan, store, backend, stats: RunStats) -> None:
    """Download a finished batch's output and error files and import them."""
    files = []
    for kind in ("output_file_id", "error_file_id"):
        if entry.get(kind):
            path = folder / f"{entry['batch_id']}-{kind.split('_')[0]}.jsonl"
            path.write_bytes(client.files.content(entry[kind]).content)
            files.append(str(path))
    if entry["status"] != "completed" and not files:
        raise DataError(f"batch {entry['batch_id']} ({entry['file']}) ended '{entry['status']}' without results; "
                        f"remove its entry from {folder / STATE_FILE} to submit its requests again")
    report = import_results(files, plan, store, backend) if files else {"imported": 0, "prompt_tokens": 0,
                                                                         "completion_tokens": 0}
    stats.answered += report["imported"]
    stats.prompt_tokens += report["prompt_tokens"]
    stats.completion_tokens += report["completion_tokens"]
    entry["imported"] = True
