"""How much time `inferfleet bench`'s client adds to the TTFT it measures, at 256 concurrent streams.

A scripted OpenAI-compatible streaming server (this file, `--serve`, a separate process on plain
asyncio streams so its own cost stays small) answers every chat completion with its first token
exactly `--ttft-ms` after it has read the request, then a token every `--itl-ms`. The bench client
(components.loadtest.bench.run_level over a stream_client.StreamClient, what `inferfleet bench`
runs) keeps `--streams` requests in flight. The error it adds is measured TTFT minus the known
TTFT. The first token's text is the server's own clock readings (perf_counter is CLOCK_MONOTONIC,
shared by processes on Linux), which split the error into: request (client send + loopback +
server read), server lateness (the event loop waking late) and response (loopback + the client's
event loop reading the socket, where the chunk is stamped). The client's share is request +
response: the error less the server's lateness, which (uvloop's timers have 1 ms resolution, and
the server shares the CPUs) is not the client's.

The first `--streams` requests (a burst of sends at once, opening the connections) are not counted,
and output lengths vary, so the figures are the steady state of a long run.

    .venv/bin/python -m benchmarks.bench_client_overhead [--streams 256] [--requests 1024] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from components.loadtest import runtime
from components.loadtest.bench import BenchConfig, Level, run_level
from components.loadtest.prompts import Prompt, synthetic_prompts
from components.loadtest.stats import percentile
from components.loadtest.stream_client import StreamClient

MODEL = "scripted"


# --- the scripted server ------------------------------------------------------------------------


class ScriptedServer:
    """Plain asyncio HTTP/1.1 (keep-alive, chunked) so the server's own cost stays small.

    Each stream's first token is written by a timer at exactly received + TTFT; later tokens are
    written by one ticker every ITL for all streams at once. One wake-up per tick, not per stream and
    token, keeps the server's event loop on time at hundreds of streams: its lateness is measured
    anyway and reported apart from the client's share.
    """

    def __init__(self, ttft_s: float, itl_s: float) -> None:
        self.ttft_s = ttft_s
        self.itl_s = itl_s
        self.active: dict[asyncio.StreamWriter, list[Any]] = {}  # writer -> [tokens left, done future]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = json.loads(await reader.readexactly(length)) if length else {}
                received = time.perf_counter()
                if head.startswith(b"GET /v1/models"):
                    data = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                done = loop.create_future()
                due = received + self.ttft_s
                delay = due - time.perf_counter()
                loop.call_at(loop.time() + max(0.0, delay), self.first, writer, int(body.get("max_tokens", 16)), received, due, done)
                await done
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def first(self, writer: asyncio.StreamWriter, tokens: int, received: float, due: float, done: asyncio.Future[None]) -> None:
        # The first token's text is the server's clock readings: received, due, sent.
        _token(writer, f"{received:.9f},{due:.9f},{time.perf_counter():.9f};")
        self.active[writer] = [tokens - 1, done]
        if tokens <= 1:
            self.finish(writer)

    def finish(self, writer: asyncio.StreamWriter) -> None:
        tokens_left, done = self.active.pop(writer)
        _event(writer, json.dumps({"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 1}}))
        _event(writer, "[DONE]")
        writer.write(b"0\r\n\r\n")
        done.set_result(None)

    async def tick(self) -> None:
        token = _chunk(_token_payload("tok "))  # the same bytes for every stream: encoded once, not per write
        while True:
            await asyncio.sleep(self.itl_s)
            for writer, state in list(self.active.items()):
                writer.write(token)
                state[0] -= 1
                if state[0] <= 0:
                    self.finish(writer)


def _token_payload(text: str) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})


def _token(writer: asyncio.StreamWriter, text: str) -> None:
    _event(writer, _token_payload(text))


def _event(writer: asyncio.StreamWriter, payload: str) -> None:
    writer.write(_chunk(payload))


def _chunk(payload: str) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    data = f"data: {payload}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(ttft_s: float, itl_s: float) -> None:
    scripted = ScriptedServer(ttft_s, itl_s)
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    ticker = asyncio.create_task(scripted.tick())
    async with server:
        await server.serve_forever()
    ticker.cancel()


# --- the measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    error_ms: list[float]  # measured TTFT - known TTFT
    request_ms: list[float]  # client start -> server has read the request
    lateness_ms: list[float]  # server sent the first token after it was due
    response_ms: list[float]  # server sent -> client stamped the chunk
    cpu_s: float  # the client process's CPU time over the run
    wall_s: float
    chunks: int


async def measure(url: str, streams: int, requests: int, tokens: int, ttft_s: float) -> Split:
    config = BenchConfig(url=url, levels=[Level(streams, None)], num_prompts=requests, output_tokens=tokens, model=MODEL)
    async with StreamClient(url) as client:
        # Output lengths spread over tokens/2 .. 3*tokens/2, so requests end (and the next ones start) at
        # different times, as they do against a real server: one burst of `streams` sends at once is the
        # first round's artefact, and that round (which also opens the connections) is not counted.
        rng = random.Random(0)
        prompts = [Prompt(p.text, rng.randint(tokens // 2, tokens * 3 // 2)) for p in synthetic_prompts(streams + requests, words=32)]
        cpu, wall = _cpu(), time.perf_counter()
        results = await run_level(client, config, MODEL, config.levels[0], prompts, None)
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
        results = results[streams:]
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed, e.g. {failed[0]}")
    split = Split([], [], [], [], cpu, wall, sum(p.output_tokens or 0 for p in prompts) + 2 * len(prompts))
    for result in results:
        received, due, sent = (float(value) for value in result.text.split(";", 1)[0].split(","))
        split.error_ms.append((result.ttft - ttft_s) * 1000)
        split.request_ms.append((received - result.start) * 1000)
        split.lateness_ms.append((sent - due) * 1000)
        split.response_ms.append((result.start + result.ttft - sent) * 1000)
    return split


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--requests", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--ttft-ms", type=float, default=100.0)
    parser.add_argument("--itl-ms", type=float, default=25.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.serve:
        runtime.run(serve(args.ttft_ms / 1000, args.itl_ms / 1000))
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_client_overhead", "--serve", "--ttft-ms", str(args.ttft_ms), "--itl-ms", str(args.itl_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        split = runtime.run(measure(f"http://127.0.0.1:{port}", args.streams, args.requests, args.tokens, args.ttft_ms / 1000))
    finally:
        server.terminate()
        server.wait(10)
    rows = {
        "TTFT error (measured - known)": split.error_ms,
        "  request: client send -> server read": split.request_ms,
        "  server lateness": split.lateness_ms,
        "  response: server write -> client stamp": split.response_ms,
        "client's share (request + response)": [q + r for q, r in zip(split.request_ms, split.response_ms, strict=True)],
    }
    figures = {name: {"p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v)} for name, v in rows.items()}
    setting = {"streams": args.streams, "requests": args.requests, "tokens": args.tokens, "ttft_ms": args.ttft_ms,
               "itl_ms": args.itl_ms, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
    cost = {"client_cpu_share": split.cpu_s / split.wall_s, "client_cpu_us_per_chunk": split.cpu_s / split.chunks * 1e6}
    if args.json:
        print(json.dumps({"setting": setting, "ms": figures, "client": cost}, indent=2))
        return
    print(f"{args.streams} streams, {args.requests} requests, known TTFT {args.ttft_ms:g} ms, ITL {args.itl_ms:g} ms, "
          f"{args.tokens} tokens; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    width = max(map(len, figures))
    print(f"{'ms':<{width}}  {'p50':>7}  {'p99':>7}  {'max':>7}")
    for name, f in figures.items():
        print(f"{name:<{width}}  {f['p50']:7.2f}  {f['p99']:7.2f}  {f['max']:7.2f}")
    print(f"client CPU: {cost['client_cpu_share']:.0%} of one core over {split.wall_s:.1f} s, "
          f"{cost['client_cpu_us_per_chunk']:.0f} us per SSE event (tokens, usage, [DONE])")


if __name__ == "__main__":
    main()
