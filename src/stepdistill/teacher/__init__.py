"""The teacher stage: prompts, backends (openai-compatible, local GGUF, replay), the answers cache, and
`stepdistill extract`, which writes the rationales file the student trains on.

    from stepdistill.teacher.extract import ExtractSettings, run_extract
    from stepdistill.teacher.output import read_rationales
"""
