"""How late the client's own event loop ran while it was timing a level.

Every stamp `inferfleet bench` takes is taken by its event loop; while the loop is held up (a garbage
collection, the process descheduled on a busy machine, a slow callback), tokens that arrive are stamped
late, in a burst, and TTFT and ITL come out wrong with nothing in the figures to say so. A ticker that
asks to wake every `period_s` and records how late it woke measures exactly that, at the cost of a few
hundred wake-ups a second; the report shows the worst, so a suspect level is named instead of trusted.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

PERIOD_S = 0.005


class StallWatch:
    """`async with StallWatch() as watch:` ... then `watch.max_ms`: the longest the loop was late to wake."""

    def __init__(self, period_s: float = PERIOD_S) -> None:
        self.period_s = period_s
        self.max_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StallWatch:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _tick(self) -> None:
        while True:
            due = time.perf_counter() + self.period_s
            await asyncio.sleep(self.period_s)
            self.max_ms = max(self.max_ms, (time.perf_counter() - due) * 1000)
