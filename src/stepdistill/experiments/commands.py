"""CLI for experiments: `sweep`, `report`, `compare` and the offline `demo`."""

from __future__ import annotations

import argparse
import json
import math


def nonzero_points(text: str) -> float:
    """--target: a difference in accuracy points, not 0 (no number of seeds detects no difference)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of accuracy points, got {text!r}") from None
    if value == 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a non-zero, finite number of accuracy points, got {text!r}")
    return abs(value)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import run_sweep

    rows = run_sweep(args.config, args.out, args.data_dir, args.workers, args.set)
    print(f"{len(rows)} finished runs in {args.out}/results.jsonl; next: stepdistill report {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    paths = write_report(args.sweep_dir)
    print((paths["markdown"]).read_text())
    print(f"report: {paths['html']}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_folders, format_comparison, seeds_for_target

    comparison = compare_folders(args.runs)
    if args.json:
        result = comparison.as_dict()
        if args.target is not None:
            result["pairs"] = seeds_for_target(result["pairs"], args.target)
        print(json.dumps(result, indent=2))
    else:
        print(format_comparison(comparison, args.target))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoSettings, run_demo

    run_demo(DemoSettings(out=args.out, examples=args.examples, epochs=args.epochs, rationalize=args.rationalize))
    return 0


def register(sub) -> None:
    sweep = sub.add_parser("sweep", help="train every cell of a config (tasks x methods x fractions x students x seeds)")
    sweep.add_argument("--config", required=True, help="a sweep YAML file (see configs/)")
    sweep.add_argument("--out", required=True, help="sweep folder: runs/, results.jsonl; finished runs are skipped")
    sweep.add_argument("--data-dir", help="the release's datasets/ folder (default $STEPDISTILL_DATA, ./datasets)")
    sweep.add_argument("--workers", type=int, default=1, help="cells trained at once, each in its own process "
                       "(GPUs round-robin, else CPU threads split evenly); each cell's output goes to its train.log")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="change the config for this sweep, e.g. --set 'seeds=[3,4]' --set methods=dss "
                       "--set train.epochs=5 (repeatable; a value is YAML, one value on an axis a one-item list; "
                       "quote brackets for the shell; saved in OUT/config.yaml and OUT/invocations.log). Train settings other than those of the cells "
                       "already in OUT are refused: one folder, one recipe")
    sweep.set_defaults(func=cmd_sweep)

    report = sub.add_parser("report", help="table, plots and an HTML page for a sweep folder")
    report.add_argument("sweep_dir", help="the folder `stepdistill sweep --out` wrote")
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="paired comparison of run folders scored on the same test items")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run folders of `stepdistill train` (2 or more); "
                         "runs that differ only in seed form one arm, arms are paired seed by seed")
    compare.add_argument("--json", action="store_true", help="print JSON instead of tables")
    compare.add_argument("--target", type=nonzero_points, metavar="POINTS",
                         help="plan the next comparison: the seed pairs a true difference of POINTS accuracy "
                         "points needs (80%% power, 5%% two-sided), from the spread of the per-seed differences "
                         "of these runs (2 or more seeds an arm)")
    compare.set_defaults(func=cmd_compare)

    demo = sub.add_parser("demo", help="the whole pipeline offline on the embedded defaults (local teacher, SmolLM2)")
    demo.add_argument("--out", default="demo_out", help="output folder")
    demo.add_argument("--examples", type=int, default=160, help="training examples in the generated sample task")
    demo.add_argument("--epochs", type=float, default=3.0, help="training epochs for each student")
    demo.add_argument("--rationalize", action=argparse.BooleanOptionalAction, default=True,
                      help="ask the teacher again with the right answer as a hint where it was wrong")
    demo.set_defaults(func=cmd_demo)
