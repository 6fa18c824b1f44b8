"""e-SNLI. Completions: `<rationale>\\nAnswer: <label>`."""

from .nli import NLI_PROTOCOL, NLITask


class ESNLI(NLITask):
    name = "esnli"
    parser = "answer_line"
    protocol_template = NLI_PROTOCOL.replace("{name}", "e-SNLI")
