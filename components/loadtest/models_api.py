"""`GET /v1/models`: which models an OpenAI-compatible server serves (bench picks the first,
smoke checks the one asked for is there)."""

from __future__ import annotations

import asyncio

import aiohttp

from components.loadtest.errors import LoadTestError


async def first_model(session: aiohttp.ClientSession, url: str, timeout_s: float) -> str:
    """The first model `/v1/models` lists: what a bench without `--model` talks to."""
    models = await list_models(session, url, timeout_s)
    if not models:
        raise LoadTestError(f"{url}/v1/models lists no models")
    return models[0]


async def list_models(session: aiohttp.ClientSession, url: str, timeout_s: float) -> list[str]:
    """Model ids from `GET /v1/models`; LoadTestError with the reason when it cannot be read."""
    target = url.rstrip("/") + "/v1/models"
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(target) as response:
                if response.status != 200:
                    raise LoadTestError(f"GET {target}: HTTP {response.status}")
                body = await response.json(content_type=None)
    except TimeoutError:
        raise LoadTestError(f"GET {target}: timed out after {timeout_s:g} s") from None
    except aiohttp.ClientConnectorError as error:
        raise LoadTestError(f"cannot connect to {url}: {error.os_error.strerror or error}") from None
    except (aiohttp.ClientError, ValueError) as error:
        raise LoadTestError(f"GET {target}: {type(error).__name__}: {error}") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise LoadTestError(f"GET {target}: not an OpenAI model list (no 'data' array)")
    return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]
