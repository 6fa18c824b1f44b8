"""`stepdistill extract` on the command line: parse ExtractSettings, run the stage, print what it did."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cliargs import add_settings_arguments, settings_from_args
from ..tasks.spec import add_task_options, task_from_args
from . import extract
from .extract import ExtractSettings, run_extract
from .output import MANIFEST_FILE, RATIONALES_FILE


def describe(manifest: dict) -> str:
    acc = manifest["teacher_accuracy"]
    lines = [f"{manifest['inputs']} inputs x {manifest['samples']} sample(s): {manifest['parsed']} parsed, "
             f"{manifest['kept']} kept (--keep {manifest['keep']})"
             + (f", teacher accuracy {acc:.2f}%" if acc is not None else ""),
             f"requests: {manifest['cache_hits']} from cache, {manifest['answered']} new "
             f"({manifest['requests_sent']} sent, {manifest['retries']} retries), {manifest['failed']} failed, "
             f"{manifest['not_sent']} not sent; tokens {manifest['tokens']['total']:,}; {manifest['seconds']:.1f} s"]
    hinted = manifest.get("rationalize")
    if hinted:
        lines.append(f"rationalize: {hinted['tried']} wrong or unparsable answers asked again with the gold label "
                     f"as a hint, {hinted['kept']} parsed back to gold and kept (examples in {hinted['examples_file']})")
    if manifest["dropped"]:
        lines.append("dropped: " + ", ".join(f"{n} {why}" for why, n in manifest["dropped"].items()))
    if manifest.get("cost"):
        cost = manifest["cost"]
        cached = cost["all_runs_usd"]
        lines.append(f"cost: ${cost['run_usd']:,.4f} this run"
                     + (f", ${cached:,.4f} for every answer cached" if cached is not None else ""))
    if manifest.get("completions_cut"):
        lines.append(f"{manifest['completions_cut']} completions were longer than --max-completion-chars and "
                     "were stored cut")
    if manifest["failed"] or manifest["not_sent"]:
        lines.append("run the same command again to retry the failed or unsent requests (answers are cached)")
    return "\n".join(lines)


def describe_batch(report: dict) -> str:
    """--estimate, --export-requests and --import-results: what was counted, written or read."""
    if report["mode"] == "recover":
        return (f"recovered {report['answers_recovered']} answers into {report['cache']} (the damaged file is "
                f"{report['damaged_copy']}); run the same command without --recover-cache to ask for the rest")
    if report["mode"] == "import":
        lines = [f"{report['lines']} result lines: {report['imported']} answers imported, {report['already_cached']} "
                 f"already cached, {report['errors']} error lines (the next run asks again), {report['unknown']} "
                 f"unknown custom_ids, {report['duplicates']} duplicated lines"
                 + (f"; {report['cut']} answers cut to --max-completion-chars" if report["cut"] else "")]
        lines += [f"duplicated: {entry['first_duplicate']}" for entry in report["files"] if entry["first_duplicate"]]
        return "\n".join(lines + ["now run the same extract command without --import-results to write the rationales"])
    tokens, cost = report["estimated_tokens"], report["estimated_cost_usd"]
    head = (f"wrote {report['requests']} requests in {report['shards']} shard(s) to {report['folder']} (export.json) "
            if report["mode"] == "export" else f"{report['requests']} requests not yet cached ")
    return (head + f"({report['already_cached']} cached): about {tokens['prompt']:,} prompt + {tokens['completion']:,} "
            f"completion tokens ({report['completion_tokens_each']} each) = {tokens['total']:,}; prompt tokens by "
            f"{report['tokenizer']}; cost " + (f"${cost:,.4f}" if cost is not None else "unknown (give --price-in/--price-out)"))


def cmd_extract(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(ExtractSettings, args, task=task_from_args(args))
    with logging_redirect_tqdm():
        manifest = run_extract(settings)
    if "mode" in manifest:
        print(describe_batch(manifest))
        return 0
    print(f"wrote {Path(settings.out) / RATIONALES_FILE} and {MANIFEST_FILE}")
    print(describe(manifest))
    return 1 if manifest["failed"] else 0  # so that `extract && train` does not go on with missing answers


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract", help="ask a teacher LLM for a rationale and a label per input (resumable, cached)",
        description=extract.__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(line.strip() for line in extract.__doc__.split("\n\n")[2].splitlines()))
    add_settings_arguments(parser, ExtractSettings)
    add_task_options(parser)
    parser.set_defaults(func=cmd_extract)
