"""Teacher-free SVAMP rationales that only pick the quantities: a test of why dss gains on distractor questions.

    PYTHONPATH=src .venv/bin/python benchmarks/restated_rationales.py runs/rationales/svamp-restated
    PYTHONPATH=src .venv/bin/python benchmarks/restated_rationales.py --all-numbers runs/rationales/svamp-restated-all
    PYTHONPATH=src .venv/bin/python benchmarks/restated_rationales.py --copy runs/rationales/svamp-copy
    stepdistill train --task svamp --method dss --rationales runs/rationales/svamp-restated ...

The dss student's gain over standard finetuning sits on test questions holding a number their gold equation
does not use (BENCHMARKS.md, "where dss gains"). The hypothesis: the rationale task is practice in choosing
the quantities a question needs, not in arithmetic. This writes, for every SVAMP train input, a rationale
made only of that choice, from the gold equation (no teacher): the question's sentences that hold a number
the gold uses, then "The question needs 84 and 2." It states no
operation and no result. If dss trained on these gains on distractor questions as the released PaLM rationales
do, the hypothesis holds; if it does no better than standard finetuning there, the gain comes from elsewhere.
`--all-numbers` writes the control: every sentence with a number, then "The question gives 84, 2 and 5." (every
number, distractors included), the same kind of text with the choice taken out. If the control gains as
much, what helps is a second task on the question's own words, not the choice. `--copy` is the floor of that
ladder: the rationale is the question itself, word for word, so the second task carries nothing the input does
not; if it gains too, the rationale's content does not matter for this student.

The folder is in `stepdistill extract`'s layout (rationales.jsonl + manifest.json, every row kept), so
`train --rationales` reads it as it reads a teacher's. Analysis for issue 13, not part of the package.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from stepdistill.arithmetic import numbers_in
from stepdistill.tasks import get_task

NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?<!,)")


def sentences(question: str) -> list[str]:
    """The question's sentences in order (SVAMP ends its body without a full stop, before a line break)."""
    return [part.strip() for part in re.split(r"(?<=[.?!])\s+|\n+", question) if part.strip()]


def written_numbers(question: str, values: frozenset[float]) -> list[str]:
    """The question's numbers with one of these values, as the question writes them, in its order, once each."""
    seen: list[str] = []
    for written in NUMBER.findall(question):
        if numbers_in(written) <= values and written not in seen:
            seen.append(written)
    return seen


def restated_rationale(question: str, gold: str, all_numbers: bool = False) -> str:
    """The question's sentences that hold a needed number, then the needed numbers named; with all_numbers
    (the control), every sentence with a number, then every number."""
    wanted = numbers_in(question) if all_numbers else numbers_in(gold)
    numbers = written_numbers(question, wanted)
    parts = [part for part in sentences(question) if numbers_in(part) & wanted]
    named = " and ".join([", ".join(numbers[:-1]), numbers[-1]] if len(numbers) > 2 else numbers)
    facts = " ".join(part if part.endswith((".", "?", "!")) else part + "." for part in parts)
    verb = "gives" if all_numbers else "needs"
    return f"{facts} The question {verb} {named}." if numbers else facts


MODES = {  # mode -> what its rationales hold (the manifest and the printout say it)
    "needed": "the quantities the gold equation uses",  # the test
    "all": "every number of the question",  # its control
    "copy": "the question itself, word for word",  # the floor
}


def rationale_for(question: str, gold: str, mode: str) -> str:
    """The rationale of one of MODES."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    if mode == "copy":
        return question
    return restated_rationale(question, gold, all_numbers=mode == "all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="the folder to write (rationales.jsonl + manifest.json)")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--all-numbers", dest="mode", action="store_const", const="all",
                       help="the control: every number, no choice")
    modes.add_argument("--copy", dest="mode", action="store_const", const="copy",
                       help="the floor: the question itself as the rationale")
    parser.set_defaults(mode="needed")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    examples = get_task("svamp").load("train", with_teacher=False)
    rows = [{"id": ex.id, "input": ex.input, "label": ex.label,
             "rationale": rationale_for(ex.input, ex.label, args.mode),
             "teacher_label": ex.label, "completion": None, "reasoning": None, "parse_error": None,
             "correct": True, "kept": True, "sample": 0, "request_error": None} for ex in examples]
    with open(out / "rationales.jsonl", "w") as stream:
        stream.writelines(json.dumps(row) + "\n" for row in rows)
    what = MODES[args.mode]
    manifest = {"stage": "extract", "task": "svamp", "split": "train", "teacher": "none",
                "model": f"restated: {what} (benchmarks/restated_rationales.py)",
                "keep": "all", "inputs": len(rows), "rows": len(rows), "parsed": len(rows), "kept": len(rows)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{out}: {len(rows)} rationales: {what}; first three:")
    for row in rows[:3]:
        print(f"  {row['input']!r}\n    -> {row['rationale']}")


if __name__ == "__main__":
    main()
