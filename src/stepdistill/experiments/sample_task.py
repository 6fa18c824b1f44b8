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
    a, b = rng.randint(2, 30), rng.randint(2, 12)
    if kind == "add":
        q = f"{name} has {a} {item}. {name} buys {b} more. How many {item} does {name} have now?"
        r, y = f"{name} starts with {a} {item} and buys {b} more, so {a} + {b} = {a + b}.", a + b
    elif kind == "sub":
        a = a + b
        q = f"{name} had {a} {item} and gave {b} to a friend. How many {item} does {name} have left?"
        r, y = f"{name} had {a} {item} and gave away {b}, so {a} - {b} = {a - b}.", a - b
    elif kind == "mul":
        q = f"{name} fills {b} boxes with {a} {item} in each box. How many {item} are there in all?"
        r, y = f"There are {b} boxes of {a} {item} each, so {b} * {a} = {a * b}.", a * b
    else:
        q = f"{name} shares {a * b} {item} equally among {b} friends. How many {item} does each friend get?"
        r, y = f"{a * b} {item} split among {b} friends is {a * b} / {b} = {a}.", a
    return {"input": q, "label": str(y), "gold_rationale": r}


def write_sample_task(folder: str | Path, n_train: int = 160, n_valid: int = 40, n_test: int = 80,
                      seed: int = 0) -> Path:
    """train/valid/test.jsonl and prompt.yaml (6 exemplars drawn apart from the three splits)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seen: set[str] = set()
    problems = []
    while len(problems) < n_train + n_valid + n_test + 6:
        p = make_problem(rng)
        if p["input"] not in seen:  # no input in two splits
            seen.add(p["input"])
            problems.append(p)
    exemplars, rest = problems[:6], problems[6:]
    splits = {"train": rest[:n_train], "valid": rest[n_train:n_train + n_valid], "test": rest[n_train + n_valid:]}
    for split, rows in splits.items():
        with (folder / f"{split}.jsonl").open("w") as f:
            for i, row in enumerate(rows):
                f.write(json.dumps({"id": f"{split}-{i}", "input": row["input"], "label": row["label"]}) + "\n")
    prompt = {
        "instruction": "Solve the word problem. Explain the arithmetic in one sentence, then end with "
                       "\"So the answer is <number>.\"",
        "input": "Q: {{ question }}\nA:",
        "hinted": "Q: {{ question }}\nHint: the answer is {{ hint }}.\nA:",  # extract --rationalize
        "output": " {{ rationale }} So the answer is {{ label }}.",
        "stop": ["\nQ:", "\n\n"],
        "style": "completion",
        "exemplars": [{"question": e["input"], "rationale": e["gold_rationale"], "label": e["label"]} for e in exemplars],
    }
    (folder / "prompt.yaml").write_text(yaml.safe_dump(prompt, sort_keys=False, width=200))
    return folder
