"""The ranking the retrieve and rerank stages run (inferfleet_serve.retrieval), without Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferfleet_serve.retrieval import Bm25Index, Document, Scored, coverage, load_corpus, rerank, tokens

CORPUS = [
    Document("gpu", "An H100 GPU has 80 GB of HBM3 memory and NVLink between the GPUs of a node."),
    Document("spot", "Spot instances can be interrupted with two minutes of notice; drain the node first."),
    Document("kv", "The KV cache holds the keys and values of every sequence; vLLM preempts when it is full."),
    Document("warm", "A warm pool keeps stopped instances ready, so a GPU node joins in a minute, not ten."),
]


def test_tokens_are_lower_case_words() -> None:
    assert tokens("vLLM's KV-cache, 80 GB!") == ["vllm", "s", "kv", "cache", "80", "gb"]


def test_bm25_ranks_the_document_about_the_query_first() -> None:
    index = Bm25Index(CORPUS)
    found = index.search("what happens when the KV cache is full", k=2)
    assert [s.document.id for s in found][0] == "kv"
    assert all(s.score > 0 for s in found) and found == sorted(found, key=lambda s: -s.score)


def test_bm25_weighs_rare_terms_above_common_ones() -> None:
    """`gpu` is in two documents, `hbm3` in one: a query with both prefers the one with the rare term."""
    index = Bm25Index(CORPUS)
    (best,) = index.search("gpu hbm3", k=1)
    assert best.document.id == "gpu"
    assert index.score(["hbm3"], 0) > index.score(["gpu"], 0)


def test_search_returns_only_matches_and_at_most_k() -> None:
    index = Bm25Index(CORPUS)
    assert index.search("kubernetes", k=3) == []
    assert len(index.search("the node", k=1)) == 1


def test_an_empty_index_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one document"):
        Bm25Index([])


def test_rerank_prefers_coverage_of_the_whole_question() -> None:
    """`spot` repeats one query term; `warm` covers both: rerank puts `warm` first whatever BM25 said."""
    query = "node minute"
    candidates = [Scored(CORPUS[1], 9.0), Scored(CORPUS[3], 1.0)]
    assert coverage(query, CORPUS[3]) == 1.0 and coverage(query, CORPUS[1]) == 0.5
    kept = rerank(query, candidates, k=1)
    assert [s.document.id for s in kept] == ["warm"] and kept[0].score == 1.0


def test_corpus_loads_from_json_lines_and_names_a_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "corpus.jsonl"
    good.write_text("\n".join(json.dumps({"id": d.id, "text": d.text}) for d in CORPUS) + "\n\n")
    assert load_corpus(good) == CORPUS
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "text": "ok"}) + "\n" + json.dumps({"id": "b"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a \{id, text\} record"):
        load_corpus(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no documents"):
        load_corpus(empty)
