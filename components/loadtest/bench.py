"""`inferfleet bench`: an asyncio load generator for OpenAI-compatible streaming endpoints.

Load is either closed (a fixed number of requests in flight, one run per `--concurrency` level) or
open (Poisson arrivals at `--request-rate`, optionally capped by one concurrency level), the two
modes of vLLM's `vllm bench serve`. Each level sends `num_prompts` requests and is summarised by
stats.figures. Before the levels, probe requests find the model, size synthetic prompts and warm
the connection; they are not counted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from components.loadtest.errors import LoadTestError
from components.loadtest.models_api import first_model
from components.loadtest.openai_stream import Api, RequestResult, StreamRequest, send, stream_completion, timed
from components.loadtest.progress import Progress
from components.loadtest.prompts import (
    Prompt,
    read_jsonl,
    synthetic_prompts,
    tokens_per_word,
    words_for_tokens,
)
from components.loadtest.session import client_session
from components.loadtest.stalls import StallWatch
from components.loadtest.stream_client import StreamClient
from components.loadtest.stats import Figures, figures

PROBE_WORDS = (16, 128)


@dataclass(frozen=True)
class Level:
    """One load level: requests in flight (None: unbounded) and arrival rate (None: all at once)."""

    concurrency: int | None
    request_rate: float | None

    def label(self) -> str:
        """How reports name the level: `concurrency 4`, `rate 2/s, concurrency unbounded`."""
        parts = []
        if self.request_rate is not None:
            parts.append(f"rate {self.request_rate:g}/s")
        parts.append(f"concurrency {self.concurrency}" if self.concurrency else "concurrency unbounded")
        return ", ".join(parts)


@dataclass(frozen=True)
class BenchConfig:
    """What to run; the CLI builds it from flags (and the stack's workload for the lengths)."""

    url: str
    levels: Sequence[Level]
    num_prompts: int
    output_tokens: int
    input_tokens: int | None = None
    prompts_file: str | None = None
    model: str | None = None
    api: Api = "chat"
    ignore_eos: bool = False
    timeout_s: float = 600.0
    seed: int = 0
    range_ratio: float = 0.0
    """Synthetic lengths drawn per request from [L(1-r), L(1+r)] (prompts.length_range); 0: fixed."""


@dataclass(frozen=True)
class LevelResult:
    """One level's figures, kept with the level and the requests that produced them (`started`: the level's
    clock start, perf_counter seconds)."""

    level: Level
    figures: Figures
    requests: Sequence[RequestResult] = ()
    started: float = 0.0
    client_stall_ms: float = 0.0
    """The longest the client's own event loop was late while timing the level (stalls.py)."""


@dataclass(frozen=True)
class BenchRun:
    """A whole bench: the model it talked to, where the prompts came from, and each level's figures."""

    model: str
    prompt_source: str
    levels: list[LevelResult]


async def run_bench(config: BenchConfig, progress: TextIO | None) -> BenchRun:
    """Run every level in turn; `progress` is where the bar is drawn (None: no bar)."""
    async with client_session(1) as session:
        model = config.model or await first_model(session, config.url, config.timeout_s)
    async with StreamClient(config.url) as client:
        prompt_source, make_prompts = await _prompt_maker(client, config, model)
        results = []
        for index, level in enumerate(config.levels):
            prompts = make_prompts(index)
            bar = Progress(level.label(), len(prompts), progress, enabled=True) if progress else None
            if level.concurrency:
                await client.open(level.concurrency)  # handshakes before the clock starts, not inside TTFT
            async with StallWatch() as watch:
                started = time.perf_counter()
                done = await run_level(client, config, model, level, prompts, bar)
                duration = time.perf_counter() - started
            if bar:
                bar.close()
            results.append(LevelResult(level, figures(done, duration), done, started, watch.max_ms))
    return BenchRun(model, prompt_source, results)


async def run_level(
    client: StreamClient,
    config: BenchConfig,
    model: str,
    level: Level,
    prompts: Sequence[Prompt],
    bar: Progress | None,
) -> list[RequestResult]:
    """Send every prompt under the level's load shape and wait for all of them."""
    gate = asyncio.Semaphore(level.concurrency) if level.concurrency else None

    async def one(prompt: Prompt) -> RequestResult:
        request = StreamRequest(
            model=model,
            prompt=prompt.text,
            max_tokens=prompt.output_tokens or config.output_tokens,
            api=config.api,
            ignore_eos=config.ignore_eos,
        )
        if gate is None:
            received = await send(client, request, config.timeout_s)
        else:
            async with gate:  # held while the request is in flight, not while its stream is parsed
                received = await send(client, request, config.timeout_s)
        result = await timed(received)
        if bar:
            bar.advance(result.ok)
        return result

    tasks = []
    began = time.perf_counter()
    for prompt, due in zip(prompts, arrival_offsets(len(prompts), level.request_rate, config.seed), strict=True):
        while (delay := began + due - time.perf_counter()) > 0:  # a timer may fire up to its resolution early
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(prompt)))
    return list(await asyncio.gather(*tasks))


def arrival_offsets(count: int, rate: float | None, seed: int) -> list[float]:
    """When each request is due, seconds after its level starts: all at once for a closed loop (None), or
    Poisson arrivals at `rate`, the exponential gaps drawn from `seed`, the first at once (vLLM's client
    draws its gaps the same way); a request is never sent before its offset, only later on a busy machine."""
    if rate is None:
        return [0.0] * count
    rng = random.Random(seed)
    offsets, at = [], 0.0
    for _ in range(count):
        offsets.append(at)
        at += rng.expovariate(rate)
    return offsets


async def _prompt_maker(
    client: StreamClient, config: BenchConfig, model: str
) -> tuple[str, Callable[[int], list[Prompt]]]:
    """(description, level index -> prompts). File prompts repeat to `num_prompts`; synthetic ones
    are drawn afresh per level (another seed), so a later level never hits an earlier one's cache."""
    if config.prompts_file is not None:
        loaded = read_jsonl(config.prompts_file)
        await _probe(client, config, model, loaded[0].text)  # warm-up, as vLLM's client does
        cycled = [loaded[i % len(loaded)] for i in range(config.num_prompts)]
        return f"{config.prompts_file} ({len(loaded)} prompts)", lambda index: cycled
    if config.input_tokens is None:
        raise LoadTestError("give --prompts FILE, --input-tokens N, or --stack/--service for the workload's lengths")
    probes = []
    for words in PROBE_WORDS:
        text = synthetic_prompts(1, words, seed=config.seed - 1 - words)[0].text
        probes.append((words, await _probe(client, config, model, text)))
    words = words_for_tokens(config.input_tokens, tokens_per_word(*probes))
    spread = f" (lengths ±{config.range_ratio:.0%})" if config.range_ratio else ""
    description = (f"synthetic: ~{config.input_tokens} input tokens ({words} words), "
                   f"{config.output_tokens} output tokens{spread}")
    return description, lambda index: synthetic_prompts(
        config.num_prompts, words, seed=config.seed + index, output_tokens=config.output_tokens,
        range_ratio=config.range_ratio)


async def _probe(client: StreamClient, config: BenchConfig, model: str, text: str) -> int:
    """One short request; its prompt token count. A failure here stops the run with its reason."""
    request = StreamRequest(model=model, prompt=text, max_tokens=1, api=config.api)
    result = await stream_completion(client, request, config.timeout_s)
    if not result.ok:
        raise LoadTestError(f"probe request failed: {result.error}")
    if result.prompt_tokens is None:
        raise LoadTestError("the server reports no usage.prompt_tokens, so synthetic prompts cannot be sized: give --prompts FILE")
    return result.prompt_tokens
