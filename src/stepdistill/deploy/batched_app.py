"""OpenAI-compatible chat server over the batched engine (batched.py), run by `stepdistill serve --engine batched`.

Same routes, answers and request checks (server_app.RequestChecks: 400s for bad bodies, no repeat penalty
unless asked) as the llama-cpp engine, but concurrent requests are decoded together in one llama.cpp context,
and a client that goes away (closes its stream, gives up on a whole answer) cancels its request, freeing its slot.

    python -m stepdistill.deploy.batched_app --model FILE.gguf --model_alias NAME --slots 8 [--n_ctx PER_SLOT] ...
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from ..errors import DataError
from .batched import BatchedEngine, Sequence
from ..processes import exit_with_parent
from .server_app import RequestChecks, models_listing, openai_error, server_arguments


def sampling_options(request: dict) -> dict:
    """The request's sampling fields (llama_cpp.server's defaults where absent); what this engine cannot do is
    refused rather than ignored."""
    if float(request.get("repeat_penalty", 1.0)) != 1.0:
        raise DataError("the batched engine decodes without a repeat penalty: send repeat_penalty 1.0 or none")
    if request.get("n", 1) != 1:
        raise DataError("the batched engine answers one choice per request ('n' must be 1)")
    stop = request.get("stop") or []
    max_tokens, seed = request.get("max_completion_tokens", request.get("max_tokens")), request.get("seed")
    options = {"temperature": float(request.get("temperature", 0.8)), "top_p": float(request.get("top_p", 0.95)),
               "seed": None if seed is None else int(seed), "stop": [stop] if isinstance(stop, str) else list(stop),
               "max_tokens": None if max_tokens is None else int(max_tokens)}
    if options["max_tokens"] is not None and options["max_tokens"] < 1:
        raise DataError(f"max_tokens must be at least 1, got {options['max_tokens']}")
    return options


def problem_response(status: int, message: str, kind: str = "invalid_request_error"):
    from starlette.responses import JSONResponse
    return JSONResponse(openai_error(message, kind), status)


class ChatCompletions:
    """POST /v1/chat/completions: the request becomes a Sequence; the scheduler thread's events come back to
    this event loop through call_soon_threadsafe onto a per-request asyncio queue."""

    def __init__(self, engine: BatchedEngine, model_name: str):
        self.engine, self.model_name = engine, model_name

    async def handle(self, request):
        body = await request.json()
        try:
            options = sampling_options(body)
            prompt, template_stop = self.engine.prompt_ids(body["messages"])
            max_tokens = self.engine.room(prompt, options.pop("max_tokens"))
        except (DataError, ValueError, TypeError) as error:
            return problem_response(400, str(error))
        events, loop = asyncio.Queue(), asyncio.get_running_loop()
        sequence = Sequence(prompt, max_tokens, lambda kind, value: loop.call_soon_threadsafe(
            events.put_nowait, (kind, value)), **(options | {"stop": template_stop + options["stop"]}))
        self.engine.submit(sequence)
        return Answer(Reply(self.model_name, sequence, events), stream=bool(body.get("stream")))


class Reply:
    """One request's answer in OpenAI's shape, whole or as server-sent chunks."""

    def __init__(self, model_name: str, sequence: Sequence, events: asyncio.Queue):
        self.model_name, self.sequence, self.events = model_name, sequence, events
        self.id, self.created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def envelope(self, kind: str, choice: dict) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model_name,
                "choices": [{"index": 0, "logprobs": None} | choice]}

    def usage(self) -> dict:
        prompt, completion = len(self.sequence.prompt), len(self.sequence.tokens)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def whole(self):
        from starlette.responses import JSONResponse
        text = []
        while True:
            kind, value = await self.events.get()
            if kind == "text":
                text.append(value)
            elif kind == "error":
                return problem_response(500, value, "server_error")
            else:
                message = {"role": "assistant", "content": "".join(text)}
                answer = self.envelope("chat.completion", {"message": message, "finish_reason": value})
                return JSONResponse(answer | {"usage": self.usage()})

    async def chunks(self):
        def event(obj) -> str:
            return f"data: {json.dumps(obj)}\n\n"
        yield event(self.envelope("chat.completion.chunk", {"delta": {"role": "assistant"}, "finish_reason": None}))
        while True:
            kind, value = await self.events.get()
            if kind == "text":
                yield event(self.envelope("chat.completion.chunk", {"delta": {"content": value},
                                                                    "finish_reason": None}))
            elif kind == "error":
                yield event(openai_error(value, "server_error"))
                break
            else:
                last = self.envelope("chat.completion.chunk", {"delta": {}, "finish_reason": value})
                yield event(last | {"usage": self.usage()})
                break
        yield "data: [DONE]\n\n"


class Answer:
    """The ASGI response to a submitted request, whole or streamed. However it ends (sent, its client gone, the
    server stopping), its request is cancelled, which frees the slot of a request still decoding for nobody and
    does nothing to one that ended. Under uvicorn (ASGI 2.3) a StreamingResponse stops on the client's
    http.disconnect by cancelling its task, and leaves the chunk generator suspended for the garbage collector
    to close, so the cancel is here, not in the generator. Nobody listens for the disconnect of a whole answer,
    so it listens itself while the answer is decoded."""

    def __init__(self, reply: Reply, stream: bool):
        self.reply, self.stream = reply, stream

    async def __call__(self, scope, receive, send):
        from starlette.responses import StreamingResponse
        try:
            if self.stream:
                response = StreamingResponse(self.reply.chunks(), media_type="text/event-stream")
            else:
                response = await unless_client_leaves(self.reply.whole(), receive)
            if response is not None:
                await response(scope, receive, send)
        finally:
            self.reply.sequence.cancel()


async def client_left(receive) -> None:
    """Returns once the client disconnected (the request body was read already, so nothing else comes)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(work, receive):
    """The result of awaiting `work`, or None when the client disconnects first (uvicorn does not cancel a
    handler whose client went away; it only tells receive)."""
    answer, gone = asyncio.ensure_future(work), asyncio.ensure_future(client_left(receive))
    try:
        await asyncio.wait([answer, gone], return_when=asyncio.FIRST_COMPLETED)
        return answer.result() if answer.done() else None
    finally:
        answer.cancel()
        gone.cancel()


def create_app(engine: BatchedEngine, model_name: str):
    """The Starlette app (routes of llama_cpp.server that clients use, and GET /stats: the engine's counts and
    slots in use) behind the request checks."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def models(request):
        return JSONResponse(models_listing(model_name))

    async def stats(request):
        return JSONResponse(engine.stats())
    routes = [Route("/v1/models", models, methods=["GET"]), Route("/stats", stats, methods=["GET"]),
              Route("/v1/chat/completions", ChatCompletions(engine, model_name).handle, methods=["POST"])]
    return RequestChecks(Starlette(routes=routes))


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = server_arguments(__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=8, help="requests decoded together; --n_ctx is per slot")
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent()
    engine = BatchedEngine(args.model, slots=args.slots, ctx_per_slot=args.n_ctx, threads=args.n_threads)
    uvicorn.run(create_app(engine, args.model_alias), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
