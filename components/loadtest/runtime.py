"""The event loop the load generator runs on: uvloop where it exists (Linux, macOS), else asyncio's.

At hundreds of concurrent streams the client's own time per SSE event is what delays the TTFT it
stamps (a token that arrives while the loop works through other streams' events waits its turn);
uvloop's I/O path is several times cheaper than the default loop's, so the client adds less.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's default) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # Windows: uvloop does not build there; the dependency is skipped
        return None
    return uvloop.new_event_loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the fastest loop available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coroutine)
