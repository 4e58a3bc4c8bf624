"""Smoke checks for OpenAI-compatible servers (vLLM, Ray Serve LLM): ready, models, one stream.

Readiness is each engine's own health route: vLLM's `/health` (200 once the engine is up) and the
Ray Serve proxy's `/-/healthz`. The stream check sends one chat completion and requires a complete,
well-formed event stream with at least one generated token: the same parser and rules as bench.
"""

from __future__ import annotations

import asyncio

import aiohttp

from components.loadtest.errors import LoadTestError
from components.loadtest.models_api import list_models
from components.loadtest.openai_stream import StreamRequest, stream_completion
from components.loadtest.session import client_session
from components.loadtest.smoke import Checks
from components.loadtest.stream_client import StreamClient

READY_PATHS = {"vllm": "/health", "ray-serve": "/-/healthz"}
SMOKE_PROMPT = "Hello! How are you today?"


async def smoke_openai(
    checks: Checks, url: str, engine: str, model: str | None, timeout_s: float, max_tokens: int
) -> None:
    """ready -> models -> stream, stopping at the first failure."""
    url = url.rstrip("/")
    async with client_session() as session:
        try:
            checks.passed("ready", await _ready(session, url + READY_PATHS[engine], timeout_s))
        except LoadTestError as error:
            return checks.failure("ready", error)
        try:
            model, detail = await _model(session, url, model, timeout_s)
            checks.passed("models", detail)
        except LoadTestError as error:
            return checks.failure("models", error)
        request = StreamRequest(model=model, prompt=SMOKE_PROMPT, max_tokens=max_tokens, temperature=0.0)
        async with StreamClient(url) as client:
            result = await stream_completion(client, request, timeout_s)
        if result.error is None and result.output_tokens < 1:
            result.error = "empty stream: the model generated no tokens"
        if result.error is not None:
            return checks.failure("stream", LoadTestError(f"chat completion with {model}: {result.error}"))
        checks.passed(
            "stream",
            f"{result.output_tokens} tokens in {len(result.itl) + 1} chunks, TTFT {result.ttft * 1000:.0f} ms, "
            f"total {result.latency * 1000:.0f} ms: {result.text[:60]!r}",
        )


async def _ready(session: aiohttp.ClientSession, target: str, timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(target) as response:
                if response.status != 200:
                    text = (await response.text(errors="replace"))[:120].strip()
                    raise LoadTestError(f"GET {target}: HTTP {response.status} (not ready){': ' + text if text else ''}")
                return f"GET {target}: 200"
    except TimeoutError:
        raise LoadTestError(f"GET {target}: timed out after {timeout_s:g} s") from None
    except aiohttp.ClientConnectorError as error:
        raise LoadTestError(f"cannot connect to {target}: {error.os_error.strerror or error}") from None
    except aiohttp.ClientError as error:
        raise LoadTestError(f"GET {target}: {type(error).__name__}: {error}") from None


async def _model(session: aiohttp.ClientSession, url: str, wanted: str | None, timeout_s: float) -> tuple[str, str]:
    models = await list_models(session, url, timeout_s)
    if not models:
        raise LoadTestError(f"GET {url}/v1/models: no models served")
    if wanted is not None and wanted not in models:
        raise LoadTestError(f"model {wanted!r} is not served; the server has: {', '.join(models)}")
    chosen = wanted or models[0]
    return chosen, f"{len(models)} served ({', '.join(models[:5])}{', ...' if len(models) > 5 else ''}); using {chosen}"
