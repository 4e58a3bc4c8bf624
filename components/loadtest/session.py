"""The aiohttp client session every load-test request goes through, set up once for all callers.

Keep-alive connections up to the concurrency (a new TCP connection per request would be timed as
TTFT), no total timeout (each request has its own), and no cookie jar: an inference API sets no
cookies, and the jar's per-request work is client time that would land in the measured TTFT.
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
