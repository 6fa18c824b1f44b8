"""llama_cpp.server's OpenAI-compatible app with request checks in front, run by `stepdistill serve`.

llama-cpp-python answers a malformed JSON body with a 500 (its error handler re-reads the bad body) and a
chat without a user message with a 500 (the template's exception). Clients should get a 400 that says what
is wrong, so this thin ASGI layer checks chat requests before they reach the server; all else passes through.
It also turns off the server's default repeat penalty (see TRAINING_DEFAULTS), so labels are HF's greedy ones.

    python -m stepdistill.deploy.server_app --model FILE.gguf --model_alias NAME [--host H] [--port P] ...
"""

from __future__ import annotations

import argparse
import json

from ..processes import exit_with_parent


def chat_request_problem(body: bytes) -> str | None:
    """What is wrong with a /chat/completions body, or None when the server can take it."""
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"malformed JSON body: {error}"
    if not isinstance(request, dict):
        return "the body must be a JSON object"
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
        return "the student answers the last user message: send at least one message with role 'user'"
    return None


# llama_cpp.server applies repeat_penalty 1.1 unless told otherwise, even at temperature 0: labels reuse the
# question's numbers, so the penalty changed a third of a SmolLM2 student's SVAMP labels against HF's greedy ones.
TRAINING_DEFAULTS = {"repeat_penalty": 1.0}


def with_training_defaults(body: bytes) -> bytes:
    """The request with what the student was evaluated with (no repeat penalty) where the client said nothing."""
    request = json.loads(body)
    missing = {key: value for key, value in TRAINING_DEFAULTS.items() if key not in request}
    return json.dumps(request | missing).encode() if missing else body


class RequestChecks:
    """ASGI middleware: a chat request with a problem gets a 400 JSON error in OpenAI's shape."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            return await self.app(scope, receive, send)
        body = await read_body(receive)
        problem = chat_request_problem(body)
        if problem:
            return await send_problem(send, 400, problem, "invalid_request_error", param="messages")
        return await self.app(scope, Replay(with_training_defaults(body), receive), send)


class Replay:
    """An ASGI receive that gives the body already read, then the client's own messages. A streamed answer
    (sse) waits on receive for the client's disconnect: answering it with the body again at once would spin
    the event loop and no chunk would ever go out."""

    def __init__(self, body: bytes, receive):
        self.body, self.receive = body, receive

    async def __call__(self):
        if self.body is None:
            return await self.receive()
        body, self.body = self.body, None
        return {"type": "http.request", "body": body, "more_body": False}


async def read_body(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def send_json(send, status: int, obj: dict) -> None:
    payload = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def openai_error(problem: str, kind: str, param: str | None = None) -> dict:
    """An error body in OpenAI's shape, which its clients raise with the message."""
    return {"error": {"message": problem, "type": kind, "param": param, "code": None}}


def models_listing(model_name: str) -> dict:
    """The body of GET /v1/models for a server of one model (the fronts answer it themselves)."""
    return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "stepdistill",
                                        "created": 0, "permissions": []}]}


async def send_problem(send, status: int, problem: str, kind: str, param: str | None = None) -> None:
    await send_json(send, status, openai_error(problem, kind, param))


def server_arguments(description: str) -> argparse.ArgumentParser:
    """The flags of this server, which the replica front (router.py) shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True)
    parser.add_argument("--model_alias", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--n_ctx", type=int, default=2048)
    parser.add_argument("--n_threads", type=int, default=1)
    parser.add_argument("--exit_with_parent", action="store_true",
                        help="stop when the process that started this one is gone (no orphaned servers)")
    return parser


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    args = server_arguments(__doc__.splitlines()[0]).parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent()
    model = ModelSettings(model=args.model, model_alias=args.model_alias, n_ctx=args.n_ctx, n_threads=args.n_threads,
                          n_threads_batch=args.n_threads, verbose=False)
    app = create_app(server_settings=ServerSettings(host=args.host, port=args.port), model_settings=[model])
    uvicorn.run(RequestChecks(app), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
