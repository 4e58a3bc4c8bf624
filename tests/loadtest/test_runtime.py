"""The load generator's event loop: uvloop where installed."""

from __future__ import annotations

import asyncio

import uvloop

from components.loadtest import runtime


def test_coroutines_run_on_uvloop() -> None:
    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert runtime.loop_factory() is uvloop.new_event_loop
    assert runtime.run(loop_type()) is uvloop.Loop
