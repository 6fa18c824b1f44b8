"""e-SNLI. Completions: `<rationale>\\nAnswer: <label>`."""

from .nli import NLI_PROTOCOL, NLITask


class ESNLI(NLITask):
    name = "esnli"
    parser = "answer_line"
    protocol = NLI_PROTOCOL.format(name="e-SNLI")
