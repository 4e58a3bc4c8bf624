"""The model's application for the pipeline tests: an OpenAI chat completions endpoint at `/` that answers
with what it was sent, so a test can read which context the pipeline put in front of the conversation.

The pipeline reaches the model only over HTTP (the OpenAI API of Ray Serve LLM, which cannot run the pinned
vLLM here; tests/e2e/test_prometheus_ray.py runs the real engine inside Ray Serve). Loaded by Ray's workers
from an import path (`echo_llm:build_app`), not by pytest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

MODEL = "echo"


def answer_text(messages: list[dict[str, Any]]) -> str:
    """Every message as `role: content` lines: the whole prompt the model was given."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


@serve.deployment
class EchoLlm:
    async def __call__(self, request: Request) -> Response:
        if request.method != "POST" or request.url.path.rstrip("/") != "/v1/chat/completions":
            return JSONResponse({"error": {"message": "not found", "code": 404}}, status_code=404)
        body = await request.json()
        if body.get("model", MODEL) != MODEL:
            return JSONResponse({"error": {"message": f"no model {body['model']!r}", "code": 404}}, status_code=404)
        text = answer_text(body["messages"])
        if body.get("stream"):
            return StreamingResponse(self._chunks(text), media_type="text/event-stream")
        return JSONResponse({
            "id": "chatcmpl-echo", "object": "chat.completion", "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        })

    def _chunks(self, text: str) -> Iterator[str]:
        """One server-sent event per line of the answer, then [DONE], as OpenAI streams."""
        for line in text.splitlines(keepends=True):
            chunk = {"object": "chat.completion.chunk", "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": line}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"


def build_app(args: dict[str, Any]) -> Application:
    return EchoLlm.bind()
