"""One streamed OpenAI-compatible completion, timed the way vLLM's benchmark client times it.

The definitions follow `vllm/benchmarks/lib/endpoint_request_func.py` of the pinned vLLM, so that
`inferfleet bench` and `vllm bench serve` report comparable figures:

- the clock starts just before the request is sent;
- a chunk's time is that of the network read that completed it (taken as the event loop reads the
  socket, stream_client.py; vLLM's client reads the clock when its task next runs, which at hundreds
  of streams is later by the other streams' work queued ahead of it);
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

from components.loadtest.sse import SseParser
from components.loadtest.stream_client import HttpError, StreamClient, StreamedResponse

Api = Literal["chat", "completions"]
API_PATHS: dict[Api, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
DONE = "[DONE]"
# Stored reads replayed per turn of the event loop: a finished stream's parsing (~10-20 us a read)
# is done in slices, so that other streams' reads arriving meanwhile are stamped within ~0.2 ms.
REPLAY_SLICE = 16


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
    read_delay: float = 0.0
    """The longest its bytes waited in the socket before the client read them (StreamedResponse.read_delay)."""

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

    `feed` takes one payload, `feed_read` one network read's raw bytes (through an SSE parser); both
    return False once the stream is over (after `[DONE]` or an error).
    """

    def __init__(self, api: Api, start: float) -> None:
        self.api = api
        self.result = RequestResult(start=start)
        self._last = start
        self._chunks = 0
        self._done = False
        self._text: list[str] = []  # joined once at the end: += on an attribute copies every time
        self._sse = SseParser()

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

    def feed_read(self, data: bytes, now: float) -> bool:
        """Record the payloads of every SSE event that one network read's bytes complete, at `now`.

        Raises UnicodeDecodeError on bytes that are not UTF-8 (the caller turns it into `error`).
        """
        for payload in self._sse.feed(data):
            if not self.feed(payload, now):
                return False
        return True

    def end_of_body(self, now: float) -> None:
        """The body has ended: a last event the server did not close with a blank line counts too."""
        for payload in self._sse.finish():
            if not self.feed(payload, now):
                break

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


@dataclass(frozen=True)
class Received:
    """One request's response as it came off the network, not yet parsed, with the recorder that times it;
    `response` is None when no stream began (the recorder's result says why)."""

    recorder: StreamRecorder
    response: StreamedResponse | None


async def send(client: StreamClient, request: StreamRequest, timeout_s: float) -> Received:
    """Send one streaming request and wait until its response has ended; every failure is recorded, never raised.

    The clock starts just before the request bytes are written; each read is stamped as the event loop
    takes it (StreamClient). Nothing is parsed here, so a caller that holds a concurrency slot for the
    request gives it back as soon as the stream ends, as vLLM's client does (it parses as it reads): were
    the slot held through the parsing, the next request of a closed loop would go out late, after the
    engine has started a step without it.
    """
    url = client.base_url + API_PATHS[request.api]
    wire = client.encode_post(API_PATHS[request.api], json.dumps(request_body(request)).encode())
    recorder = StreamRecorder(request.api, time.perf_counter())
    failed = Received(recorder, None)
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.post(wire)
    except TimeoutError:
        recorder.result.error = f"timed out after {timeout_s:g} s"
        return failed
    except (HttpError, ConnectionResetError) as error:
        recorder.result.error = f"broken response from {url}: {error}"
        return failed
    except OSError as error:
        recorder.result.error = f"cannot connect to {client.base_url}: {error.strerror or error}"
        return failed
    if response.status != 200:
        text = response.body().decode("utf-8", errors="replace")[:200].strip()
        recorder.result.error = f"HTTP {response.status} from {url}: {text or response.reason}"
        return failed
    if response.content_type != "text/event-stream":
        recorder.result.error = f"expected text/event-stream from {url}, got {response.content_type}"
        return failed
    return Received(recorder, response)


async def timed(received: Received) -> RequestResult:
    """The timings of a received stream. Its reads are replayed in slices of REPLAY_SLICE per turn of the
    loop, so no other stream's token waits behind this one's JSON."""
    recorder, response = received.recorder, received.response
    if response is None:
        return recorder.result
    recorder.result.read_delay = response.read_delay
    try:
        for index, (piece, now) in enumerate(zip(response.pieces, response.stamps, strict=True)):
            if index and index % REPLAY_SLICE == 0:
                await asyncio.sleep(0)  # let the loop read (and stamp) other streams' tokens
            if not recorder.feed_read(piece, now):
                break
        else:
            recorder.end_of_body(response.stamps[-1] if response.stamps else recorder.result.start)
    except UnicodeDecodeError:
        recorder.result.error = "malformed SSE: the stream is not UTF-8"
        return recorder.result
    return recorder.finish()


async def stream_completion(client: StreamClient, request: StreamRequest, timeout_s: float) -> RequestResult:
    """Send one streaming request and time it (`send`, then `timed`); every failure becomes `error`."""
    return await timed(await send(client, request, timeout_s))
