"""The pipeline stages a stack spec can name (`services[].pipeline[].importPath`), as Ray Serve deployments.

Every stage takes the pipeline's state and returns it, changed: a dict with the user's `query` (the last user
message) and the `documents` found so far, each `{id, text, score}`. Stages run in the spec's order, each its
own deployment with its own replicas and CPUs (the RayService's `deployments` overrides set them), so a slow
stage scales without the others.

- `inferfleet_serve.stages:Retriever`: BM25 over a JSON Lines corpus (`{"id", "text"}` per line) at the path
  in `INFERFLEET_CORPUS`, loaded once per replica; keeps the `INFERFLEET_RETRIEVE_TOP_K` best (default 20).
- `inferfleet_serve.stages:Reranker`: keeps the `INFERFLEET_RERANK_TOP_K` (default 4) candidates covering most
  of the query, for the model's context.

Settings are environment variables because a stage is built from its import path alone (the spec gives no
arguments), and the Ray worker pods' environment is where a deployment's configuration lives in a RayService.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray import serve

from inferfleet_serve.retrieval import Bm25Index, Document, Scored, load_corpus, rerank

CORPUS_ENV = "INFERFLEET_CORPUS"
RETRIEVE_TOP_K_ENV = "INFERFLEET_RETRIEVE_TOP_K"
RERANK_TOP_K_ENV = "INFERFLEET_RERANK_TOP_K"
DEFAULT_RETRIEVE_TOP_K = 20
DEFAULT_RERANK_TOP_K = 4
"""Twenty candidates are cheap to rerank; four passages fit a prompt next to the question."""

State = dict[str, Any]


def _positive_int(name: str, default: int) -> int:
    """An integer setting from the environment; a bad value stops the replica at start, not per request."""
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"{name}={value} must be at least 1")
    return value


def _documents(state: State) -> list[Scored]:
    return [Scored(Document(d["id"], d["text"]), float(d["score"])) for d in state.get("documents", [])]


def _with_documents(state: State, documents: list[Scored]) -> State:
    found = [{"id": s.document.id, "text": s.document.text, "score": s.score} for s in documents]
    return {**state, "documents": found}


@serve.deployment
class Retriever:
    """The corpus' BM25 best matches for the query."""

    def __init__(self) -> None:
        path = os.environ.get(CORPUS_ENV)
        if not path:
            raise ValueError(f"{CORPUS_ENV} is not set: the retrieve stage needs a corpus (JSON Lines of id, text)")
        self._index = Bm25Index(load_corpus(Path(path)))
        self._top_k = _positive_int(RETRIEVE_TOP_K_ENV, DEFAULT_RETRIEVE_TOP_K)

    async def __call__(self, state: State) -> State:
        return _with_documents(state, self._index.search(state["query"], self._top_k))


@serve.deployment
class Reranker:
    """The retrieved candidates that cover most of the query, fewest first dropped."""

    def __init__(self) -> None:
        self._top_k = _positive_int(RERANK_TOP_K_ENV, DEFAULT_RERANK_TOP_K)

    async def __call__(self, state: State) -> State:
        return _with_documents(state, rerank(state["query"], _documents(state), self._top_k))
