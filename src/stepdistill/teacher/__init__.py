"""The teacher stage: prompts, backends (openai-compatible with replicas, local GGUF, replay), the answers
cache, and `stepdistill extract`, which writes the rationales file the student trains on; at scale, the
OpenAI Batch API's JSONL in and out (batchfiles.py, batchapi.py), token counts and prices (tokens.py, cost.py).

    from stepdistill.teacher.extract import ExtractSettings, run_extract
    from stepdistill.teacher.output import read_rationales
"""
