"""ANLI round 1. Completions: `<rationale> So the answer is <label>.`"""

from .nli import NLI_PROTOCOL, NLITask


class ANLI1(NLITask):
    name = "anli1"
    parser = "so_the_answer_is"
    id_field = "uid"
    protocol_template = NLI_PROTOCOL.replace("{name}", "ANLI R1")
