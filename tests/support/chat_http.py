"""Raw HTTP chat requests to a served student, for tests that send bodies the openai client would not."""

import json
import urllib.error
import urllib.request


def post_chat(base_url: str, body: bytes) -> tuple[int, dict]:
    """POST a raw body to /chat/completions; the status and the JSON reply, error replies included."""
    request = urllib.request.Request(f"{base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
