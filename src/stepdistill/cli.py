"""The `stepdistill` command: one sub-command per stage, each parsing its settings and calling one function.

Heavy libraries (torch, transformers) are imported inside the commands that need them, so that
`stepdistill data stats` and `--help` answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from .deploy import commands as deploy_commands
from .errors import DataError
from .experiments import commands as experiment_commands
from .student import commands as student_commands
from .tasks.spec import add_task_options
from .teacher import commands as teacher_commands


def cmd_data_stats(args: argparse.Namespace) -> int:
    from .stats import all_stats, format_table

    from .tasks.spec import task_from_args

    rows = all_stats(args.data_dir, task_from_args(args))
    if args.json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))
    else:
        print(format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepdistill", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect the benchmark data and the teacher's completions")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    stats = data_sub.add_parser("stats", help="examples, teacher outputs, unparsable and teacher accuracy per split")
    stats.add_argument("--data-dir", help="the release's datasets/ folder (default: $STEPDISTILL_DATA, then ./datasets)")
    stats.add_argument("--task", help="one task (default: all four benchmarks)")
    add_task_options(stats)
    stats.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    stats.set_defaults(func=cmd_data_stats)

    for stage in (teacher_commands, student_commands, experiment_commands, deploy_commands):
        stage.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(getattr(args, "interrupted", "interrupted: finished work is saved; run the same command again "
                                            "to resume"), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
