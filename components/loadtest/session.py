"""The aiohttp client session for the load test's untimed requests: health checks and `/v1/models`.

The timed streaming requests go through stream_client.StreamClient instead, whose receive path is
cheap enough not to delay the TTFT it stamps at hundreds of streams (see that module).

Keep-alive connections up to the concurrency, no total timeout (each request has its own), and no
cookie jar: an inference API sets no cookies.
"""

from __future__ import annotations

import aiohttp


def client_session(concurrency: int | None = None) -> aiohttp.ClientSession:
    """A session holding up to `concurrency` connections (None: no limit)."""
    limit = concurrency or 0  # aiohttp: 0 means unlimited
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None), cookie_jar=aiohttp.DummyCookieJar()
    )
