"""A scripted OpenAI-compatible server on 127.0.0.1, for the fault tests and the throughput benchmark
(test support code, not part of the package).

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) for /v1/completions and
/v1/chat/completions. Requests are numbered in arrival order; `script[i]` decides what request i gets:

    ok          an answer (after `delay` seconds)        429    Too Many Requests with Retry-After
    500, 503    a server error (any other status too)    malformed   200 with a body that is not JSON
    drop        the connection is cut without a reply     stall  no reply for `stall` seconds, then cut
    null        200 whose text (chat: message content) is JSON null

Requests past the end of the script get `ok`.

It also implements the Files and Batches endpoints that `--batch-submit` uses (upload a file, create a
batch, retrieve it, download a file's content): a batch completes after `batch_polls` retrievals, its
output answering every line as above, and lines whose custom_id is in `batch_errors` go to its error
file. Those calls are logged in `api_log`, not `log`. `answer(prompt)` writes the completion text. Every
request is logged (number, path, prompt, outcome) so tests can check that each input was answered once.
With `think` set, answers carry that reasoning the way reasoning models' servers do: `reasoning_content`
in chat replies, a leading `<think>...</think>` in completions.

    python tests/support/loopback.py --delay 0.2    # prints the base URL, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Callable

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}


def default_answer(prompt: str) -> str:
    """A completion in the generic format, derived from the prompt so that answers are checkable."""
    last = prompt.strip().splitlines()[-2] if prompt.strip().count("\n") else prompt.strip()
    return f" The question was {len(prompt)} characters long. So the answer is {last[-20:].strip()}."


def prompt_text(body: dict) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


@dataclass
class LoopbackServer:
    delay: float = 0.0
    script: list[str] = field(default_factory=list)
    answer: Callable[[str], str] = default_answer
    retry_after: float = 0.2
    stall: float = 30.0
    think: str | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, chosen by the OS at start
    log: list[dict] = field(default_factory=list)  # per request: n, path, prompt, outcome, auth_sha256
    batch_polls: int = 2  # retrievals before a batch is completed
    batch_errors: set = field(default_factory=set)  # custom_ids answered with an error line
    api_log: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of Files/Batches calls
    files: dict = field(default_factory=dict)  # file id -> bytes
    batches: dict = field(default_factory=dict)  # batch id -> batch object

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def answered(self) -> dict[str, int]:
        """prompt -> how many times it got an answer."""
        counts: dict[str, int] = {}
        for entry in self.log:
            if entry["outcome"] == "ok":
                counts[entry["prompt"]] = counts.get(entry["prompt"], 0) + 1
        return counts

    # -- serving -------------------------------------------------------------------------------
    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if ready:
            ready()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> "LoopbackServer":
        """Serve from a background thread (its own event loop) until stop()."""
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(self.serve(started.set))
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass
            finally:
                for task in asyncio.all_tasks(self._loop):
                    task.cancel()
                self._loop.run_until_complete(asyncio.sleep(0))
                self._loop.close()

        self._thread = threading.Thread(target=run, name="loopback-server", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("loopback server did not start")
        return self

    def stop(self) -> None:
        if getattr(self, "_thread", None) is None:
            return
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", 0) or 0))
                if not await self._respond(writer, method, path, headers, raw):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            return  # a client that went away, or the server stopping: nothing to report
        finally:
            writer.close()

    async def _respond(self, writer, method: str, path: str, headers: dict, raw: bytes) -> bool:
        """Answer one request; False when the connection must end."""
        if method == "GET" and path.rstrip("/").endswith("/models"):
            self._send(writer, 200, {"object": "list", "data": [{"id": "loopback", "object": "model"}]})
            return True
        if "/files" in path or "/batches" in path:
            self.api_log.append((method, path))
            status, reply = self._batch_api(method, path, headers, raw)
            if isinstance(reply, bytes):
                self._send_raw(writer, status, reply, "application/octet-stream")
            else:
                self._send(writer, status, reply)
            await writer.drain()
            return True
        body = json.loads(raw or b"{}")
        prompt = prompt_text(body)
        n = len(self.log)
        outcome = self.script[n] if n < len(self.script) else "ok"
        self.log.append({"n": n, "path": path, "prompt": prompt, "outcome": outcome, "time": time.time(),
                         "auth_sha256": hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()})
        if outcome == "drop":
            writer.transport.abort()
            return False
        if outcome == "stall":
            await asyncio.sleep(self.stall)
            writer.transport.abort()
            return False
        if self.delay:
            await asyncio.sleep(self.delay)
        if outcome == "429":
            self._send(writer, 429, {"error": {"message": "slow down", "type": "rate_limit"}},
                       {"Retry-After": f"{self.retry_after:g}"})
        elif outcome.isdigit():
            self._send(writer, int(outcome), {"error": {"message": f"scripted status {outcome}", "type": "error"}})
        elif outcome == "null":
            reply = self._completion(path, body, prompt)
            choice = reply["choices"][0]
            if "message" in choice:
                choice["message"]["content"] = None
            else:
                choice["text"] = None
            self._send(writer, 200, reply)
        elif outcome == "malformed":
            self._send_raw(writer, 200, b'{"id": "cmpl-1", "choices": [{"text": "cut off', "application/json")
        else:
            self._send(writer, 200, self._completion(path, body, prompt))
        await writer.drain()
        return True

    def _completion(self, path: str, body: dict, prompt: str) -> dict:
        text = self.answer(prompt)
        usage = {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": max(1, len(text) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        model = body.get("model", "loopback")
        if path.endswith("/chat/completions"):
            return {"id": "chatcmpl-loopback", "object": "chat.completion", "created": int(time.time()),
                    "model": model, "usage": usage,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text.strip(),
                                             **({"reasoning_content": self.think} if self.think else {})}}]}
        if self.think:
            text = f"<think>{self.think}</think>{text}"
        return {"id": "cmpl-loopback", "object": "text_completion", "created": int(time.time()), "model": model,
                "usage": usage, "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}]}

    # -- Files and Batches -----------------------------------------------------------------------
    def _batch_api(self, method: str, path: str, headers: dict, raw: bytes) -> tuple[int, dict | bytes]:
        parts = path.split("?")[0].rstrip("/").split("/")  # ['', 'v1', 'files', ID, 'content']
        if method == "POST" and parts[-1] == "files":
            return 200, self._upload(headers, raw)
        if method == "GET" and parts[-1] == "content" and parts[-2] in self.files:
            return 200, self.files[parts[-2]]
        if method == "POST" and parts[-1] == "batches":
            return 200, self._create_batch(json.loads(raw))
        if method == "GET" and parts[-2] == "batches" and parts[-1] in self.batches:
            return 200, self._retrieve_batch(parts[-1])
        return 404, {"error": {"message": f"no such resource {path}", "type": "invalid_request_error"}}

    def _upload(self, headers: dict, raw: bytes) -> dict:
        message = BytesParser(policy=email.policy.default).parsebytes(
            f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + raw)
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        content = fields["file"].get_payload(decode=True)
        return self._new_file(content, fields["file"].get_filename() or "upload.jsonl", "batch")

    def _new_file(self, content: bytes, filename: str, purpose: str) -> dict:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = content
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}

    def _create_batch(self, request: dict) -> dict:
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = {"id": batch_id, "object": "batch", "endpoint": request["endpoint"],
                                  "input_file_id": request["input_file_id"], "status": "validating",
                                  "completion_window": request["completion_window"], "created_at": int(time.time()),
                                  "output_file_id": None, "error_file_id": None, "polls": 0,
                                  "metadata": request.get("metadata")}
        return self._public(batch_id)

    def _retrieve_batch(self, batch_id: str) -> dict:
        batch = self.batches[batch_id]
        batch["polls"] += 1
        if batch["status"] != "completed":
            batch["status"] = "in_progress"
            if batch["polls"] >= self.batch_polls:
                self._run_batch(batch)
        return self._public(batch_id)

    def _public(self, batch_id: str) -> dict:
        return {name: value for name, value in self.batches[batch_id].items() if name != "polls"}

    def _run_batch(self, batch: dict) -> None:
        """Answer every request line: successes to the output file, scripted errors to the error file."""
        outputs, errors = [], []
        for number, line in enumerate(self.files[batch["input_file_id"]].decode().splitlines()):
            request = json.loads(line)
            result = {"id": f"batch_req_{number}", "custom_id": request["custom_id"], "error": None,
                      "response": {"status_code": 200, "request_id": f"req_{number}",
                                   "body": self._completion(request["url"], request["body"],
                                                            prompt_text(request["body"]))}}
            if request["custom_id"] in self.batch_errors:
                result["response"] = {"status_code": 400, "request_id": f"req_{number}",
                                      "body": {"error": {"message": "scripted batch error", "type": "invalid_request_error"}}}
                errors.append(result)
            else:
                outputs.append(result)
        as_file = lambda rows: "".join(json.dumps(row) + "\n" for row in rows).encode()  # noqa: E731
        batch["output_file_id"] = self._new_file(as_file(outputs), "output.jsonl", "batch_output")["id"] if outputs else None
        batch["error_file_id"] = self._new_file(as_file(errors), "errors.jsonl", "batch_output")["id"] if errors else None
        batch["status"] = "completed"
        batch["request_counts"] = {"total": len(outputs) + len(errors), "completed": len(outputs), "failed": len(errors)}

    def _send(self, writer, status: int, obj: dict, extra: dict | None = None) -> None:
        self._send_raw(writer, status, json.dumps(obj).encode(), "application/json", extra)

    @staticmethod
    def _send_raw(writer, status: int, payload: bytes, content_type: str, extra: dict | None = None) -> None:
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"Content-Type: {content_type}",
                f"Content-Length: {len(payload)}", "Connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)


def main() -> None:
    parser = argparse.ArgumentParser(description="scripted OpenAI-compatible loopback server")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--script", nargs="*", default=[], help="outcomes of the first requests (see module doc)")
    args = parser.parse_args()
    server = LoopbackServer(delay=args.delay, script=args.script, port=args.port)
    try:
        asyncio.run(server.serve(lambda: print(server.url, flush=True)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
