"""CLI for shipping a student: `export` (GGUF) and `serve` (llama.cpp's OpenAI-compatible server).
`eval --endpoint` lives on the student stage's eval command (endpoint_eval.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cliargs import add_settings_arguments, settings_from_args
from .export import ExportSettings
from .serve import ServeSettings


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    info = export(settings_from_args(ExportSettings, args))
    print(json.dumps(info) if args.json else
          f"wrote {info['gguf']} ({info['bytes'] / 1e6:.1f} MB, pre-tokenizer {info['pre_tokenizer']}, "
          f"{info['tokenization_checked_prompts']} prompts tokenized as in training) and {Path(info['modelfile']).name} beside it")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(settings_from_args(ServeSettings, args))


def register(sub) -> None:
    ex = sub.add_parser("export", help="write a trained decoder-only student as a GGUF file for llama.cpp / Ollama")
    ex.add_argument("run", help="a run folder of `stepdistill train`")
    add_settings_arguments(ex, ExportSettings, skip=("run",))
    ex.add_argument("--json", action="store_true", help="print a JSON object")
    ex.set_defaults(func=cmd_export)

    sv = sub.add_parser("serve", help="serve a trained student through llama.cpp's OpenAI-compatible server")
    sv.add_argument("run", help="a run folder of `stepdistill train`")
    add_settings_arguments(sv, ServeSettings, skip=("run",))
    sv.set_defaults(func=cmd_serve)
