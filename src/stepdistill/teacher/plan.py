"""What an extraction asks: the inputs of a split, the prompt, and one request per input and sample,
each named by its cache key.

The key is all that identifies a request: the live run, an exported Batch API file (`custom_id`), an
imported results file and the cost estimate all meet on it. Memory does not grow with the inputs: they
are read a chunk at a time (a user's rows lazily from their file), the keys and ids live in a temporary
SQLite database (keyindex.py), and prompts are rendered when needed (for the key, for a request).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import islice
from typing import Iterator

from ..errors import DataError
from ..tasks import get_task
from .backends import Backend, Sampling
from .cache import request_key
from .keyindex import CHUNK, KeyIndex, SeenIds
from .prompts import Prompt, PromptBuilder, prompt_for, prompt_values
from .runner import Job


@dataclass
class Inputs:
    """The inputs of one split (the first --limit), read again each time they are walked: a user's rows
    lazily, from their file (so a million inputs are never all in memory); a benchmark's, which its
    loader reads whole, from the list held here."""
    task: object
    split: str
    limit: int | None
    with_teacher: bool
    count: int = 0  # set by load_inputs' check
    digest: str = ""  # of every input's id and prompt values, in order: part of the plan's identity
    released: dict[str, str] | None = None  # replay: the released completion of every input
    held: list | None = None  # the whole split, for a task that cannot stream it

    def __iter__(self) -> Iterator:
        examples = iter(self.held) if self.held is not None else self.task.stream(self.split, self.with_teacher)
        return islice(examples, self.limit) if self.limit else examples

    def chunks(self) -> Iterator[list]:
        examples = iter(self)
        while chunk := list(islice(examples, CHUNK)):
            yield chunk


def load_inputs(settings, replay: bool) -> Inputs:
    """The split's inputs, checked in one pass: unique ids, gold labels for --keep correct, and for replay
    a released completion for every input."""
    task = get_task(settings.task, settings.data_dir)
    split = settings.split or task.pool_split
    inputs = Inputs(task, split, settings.limit, with_teacher=replay)
    if not task.streams:
        inputs.held = task.load(split, with_teacher=replay)
    check = _Check(replay)
    try:
        for chunk in inputs.chunks():
            check.add(chunk, task, split)
    finally:
        check.ids.close()
    if not check.count:
        raise DataError(f"task {task.name} split {split}: no inputs")
    if settings.keep == "correct" and check.unlabeled:
        raise DataError(f"--keep correct needs gold labels, but {check.unlabeled} "
                        f"inputs of {task.name} {split} have none; use --keep parsed")
    inputs.count, inputs.digest = check.count, check.digest.hexdigest()
    inputs.released = _released(task, split, check, settings.samples) if replay else None
    return inputs


class _Check:
    """What load_inputs learns in its one pass over the inputs."""

    def __init__(self, replay: bool):
        self.ids, self.digest = SeenIds(), hashlib.sha256()
        self.count = self.unlabeled = 0
        self.completions: dict[str, str | None] | None = {} if replay else None

    def add(self, chunk: list, task, split: str) -> None:
        repeated = self.ids.add(example.id for example in chunk)
        if repeated is not None:
            raise DataError(f"{task.input_path(split)}: input id '{repeated}' appears more than once; ids must be unique")
        for example in chunk:
            # repr of the values as the task built them (str and number fields, in the file's order): exact
            # for what rendering sees, and several times faster than json.dumps; another order only costs a
            # new plan, never a wrong one
            self.digest.update(repr((example.id, prompt_values(example))).encode())
            self.digest.update(b"\n")
            self.unlabeled += example.label is None
            if self.completions is not None:
                self.completions[example.id] = example.completion
        self.count += len(chunk)


def _released(task, split: str, check: _Check, samples: int) -> dict[str, str]:
    missing = [example_id for example_id, completion in check.completions.items() if completion is None]
    if missing:
        raise DataError(f"--teacher replay: {task.name} {split} has no released completions "
                        f"(llm/{split}_CoT_*.json) for {len(missing)} inputs, e.g. {missing[0]}")
    if samples > 1:
        raise DataError("--teacher replay has one released completion per input: use --samples 1")
    return check.completions


def prompt_builder(settings, task_name: str, backend: Backend) -> PromptBuilder | None:
    """The prompt for this task and backend; None for replay (PaLM's prompt was never published)."""
    if backend.per_example:
        return None
    spec = prompt_for(task_name, settings.prompt)
    style = settings.prompt_style if settings.prompt_style != "auto" else (
        spec.style or ("chat" if backend.name == "openai" else "completion"))
    return PromptBuilder(spec, style=style, n_exemplars=settings.exemplars)


def sampling(settings, builder: PromptBuilder | None) -> list[Sampling]:
    """One Sampling per sample: the same settings, seeds seed, seed + 1, ... when sampling."""
    stop = tuple(builder.stop) if builder else ()
    return [Sampling(max_tokens=settings.max_tokens, temperature=settings.temperature, top_p=settings.top_p,
                     stop=stop, seed=settings.seed + sample if settings.temperature > 0 else None)
            for sample in range(settings.samples)]


PLAN_VERSION = 2  # bump when request_key or prompt rendering changes meaning


class RequestPlan:
    """The key of every (input, sample), on disk (keyindex.py), with each key's first use marked (two
    inputs with the same prompt share one request). Walked a chunk of inputs at a time, in order.

    Keys cost a prompt rendering and a hash per input. With a `memo` (the answers cache), a plan met
    before is read back instead: its id hashes everything the keys depend on (backend, model, prompt
    template, sampling, and every input's id and prompt values), so any change makes a new plan."""

    def __init__(self, inputs: Inputs, builder: PromptBuilder | None, params: list[Sampling], backend: Backend,
                 label: str = "", memo=None):
        self.inputs, self.builder, self.params, self.label = inputs, builder, params, label
        self.index = KeyIndex()
        self.cache_hits = 0  # distinct keys the store answered before this run (check_cache)
        param_dicts = [one.as_dict() for one in params]  # once, not per input: asdict() is slow
        plan_id = self._identity(backend, param_dicts) if memo is not None else None
        remembered = memo.plan_keys(plan_id, inputs.count, len(params)) if plan_id else None
        for rows in remembered or (self._keys_of(chunk, backend, param_dicts) for chunk in inputs.chunks()):
            self.index.add(rows)
        if self.index.inputs != inputs.count:
            raise DataError(f"{inputs.task.input_path(inputs.split)}: its inputs changed while being read "
                            f"({inputs.count} inputs, then {self.index.inputs}); run the command again")
        if plan_id and remembered is None:
            memo.remember_plan(plan_id, self.index.blob())

    @property
    def requests(self) -> int:
        """Distinct requests of the plan (answered or not)."""
        return self.index.requests

    def _keys_of(self, chunk: list, backend: Backend, param_dicts: list[dict]) -> list[tuple[str, ...]]:
        rows = []
        for example in chunk:
            prompt = self.prompt(example)
            rows.append(tuple(request_key(backend.name, backend.model, prompt, param_dicts[sample], sample,
                                          example.id if backend.per_example else None)
                              for sample in range(len(param_dicts))))
        return rows

    def _identity(self, backend: Backend, param_dicts: list[dict]) -> str:
        return hashlib.sha256(json.dumps(
            {"version": PLAN_VERSION, "backend": backend.name, "model": backend.model, "per_example": backend.per_example,
             "prompt": [self.builder.hash, self.builder.style] if self.builder else None, "params": param_dicts,
             "inputs": self.inputs.digest}, sort_keys=True).encode()).hexdigest()

    def prompt(self, example) -> Prompt:
        return self.builder.render(prompt_values(example), f"input {example.id}") if self.builder else ""

    def check_cache(self, store) -> int:
        """How many distinct requests the store already answers (also kept as `cache_hits`)."""
        self.cache_hits = sum(len(store.known(group)) for group in self.index.distinct())
        return self.cache_hits

    def walk(self) -> Iterator[tuple[list, list[list[tuple[str, bool]]]]]:
        """(inputs, their [(key, first use?) per sample]) a chunk at a time, in input order."""
        position = 0
        for chunk in self.inputs.chunks():
            yield chunk, self.index.rows(position, position + len(chunk))
            position += len(chunk)

    def pending(self, store) -> Iterator[Job]:
        """A job for every distinct key the store cannot answer, in order of first use; the store is asked
        a chunk at a time, and a prompt is rendered only when its job is taken."""
        if self.cache_hits == self.requests:
            return
        for chunk, rows in self.walk():
            wanted = [(example, sample, key) for example, row in zip(chunk, rows)
                      for sample, (key, first) in enumerate(row) if first]
            known = store.known([key for _, _, key in wanted])
            for example, sample, key in wanted:
                if key not in known:
                    yield Job(key, _Render(self, example), self.params[sample], example.id)

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> "RequestPlan":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Render:
    """A deferred prompt: rendered when the request is sent, so pending inputs hold no prompt text."""

    __slots__ = ("plan", "example")

    def __init__(self, plan: RequestPlan, example):
        self.plan, self.example = plan, example

    def __call__(self) -> Prompt:
        return self.plan.prompt(self.example)
