"""A small OpenAI-compatible streaming server (aiohttp.web) for the smoke and bench CLI tests.

It speaks the wire format vLLM does (`/health`, `/v1/models`, SSE `chat.completion.chunk`s, a usage
chunk, `data: [DONE]`), counts prompt tokens as words, and can be told to misbehave in the ways a
real deployment does: an HTTP error, a malformed event, an empty stream, a stream cut before
`[DONE]`, a hang, no models, not ready. Runs on a free loopback port in its own thread and loop,
since the CLI under test runs its own event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Fault = Literal["http500", "malformed", "empty", "cut", "hang", "no_models", "not_ready"]


@dataclass
class OpenAIPeer:
    fault: Fault | None = None
    token_delay_s: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    models: tuple[str, ...] = ("tiny",)
    fail_every: int = 0  # with n > 0, every n-th completion request gets an HTTP 500

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("OpenAIPeer did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/v1/completions", self._complete)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)  # a "hang" handler must not hold stop()
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    async def _health(self, request: web.Request) -> web.Response:
        if self.fault == "not_ready":
            return web.Response(status=503, text="engine starting")
        return web.Response(status=200)

    async def _models(self, request: web.Request) -> web.Response:
        models = [] if self.fault == "no_models" else self.models
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in models]})

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        if self.fault == "http500" or (self.fail_every and len(self.bodies) % self.fail_every == 0):
            return web.json_response({"error": {"message": "engine dead"}}, status=500)
        chat = request.path.endswith("chat/completions")
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if self.fault == "hang":
            await asyncio.sleep(3600)
        tokens = 0 if self.fault == "empty" else int(body["max_tokens"])
        for i in range(tokens):
            await asyncio.sleep(self.token_delay_s)
            piece = f"t{i} "
            choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            await response.write(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
            if self.fault == "malformed" and i == 0:
                await response.write(b"data: {oops\n\n")
            if self.fault == "cut" and i == 1:
                return response
        usage = {"prompt_tokens": len(prompt.split()) + 3, "completion_tokens": tokens}
        await response.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response
