"""What an extraction asks: the inputs of a split, the prompt, and one request per input and sample,
each named by its cache key.

The key is all that identifies a request: the live run, an exported Batch API file (`custom_id`), an
imported results file and the cost estimate all meet on it. Prompts are rendered when needed (for the
key, for a request), never held for every input at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterator

from ..errors import DataError
from ..tasks import get_task
from .backends import Backend, Sampling
from .cache import request_key
from .prompts import Prompt, PromptBuilder, prompt_for, prompt_values
from .runner import Job


@dataclass
class Inputs:
    task: object
    split: str
    examples: list
    released: dict[str, str] | None  # replay: the released completion of every input


def load_inputs(settings, replay: bool) -> Inputs:
    """The split's inputs (the first --limit), checked: unique ids, gold labels for --keep correct, and
    for replay a released completion for every input."""
    task = get_task(settings.task, settings.data_dir)
    split = settings.split or task.pool_split
    examples = task.load(split, with_teacher=replay)
    examples = examples[: settings.limit] if settings.limit else examples
    if not examples:
        raise DataError(f"task {task.name} split {split}: no inputs")
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DataError(f"{task.input_path(split)}: input id '{example.id}' appears more than once; ids must be unique")
        seen.add(example.id)
    if settings.keep == "correct" and any(example.label is None for example in examples):
        raise DataError(f"--keep correct needs gold labels, but {sum(ex.label is None for ex in examples)} "
                        f"inputs of {task.name} {split} have none; use --keep parsed")
    return Inputs(task, split, examples, _released(task, split, examples, settings.samples) if replay else None)


def _released(task, split: str, examples: list, samples: int) -> dict[str, str]:
    missing = [example.id for example in examples if example.completion is None]
    if missing:
        raise DataError(f"--teacher replay: {task.name} {split} has no released completions "
                        f"(llm/{split}_CoT_*.json) for {len(missing)} inputs, e.g. {missing[0]}")
    if samples > 1:
        raise DataError("--teacher replay has one released completion per input: use --samples 1")
    return {example.id: example.completion for example in examples}


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


PLAN_VERSION = 1  # bump when request_key or prompt rendering changes meaning


class RequestPlan:
    """The keys of every (input, sample); `first_use` maps each distinct key to the first place it is
    needed (two inputs with the same prompt share one request).

    Keys cost a prompt rendering and a hash per input. With a `memo` (the answers cache), a plan met
    before is read back instead: its id hashes everything the keys depend on (backend, model, prompt
    template, sampling, and every input's prompt values), so any change makes a new plan."""

    def __init__(self, examples: list, builder: PromptBuilder | None, params: list[Sampling], backend: Backend,
                 label: str = "", memo=None):
        self.examples, self.builder, self.params, self.label = examples, builder, params, label
        self.keys: list[tuple[str, ...]] = []
        self.first_use: dict[str, tuple[int, int]] = {}
        param_dicts = [one.as_dict() for one in params]  # once, not per input: asdict() is slow
        plan_id = self._identity(backend, param_dicts) if memo is not None else None
        remembered = memo.plan_keys(plan_id, len(examples), len(params)) if plan_id else None
        self.keys = remembered or [self._keys_of(example, backend, param_dicts) for example in examples]
        if plan_id and remembered is None:
            memo.remember_plan(plan_id, self.keys)
        for index, row_keys in enumerate(self.keys):
            for sample, key in enumerate(row_keys):
                self.first_use.setdefault(key, (index, sample))

    def _keys_of(self, example, backend: Backend, param_dicts: list[dict]) -> tuple[str, ...]:
        prompt = self.prompt(example)
        return tuple(request_key(backend.name, backend.model, prompt, param_dicts[sample], sample,
                                 example.id if backend.per_example else None) for sample in range(len(param_dicts)))

    def _identity(self, backend: Backend, param_dicts: list[dict]) -> str:
        digest = hashlib.sha256(json.dumps(
            {"version": PLAN_VERSION, "backend": backend.name, "model": backend.model, "per_example": backend.per_example,
             "prompt": [self.builder.hash, self.builder.style] if self.builder else None, "params": param_dicts},
            sort_keys=True).encode())
        for example in self.examples:
            # repr of the values as the task built them (str and number fields, in the file's order): exact
            # for what rendering sees, and several times faster than json.dumps; another order only costs a
            # new plan, never a wrong one
            digest.update(repr(prompt_values(example)).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def prompt(self, example) -> Prompt:
        return self.builder.render(prompt_values(example), f"input {example.id}") if self.builder else ""

    def pending(self, known: set[str]) -> Iterator[Job]:
        """A job for every key not in `known`, its prompt rendered only when the job is taken."""
        for key, (index, sample) in self.first_use.items():
            if key not in known:
                example = self.examples[index]
                yield Job(key, _Render(self, example), self.params[sample], example.id)


class _Render:
    """A deferred prompt: rendered when the request is sent, so pending inputs hold no prompt text."""

    __slots__ = ("plan", "example")

    def __init__(self, plan: RequestPlan, example):
        self.plan, self.example = plan, example

    def __call__(self) -> Prompt:
        return self.plan.prompt(self.example)
