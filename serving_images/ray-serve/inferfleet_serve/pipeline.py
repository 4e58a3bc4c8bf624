"""`inferfleet_serve.pipeline:build_app`: the builder the RayService manifests name for a service's pipeline
application (components/manifests/ray_serve.py, `pipeline_application`).

Contract with the manifests: args `{stages: [{name, import_path}], llm_app}`. Each stage's import path names
a Serve deployment, deployed under the stage's name (the RayService's `deployments` overrides, which set the
stage's CPUs and autoscaling bounds, find it by that name). The ingress, `Pipeline`, answers the OpenAI chat
completions API at the application's route (`/pipeline/v1/chat/completions`): it runs the stages in order on
the last user message, puts the documents they kept in front of the conversation as a system message, and
has the model's application (`llm_app`, Ray Serve LLM at `/`) generate the answer, streamed or not, as the
model's API returns it (with the documents' ids added to a non-streamed answer).

The model is called over HTTP through the Serve proxy of the replica's own node, not through a deployment
handle: the OpenAI API is Ray Serve LLM's stable interface, its Python classes are not, and every Ray node of
the RayService runs a proxy on the serve port. `INFERFLEET_LLM_URL` overrides that address.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from pydantic import BaseModel, Field
from ray import serve
from ray.serve import Application, Deployment
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

LLM_URL_ENV = "INFERFLEET_LLM_URL"
DEFAULT_LLM_URL = "http://127.0.0.1:8000"
"""The node's own Serve proxy on the RayService's serve port (components/manifests/serving.py API_PORT); the
model's application is at its root."""
CHAT_PATH = "/v1/chat/completions"
LLM_TIMEOUT_S = 600
"""A long generation streams for minutes; the route's own timeout cuts it before this does."""
INGRESS = "Pipeline"
"""The ingress deployment's name; capitalised, so no stage (a lower-case DNS label) can take it."""
CONTEXT_HEADER = "Answer using these documents; cite them by their id in brackets.\n"


class StageArgs(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    import_path: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PipelineArgs(BaseModel):
    """The builder's arguments, as the RayService's serveConfigV2 gives them."""

    stages: list[StageArgs]
    llm_app: str = Field(min_length=1)


def import_deployment(import_path: str) -> Deployment:
    """`module:attribute`, which must be a Serve deployment (a class decorated with `@serve.deployment`)."""
    module_name, _, attribute = import_path.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(target, Deployment):
        raise TypeError(f"{import_path} is a {type(target).__name__}, not a Serve deployment (@serve.deployment)")
    return target


def last_user_message(messages: list[dict[str, Any]]) -> str:
    """The query the stages work on: the text of the last user turn (string or OpenAI content parts)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    raise ValueError("no user message")


def with_context(messages: list[dict[str, Any]], documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with the kept documents first, as a system message (unchanged when none was kept)."""
    if not documents:
        return messages
    context = CONTEXT_HEADER + "\n".join(f"[{d['id']}] {d['text']}" for d in documents)
    return [{"role": "system", "content": context}, *messages]


def _error(status: int, message: str) -> JSONResponse:
    """An error in the OpenAI API's shape, so clients of the model read the pipeline's errors the same way."""
    error = {"message": message, "type": "inferfleet_pipeline", "code": status}
    return JSONResponse({"error": error}, status_code=status)


@serve.deployment(name=INGRESS)
class Pipeline:
    """The application's ingress: stages in order, then the model."""

    def __init__(self, stages: list[DeploymentHandle], stage_names: list[str], llm_app: str) -> None:
        self._stages = list(zip(stage_names, stages, strict=True))
        self._llm_app = llm_app
        self._llm_url = os.environ.get(LLM_URL_ENV, DEFAULT_LLM_URL).rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """One connection pool per replica, made on the replica's event loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=LLM_TIMEOUT_S))
        return self._session

    async def __call__(self, request: Request) -> Response:
        if request.method != "POST" or not request.url.path.rstrip("/").endswith(CHAT_PATH):
            return _error(404, f"the pipeline answers POST {CHAT_PATH} at its route")
        try:
            body = await request.json()
            query = last_user_message(body["messages"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            return _error(400, f"not a chat completion request with a user message: {error}")
        state: dict[str, Any] = {"query": query, "documents": []}
        for _name, stage in self._stages:
            state = await stage.remote(state)
        forwarded = {**body, "messages": with_context(body["messages"], state["documents"])}
        return await self._generate(forwarded, [d["id"] for d in state["documents"]])

    async def _generate(self, body: dict[str, Any], document_ids: list[str]) -> Response:
        """The model's answer as its API gave it: its status, its stream, its JSON (plus the documents' ids)."""
        url = f"{self._llm_url}{CHAT_PATH}"
        try:
            upstream = await self._client().post(url, json=body)
        except aiohttp.ClientError as error:
            return _error(502, f"the model's application {self._llm_app!r} at {url} did not answer: {error}")
        if body.get("stream") and upstream.status == 200:
            return StreamingResponse(self._relay(upstream), status_code=200,
                                     media_type=upstream.headers.get("Content-Type", "text/event-stream"))
        async with upstream:
            if upstream.content_type != "application/json":
                text = await upstream.text()
                return _error(502 if upstream.status < 400 else upstream.status,
                              f"the model's application {self._llm_app!r} answered {upstream.status}: {text[:500]}")
            answer = await upstream.json()
        if upstream.status == 200 and isinstance(answer, dict):
            answer["documents"] = document_ids
        return JSONResponse(answer, status_code=upstream.status)

    async def _relay(self, upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        async with upstream:
            async for chunk in upstream.content.iter_any():
                yield chunk


def build_app(args: dict[str, Any]) -> Application:
    """Serve application builder (`import_path: inferfleet_serve.pipeline:build_app`)."""
    parsed = PipelineArgs.model_validate(args)
    names = [stage.name for stage in parsed.stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names repeat: {names}")
    bound = [import_deployment(stage.import_path).options(name=stage.name).bind() for stage in parsed.stages]
    return Pipeline.bind(bound, names, parsed.llm_app)
