"""The demo's own small task: one-step arithmetic word problems generated from a seed.

Written by us, so the offline demo needs no downloaded data. Labels are numbers (scorer `numeric`). The
prompt file holds six exemplars we wrote, in the generic format the parser reads
(`<rationale> So the answer is <number>.`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cookies", "stamps", "shells"]


def make_problem(rng: random.Random) -> dict:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.choice(["add", "sub", "mul", "div"])
    first, second = rng.randint(2, 30), rng.randint(2, 12)
    if kind == "add":
        question = f"{name} has {first} {item}. {name} buys {second} more. How many {item} does {name} have now?"
        answer = first + second
        rationale = f"{name} starts with {first} {item} and buys {second} more, so {first} + {second} = {answer}."
    elif kind == "sub":
        first = first + second
        question = f"{name} had {first} {item} and gave {second} to a friend. How many {item} does {name} have left?"
        answer = first - second
        rationale = f"{name} had {first} {item} and gave away {second}, so {first} - {second} = {answer}."
    elif kind == "mul":
        question = f"{name} fills {second} boxes with {first} {item} in each box. How many {item} are there in all?"
        answer = first * second
        rationale = f"There are {second} boxes of {first} {item} each, so {second} * {first} = {answer}."
    else:
        total = first * second
        question = f"{name} shares {total} {item} equally among {second} friends. How many {item} does each friend get?"
        answer = first
        rationale = f"{total} {item} split among {second} friends is {total} / {second} = {answer}."
    return {"input": question, "label": str(answer), "gold_rationale": rationale}


def write_sample_task(folder: str | Path, n_train: int = 160, n_valid: int = 40, n_test: int = 80,
                      seed: int = 0) -> Path:
    """train/valid/test.jsonl and prompt.yaml (6 exemplars drawn apart from the three splits)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seen: set[str] = set()
    problems = []
    while len(problems) < n_train + n_valid + n_test + 6:
        problem = make_problem(rng)
        if problem["input"] not in seen:  # no input in two splits
            seen.add(problem["input"])
            problems.append(problem)
    exemplars, rest = problems[:6], problems[6:]
    splits = {"train": rest[:n_train], "valid": rest[n_train:n_train + n_valid], "test": rest[n_train + n_valid:]}
    for split, rows in splits.items():
        with (folder / f"{split}.jsonl").open("w") as handle:
            for number, row in enumerate(rows):
                handle.write(json.dumps({"id": f"{split}-{number}", "input": row["input"], "label": row["label"]}) + "\n")
    prompt = {
        "instruction": "Solve the word problem. Explain the arithmetic in one sentence, then end with "
                       "\"So the answer is <number>.\"",
        "input": "Q: {{ question }}\nA:",
        "hinted": "Q: {{ question }}\nHint: the answer is {{ hint }}.\nA:",  # extract --rationalize
        "output": " {{ rationale }} So the answer is {{ label }}.",
        "stop": ["\nQ:", "\n\n"],
        "style": "completion",
        "exemplars": [{"question": problem["input"], "rationale": problem["gold_rationale"],
                       "label": problem["label"]} for problem in exemplars],
    }
    (folder / "prompt.yaml").write_text(yaml.safe_dump(prompt, sort_keys=False, width=200))
    return folder
