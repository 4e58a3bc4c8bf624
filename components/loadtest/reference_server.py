"""A streaming server on a known schedule: the truth `inferfleet bench` is measured against.

A benchmark client is right when it reports what the server did. Against a real engine nobody knows
what that was, so this server makes it up in advance and writes it down: each completion request gets
its first token `ttft` after the server has read it, then one token every `itl`, `max_tokens` tokens in
all (as vLLM does with `ignore_eos`), in OpenAI's streaming wire format (chat or completions, a usage
chunk, `data: [DONE]`), framed either as HTTP/1.1 chunks (what vLLM sends) or with a Content-Length.
`ttft` and `itl` are drawn per request within ±`spread` of the configured values, from `seed`, so
percentiles have a spread to get right.

Every write is stamped with the server's clock (`time.perf_counter`, CLOCK_MONOTONIC on Linux) and
kept per request (`GET /reference/records`), so the truth is what the server actually did, not what it
meant to do: on a busy machine the server's own timers wake late, and that lateness is not the
client's error. `true_figures` turns the records into the figures a perfect client would report
(stats.figures, the same definitions), and `errors` compares a client's report with them.

Plain asyncio streams, one timer per token: cheap enough for hundreds of streams on one core. Run it
in its own process (`python -m components.loadtest.reference_server`, or `ReferenceServer`), so the
client under test does not share its event loop or its interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from components.loadtest import arrival, runtime
from components.loadtest.stats import Distribution, Figures, figures

Framing = Literal["chunked", "length"]
MODEL = "reference"
DONE_EVENT = b"data: [DONE]\n\n"
RECORDS_PATH = "/reference/records"
RESET_PATH = "/reference/reset"
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Schedule:
    """When tokens go out: per request, TTFT and ITL drawn uniformly within ±spread of these."""

    ttft_ms: float = 100.0
    itl_ms: float = 20.0
    spread: float = 0.0
    framing: Framing = "chunked"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ttft_ms < 0 or self.itl_ms < 0 or not 0 <= self.spread < 1:
            raise ValueError("ttft_ms and itl_ms must be >= 0 and spread in [0, 1)")

    def draw(self, index: int) -> tuple[float, float]:
        """(ttft, itl) in seconds for the index-th request: reproducible, whatever else arrives meanwhile."""
        rng = random.Random(self.seed * 1_000_003 + index)
        ttft = self.ttft_ms * (1 + self.spread * (2 * rng.random() - 1))
        itl = self.itl_ms * (1 + self.spread * (2 * rng.random() - 1))
        return ttft / 1000, itl / 1000


@dataclass
class Record:
    """What the server did for one completion request: when it had read it, and when each token went out."""

    index: int
    connection: int
    api: str
    received: float
    """When the request's last byte arrived (the kernel's receive stamp, on the perf_counter clock)."""
    ttft_s: float
    itl_s: float
    prompt_tokens: int
    kernel_stamp: bool
    """Whether `received` is the kernel's receive stamp (Linux) rather than the time the server read the request."""
    writes: list[float] = field(default_factory=list)


class _Connection:
    """One keep-alive connection on a raw non-blocking socket: requests are framed as bytes arrive, one at a
    time (no pipelining), and each is stamped with the kernel's receive time of the read that completed it.

    Why the kernel's time (arrival.py): a server stamps a request when its event loop gets to it, which on a
    busy machine (or in a burst of 256 arrivals) is milliseconds after the bytes arrived, and the truth would
    then leave that wait out of TTFT while the client, rightly, counts it.
    """

    def __init__(self, handler: ReferenceHandler, sock: socket.socket, number: int) -> None:
        self.handler = handler
        self.sock = sock
        self.number = number
        self.closed = False
        self._buffer = b""
        self._out = b""
        self._busy = False
        self._loop = asyncio.get_running_loop()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        arrival.enable(sock)
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            read = arrival.receive(self.sock)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not read.data:
            self.close()
            return
        self._buffer += read.data
        self._frame(read.arrived, read.kernel)

    def _frame(self, arrived: float, kernel_stamp: bool) -> None:
        if self._busy:
            return
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._refuse(_response(431, b"request head too large", "text/plain"))
            return
        try:
            method, path, headers = _parse_head(self._buffer[:head_end])
            length = int(headers.get("content-length", "0"))
        except ValueError:
            self._refuse(_response(400, b"bad request", "text/plain"))
            return
        if length > MAX_BODY_BYTES:
            self._refuse(_response(413, b"request body too large", "text/plain"))
            return
        end = head_end + 4 + length
        if len(self._buffer) < end:
            return
        body, self._buffer = self._buffer[head_end + 4 : end], self._buffer[end:]
        if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            self._busy = True
            self.handler.complete(self, path, body, arrived, kernel_stamp)
        else:
            self.write(self.handler.other(method, path))

    def write(self, data: bytes) -> bool:
        """Send now, or queue behind what the socket has not taken yet; False once the client has gone."""
        if self.closed:
            return False
        if not self._out:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close()
                return False
            data = data[sent:]
            if data:
                self._loop.add_writer(self.sock.fileno(), self._flush)
        self._out += data
        return True

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        self._out = self._out[sent:]
        if not self._out:
            self._loop.remove_writer(self.sock.fileno())

    def response_done(self) -> None:
        self._busy = False
        if self._buffer and not self.closed:
            self._frame(time.perf_counter(), False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self.sock.fileno())
            self._loop.remove_writer(self.sock.fileno())
            self.sock.close()

    def _refuse(self, response: bytes) -> None:
        self.write(response)
        self.close()


class _Response:
    """One streamed completion: token k goes out at received + ttft + k * itl, each write scheduling the next."""

    def __init__(self, connection: _Connection, record: Record, tokens: int, framing: Framing) -> None:
        self.connection = connection
        self.record = record
        self.tokens = tokens
        self.chunked = framing == "chunked"

    def start(self) -> None:
        api, tokens = self.record.api, self.tokens
        first = _event(_token(api, f"#{self.record.index} "))  # names the record: a client's result is matched by it
        usage = {"prompt_tokens": self.record.prompt_tokens, "completion_tokens": tokens,
                 "total_tokens": self.record.prompt_tokens + tokens}
        self.first = _chunk(first) if self.chunked else first
        self.closing = [_event({"id": "ref", "choices": [], "usage": usage}), DONE_EVENT]
        if self.chunked:
            head = _head(200, "text/event-stream", "Transfer-Encoding: chunked")
        else:
            length = len(first) + sum(len(_token_event(api, k)) for k in range(1, tokens)) + sum(map(len, self.closing))
            head = _head(200, "text/event-stream", f"Content-Length: {length}")
        self.connection.write(head)  # a streaming server answers at once; the tokens follow on schedule
        self._schedule(0)

    def _schedule(self, k: int) -> None:
        due = self.record.received + self.record.ttft_s + k * self.record.itl_s
        asyncio.get_running_loop().call_later(max(0.0, due - time.perf_counter()), self._write, k)

    def _write(self, k: int) -> None:
        piece = self.first if k == 0 else _token_chunk(self.record.api, k) if self.chunked else _token_event(self.record.api, k)
        if not self.connection.write(piece):
            return  # the client has gone: nothing more to send
        self.record.writes.append(time.perf_counter())
        if k + 1 < self.tokens:
            self._schedule(k + 1)
            return
        tail = b"".join(_chunk(e) for e in self.closing) + b"0\r\n\r\n" if self.chunked else b"".join(self.closing)
        self.connection.write(tail)  # usage and [DONE] right after the last token, as vLLM sends them
        self.connection.response_done()


class ReferenceHandler:
    """What the server answers, and the records of what it did."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.records: list[Record] = []
        self.connections = 0

    def complete(self, connection: _Connection, path: str, body: bytes, received: float, kernel_stamp: bool) -> None:
        """Stream one completion on schedule: the head at once, then each token when it is due, counted from
        `received` (when the request arrived). The work done here is kept small (the head, one timer; each
        token's bytes are made when it is sent, the same bytes for every stream encoded once)."""
        request = json.loads(body)
        api = "chat" if path.endswith("chat/completions") else "completions"
        prompt = request["messages"][-1]["content"] if api == "chat" else request["prompt"]
        index = len(self.records)
        ttft, itl = self.schedule.draw(index)
        record = Record(index, connection.number, api, received, ttft, itl, len(str(prompt).split()), kernel_stamp)
        self.records.append(record)
        _Response(connection, record, max(1, int(request.get("max_tokens") or 16)), self.schedule.framing).start()

    def other(self, method: str, path: str) -> bytes:
        if method == "GET" and path == "/health":
            return _response(200, b"", "text/plain")
        if method == "GET" and path == "/v1/models":
            return _json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        if method == "GET" and path == RECORDS_PATH:
            return _json_response({"connections": self.connections, "records": [asdict(r) for r in self.records]})
        if method == "POST" and path == RESET_PATH:
            self.records.clear()
            return _json_response({"reset": True})
        return _response(404, b"not found", "text/plain")


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _token(api: str, text: str) -> dict[str, Any]:
    if api == "chat":
        return {"id": "ref", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
    return {"id": "ref", "object": "text_completion", "choices": [{"index": 0, "text": text}]}


@functools.cache
def _token_event(api: str, k: int) -> bytes:
    """The k-th token's SSE event, encoded once: the server's work per token is a write, not a json.dumps."""
    return _event(_token(api, f"t{k} "))


@functools.cache
def _token_chunk(api: str, k: int) -> bytes:
    return _chunk(_token_event(api, k))


def record_index(text: str) -> int:
    """The index of the record behind a response, from its text (the first token names it)."""
    return int(text.split(" ", 1)[0].lstrip("#"))


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(status: int, content_type: str, framing: str) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large", 431: "Request Header Fields Too Large"}[status]
    return f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


def _response(status: int, body: bytes, content_type: str) -> bytes:
    return _head(status, content_type, f"Content-Length: {len(body)}") + body


def _json_response(data: dict[str, Any]) -> bytes:
    return _response(200, json.dumps(data).encode(), "application/json")


# --- the truth a client is compared with ---------------------------------------------------------


@dataclass(frozen=True)
class _TrueResult:
    """A record seen as a perfect client would have timed it (stats.Timed): from the read to each write."""

    ttft: float
    itl: list[float]
    latency: float
    output_tokens: int
    prompt_tokens: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return True


def true_figures(records: Sequence[dict[str, Any]]) -> Figures:
    """The figures of the requests the records describe, from the server's own stamps (stats.figures).

    The duration runs from the first request read to the last token written: what a client's wall clock
    sees less the request path of the first request and the response path of the last.
    """
    if not records:
        raise ValueError("no records: the server answered no completion request")
    results = []
    for record in records:
        writes = record["writes"]
        if not writes:
            raise ValueError(f"request {record['index']} got no token: the run ended before it was answered")
        results.append(_TrueResult(
            ttft=writes[0] - record["received"],
            itl=[b - a for a, b in zip(writes, writes[1:])],
            latency=writes[-1] - record["received"],
            output_tokens=len(writes),
            prompt_tokens=record["prompt_tokens"],
        ))
    duration = max(r["writes"][-1] for r in records) - min(r["received"] for r in records)
    return figures(results, duration)


@dataclass(frozen=True)
class Tolerance:
    """How far a reported latency may be from the truth: the larger of an absolute and a relative bound."""

    absolute_ms: float = 2.0
    relative: float = 0.05

    def bound_ms(self, truth_ms: float) -> float:
        return max(self.absolute_ms, self.relative * truth_ms)


STATED_TOLERANCE = Tolerance(absolute_ms=2.0, relative=0.05)
"""What `inferfleet bench` is held to against this server, for every latency statistic (tests and README)."""
LATENCIES = ("ttft_ms", "itl_ms", "e2e_ms")
STATISTICS = ("mean", "p50", "p90", "p99")


def errors(reported: dict[str, Any], truth: Figures) -> dict[str, float]:
    """Reported minus true, per latency statistic (ms) and relative for the rates: `inferfleet bench --json`'s
    level entry, or any report with the same keys, against `true_figures`."""
    out: dict[str, float] = {}
    for latency in LATENCIES:
        true: Distribution = getattr(truth, latency)
        for statistic in STATISTICS:
            if statistic in reported.get(latency, {}):
                out[f"{latency}.{statistic}"] = reported[latency][statistic] - getattr(true, statistic)
    for rate in ("output_tokens_per_s", "requests_per_s"):
        if rate in reported:
            out[rate] = reported[rate] / getattr(truth, rate) - 1
    return out


def outside(reported: dict[str, Any], truth: Figures, tolerance: Tolerance) -> list[str]:
    """Each latency statistic off by more than the tolerance, and each rate off by more than its relative part."""
    problems = []
    for name, error in errors(reported, truth).items():
        if "." in name:
            latency, statistic = name.split(".")
            true_ms = getattr(getattr(truth, latency), statistic)
            if abs(error) > tolerance.bound_ms(true_ms):
                problems.append(f"{name}: reported {true_ms + error:.2f} ms, true {true_ms:.2f} ms (bound ±{tolerance.bound_ms(true_ms):.2f})")
        elif abs(error) > tolerance.relative:
            problems.append(f"{name}: {error:+.1%} off the truth (bound ±{tolerance.relative:.0%})")
    return problems


# --- running it ---------------------------------------------------------------------------------


class ReferenceServer:
    """The server in its own process on a loopback port; `records()` fetches what it did so far."""

    def __init__(self, schedule: Schedule, *, python: str = sys.executable) -> None:
        argv = [python, "-m", "components.loadtest.reference_server", "--ttft-ms", str(schedule.ttft_ms),
                "--itl-ms", str(schedule.itl_ms), "--spread", str(schedule.spread), "--framing", schedule.framing,
                "--seed", str(schedule.seed)]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the reference server did not start: {line!r}")
        self.url = line.split()[1]

    def records(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + RECORDS_PATH, timeout=30) as response:
            data: dict[str, Any] = json.load(response)
            return data

    def reset(self) -> None:
        request = urllib.request.Request(self.url + RESET_PATH, data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> ReferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve(schedule: Schedule, host: str, port: int) -> None:
    """Accept connections until cancelled (the process is terminated)."""
    handler = ReferenceHandler(schedule)
    listener = socket.create_server((host, port), backlog=4096)
    listener.setblocking(False)
    arrival.enable(listener)  # inherited by accepted sockets: a request that arrives before its accept is stamped too
    loop = asyncio.get_running_loop()

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            handler.connections += 1
            _Connection(handler, sock, handler.connections)

    loop.add_reader(listener.fileno(), accept)
    bound_host, bound_port = listener.getsockname()[:2]
    print(f"listening http://{bound_host}:{bound_port}", flush=True)
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed as `listening URL`)")
    parser.add_argument("--ttft-ms", type=float, default=100.0)
    parser.add_argument("--itl-ms", type=float, default=20.0)
    parser.add_argument("--spread", type=float, default=0.0, help="per request, TTFT and ITL within ±spread (0..1)")
    parser.add_argument("--framing", choices=["chunked", "length"], default="chunked")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    schedule = Schedule(args.ttft_ms, args.itl_ms, args.spread, args.framing, args.seed)
    try:
        runtime.run(serve(schedule, args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
