"""A vLLM engine inside a Ray Serve replica, reporting its metrics through Ray: the e2e tests' Ray Serve LLM.

Ray Serve LLM (`ray.serve.llm:build_openai_app`, what the RayService manifests deploy) runs vLLM's `AsyncLLM` in
a Serve replica with `stat_loggers=[RayPrometheusStatLogger]` (Ray 2.54,
ray/llm/_internal/serve/engines/vllm/vllm_engine.py, `_start_async_llm_engine`), so vLLM's engine metrics leave
through Ray's metrics agent under Ray's names, not vLLM's. Ray 2.54's LLM layer cannot import the pinned vLLM
(0.32 moved `vllm.entrypoints.openai.engine.protocol`, which ray/llm/.../openai_api_models.py imports), so this
module does what it does with the pinned vLLM: the same engine class and the same stat logger in a real Serve
deployment, behind the smallest OpenAI-style completions endpoint that drives the engine over HTTP.

Loaded by Ray's workers from an import path (`ray_vllm_app:build_app`), in .venv-vllm; not by pytest.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

DEPLOYMENT = "VllmEngine"
"""The deployment's name: what `deployments` overrides in a Serve config, and the `deployment` label."""


@serve.deployment(name=DEPLOYMENT)
class VllmEngine:
    """One vLLM engine per replica, its statistics through Ray's exporter."""

    def __init__(self, model: str, served_model_name: str, engine_kwargs: dict[str, Any]) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM
        from vllm.v1.metrics.ray_wrappers import RayPrometheusStatLogger

        args = AsyncEngineArgs(model=model, served_model_name=[served_model_name], **engine_kwargs)
        self._engine = AsyncLLM.from_engine_args(args, stat_loggers=[RayPrometheusStatLogger])
        self._name = served_model_name

    async def check_health(self) -> None:
        """Serve's health check: a dead engine core marks the replica unhealthy (and Serve restarts it)."""
        await self._engine.check_health()

    async def __call__(self, request: Request) -> Response:
        if request.method != "POST" or request.url.path.rstrip("/") != "/v1/completions":
            return JSONResponse({"error": {"message": "only POST /v1/completions"}}, status_code=404)
        body = await request.json()
        if body.get("model", self._name) != self._name:
            return JSONResponse({"error": {"message": f"model {body['model']!r} is not served here"}}, status_code=404)
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=int(body.get("max_tokens", 16)),
            temperature=float(body.get("temperature", 0.0)),
            ignore_eos=bool(body.get("ignore_eos", False)),
        )
        request_id = f"cmpl-{uuid.uuid4().hex}"
        # Errors the engine raises (a prompt longer than max_model_len, ...) are not translated: they reach
        # Serve, which answers 500, as an engine failure would.
        outputs = self._engine.generate(body["prompt"], params, request_id)
        first = await anext(outputs)
        if body.get("stream"):
            return StreamingResponse(self._stream(request_id, first, outputs), media_type="text/event-stream")
        final = first
        async for final in outputs:
            pass
        return JSONResponse(self._completion(request_id, final.outputs[0].text, final.outputs[0].finish_reason))

    def _completion(self, request_id: str, text: str, finish_reason: str | None) -> dict[str, Any]:
        return {
            "id": request_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": self._name,
            "choices": [{"index": 0, "text": text, "finish_reason": finish_reason}],
        }

    async def _stream(self, request_id: str, first: Any, outputs: AsyncIterator[Any]) -> AsyncIterator[str]:
        """Server-sent events, one per engine step: the text added since the previous step."""
        sent = 0
        output = first
        while True:
            text = output.outputs[0].text
            chunk = self._completion(request_id, text[sent:], output.outputs[0].finish_reason)
            yield f"data: {json.dumps(chunk)}\n\n"
            sent = len(text)
            try:
                output = await anext(outputs)
            except StopAsyncIteration:
                break
        yield "data: [DONE]\n\n"


def build_app(args: dict[str, Any]) -> Application:
    """Serve application builder: args `{model, served_model_name, engine_kwargs}` (what a Serve config's
    `args` holds for this import path)."""
    return VllmEngine.bind(args["model"], args["served_model_name"], dict(args.get("engine_kwargs") or {}))
