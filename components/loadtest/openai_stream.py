"""One streamed OpenAI-compatible completion, timed the way vLLM's benchmark client times it.

The definitions follow `vllm/benchmarks/lib/endpoint_request_func.py` of the pinned vLLM, so that
`inferfleet bench` and `vllm bench serve` report comparable figures:

- the clock starts just before the request is sent;
- TTFT is the time to the first chunk that carries a choice (the first token's chunk);
- ITL is the list of gaps between successive choice chunks (a chunk may carry several tokens);
- end-to-end latency ends at the last choice chunk (not at `[DONE]` or the usage chunk);
- output tokens come from the usage chunk (`stream_options.include_usage`).

Stricter than vLLM's client, a stream must end with `[DONE]` and every payload must be JSON: a
benchmark that silently counts truncated streams as successes measures the wrong thing.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from components.loadtest.sse import SseParser

Api = Literal["chat", "completions"]
API_PATHS: dict[Api, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
DONE = "[DONE]"


@dataclass(frozen=True)
class StreamRequest:
    """What to ask: a prompt (a user message for chat), how many tokens, and whether to ignore EOS."""

    model: str
    prompt: str
    max_tokens: int
    api: Api = "chat"
    ignore_eos: bool = False
    temperature: float | None = None


@dataclass
class RequestResult:
    """Timings of one request in seconds (perf_counter clock); `error` is None on success."""

    start: float = 0.0
    ttft: float = 0.0
    itl: list[float] = field(default_factory=list)
    latency: float = 0.0
    output_tokens: int = 0
    prompt_tokens: int | None = None
    tokens_from_usage: bool = False
    text: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the request succeeded: only successful requests enter the latency figures."""
        return self.error is None


def request_body(request: StreamRequest) -> dict[str, Any]:
    """The JSON body: streaming with usage, so output tokens are counted by the server's tokenizer."""
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.api == "chat":
        body["messages"] = [{"role": "user", "content": request.prompt}]
    else:
        body["prompt"] = request.prompt
    if request.ignore_eos:
        body["ignore_eos"] = True  # vLLM's extension: generate exactly max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


class StreamRecorder:
    """Turns (arrival time, SSE payload) pairs into a RequestResult; pure, so it is unit-tested.

    `feed` returns False once the stream is over (after `[DONE]` or an error).
    """

    def __init__(self, api: Api, start: float) -> None:
        self.api = api
        self.result = RequestResult(start=start)
        self._last = start
        self._chunks = 0
        self._done = False
        self._text: list[str] = []  # joined once at the end: += on an attribute copies every time

    def feed(self, payload: str, now: float) -> bool:
        """Record one payload received at `now`."""
        if self._done or self.result.error is not None:
            return False
        if payload == DONE:
            self._done = True
            return False
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            return self._fail(f"malformed SSE: data is not JSON: {payload[:80]!r}")
        if not isinstance(data, dict):
            return self._fail(f"malformed SSE: data is not a JSON object: {payload[:80]!r}")
        if "error" in data:
            return self._fail(f"server error in stream: {_error_message(data['error'])}")
        choices = data.get("choices")
        if choices:
            text = _choice_text(choices[0], self.api)
            if self._chunks == 0:
                self.result.ttft = now - self.result.start
            else:
                self.result.itl.append(now - self._last)
            self._chunks += 1
            self._last = now
            self._text.append(text)
        usage = data.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.result.output_tokens = usage["completion_tokens"]
            self.result.tokens_from_usage = True
            if isinstance(usage.get("prompt_tokens"), int):
                self.result.prompt_tokens = usage["prompt_tokens"]
        return True

    def finish(self) -> RequestResult:
        """The result once the body has ended: an error unless the stream was complete."""
        result = self.result
        result.text = "".join(self._text)
        if result.error is None:
            if not self._done:
                result.error = "stream ended before [DONE]"
            elif self._chunks == 0:
                result.error = "empty stream: no token chunk before [DONE]"
        if result.error is None:
            result.latency = self._last - result.start
            if not result.tokens_from_usage:
                result.output_tokens = self._chunks  # no usage chunk: one token per chunk, a lower bound
        return result

    def _fail(self, message: str) -> bool:
        self.result.error = message
        return False


def _choice_text(choice: Any, api: Api) -> str:
    if not isinstance(choice, dict):
        return ""
    if api == "chat":
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
    else:
        content = choice.get("text")
    return content if isinstance(content, str) else ""


def _error_message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


async def stream_completion(
    session: aiohttp.ClientSession, base_url: str, request: StreamRequest, timeout_s: float
) -> RequestResult:
    """Send one streaming request and time it; every failure becomes `error`, never an exception."""
    url = base_url.rstrip("/") + API_PATHS[request.api]
    body = request_body(request)
    start = time.perf_counter()
    recorder = StreamRecorder(request.api, start)
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(url, json=body) as response:
                if response.status != 200:
                    text = (await response.text(errors="replace"))[:200].strip()
                    recorder.result.error = f"HTTP {response.status} from {url}: {text or response.reason}"
                    return recorder.result
                if response.content_type != "text/event-stream":
                    recorder.result.error = f"expected text/event-stream from {url}, got {response.content_type}"
                    return recorder.result
                parser = SseParser()
                async for chunk in response.content.iter_any():
                    now = time.perf_counter()
                    for payload in parser.feed(chunk):
                        if not recorder.feed(payload, now):
                            break
                for payload in parser.finish():
                    recorder.feed(payload, time.perf_counter())
    except TimeoutError:
        recorder.result.error = f"timed out after {timeout_s:g} s"
        return recorder.result
    except aiohttp.ClientConnectorError as error:
        recorder.result.error = f"cannot connect to {base_url}: {error.os_error.strerror or error}"
        return recorder.result
    except aiohttp.ClientError as error:
        recorder.result.error = f"{type(error).__name__}: {error}"
        return recorder.result
    except UnicodeDecodeError:
        recorder.result.error = "malformed SSE: the stream is not UTF-8"
        return recorder.result
    return recorder.finish()
