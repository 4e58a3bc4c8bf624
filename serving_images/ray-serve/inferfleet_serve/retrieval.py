"""Ranking for the pipeline's retrieve and rerank stages: pure Python, no Ray, so it is tested on its own.

Retrieval is Okapi BM25 over a corpus held in memory: it needs no model and no GPU, so a retrieve stage runs
on the CPUs the spec gives it (`pipeline[].numCpus`) and scales with Serve like any deployment. Reranking
reorders the retrieved candidates by how many of the query's distinct terms each one covers (a document
that answers every part of a question beats one that repeats a single term), BM25's score breaking ties,
and keeps the best few for the model's context.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

TOKEN = re.compile(r"\w+", re.UNICODE)
BM25_K1 = 1.5
BM25_B = 0.75
"""Robertson and Zaragoza's usual values: k1 saturates repeated terms, b normalises by document length."""


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass(frozen=True)
class Scored:
    document: Document
    score: float


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens: what both the index and the queries are cut into."""
    return [token.lower() for token in TOKEN.findall(text)]


def load_corpus(path: Path) -> list[Document]:
    """A JSON Lines file, one `{"id": ..., "text": ...}` per line; blank lines are skipped.

    Raises ValueError naming the line of a malformed record: a corpus that half loads would answer from the
    wrong documents without a word."""
    documents = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            documents.append(Document(str(record["id"]), str(record["text"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a {{id, text}} record: {error}") from error
    if not documents:
        raise ValueError(f"{path}: no documents")
    return documents


class Bm25Index:
    """Okapi BM25 over a fixed set of documents, with the +1 inside the IDF's logarithm so a term in most
    documents still scores above zero."""

    def __init__(self, documents: Sequence[Document], k1: float = BM25_K1, b: float = BM25_B) -> None:
        if not documents:
            raise ValueError("an index needs at least one document")
        self._documents = list(documents)
        self._k1 = k1
        self._b = b
        self._frequencies = [Counter(tokens(d.text)) for d in self._documents]
        self._lengths = [sum(f.values()) for f in self._frequencies]
        self._average_length = sum(self._lengths) / len(self._lengths) or 1.0
        containing: Counter[str] = Counter()
        for frequency in self._frequencies:
            containing.update(frequency.keys())
        n = len(self._documents)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in containing.items()}

    def __len__(self) -> int:
        return len(self._documents)

    def score(self, query_terms: Iterable[str], index: int) -> float:
        frequency, length = self._frequencies[index], self._lengths[index]
        norm = self._k1 * (1 - self._b + self._b * length / self._average_length)
        total = 0.0
        for term in query_terms:
            tf = frequency.get(term, 0)
            if tf:
                total += self._idf[term] * tf * (self._k1 + 1) / (tf + norm)
        return total

    def search(self, query: str, k: int) -> list[Scored]:
        """The k best documents with a positive score, best first (ties keep corpus order)."""
        terms = tokens(query)
        scored = [Scored(doc, self.score(terms, i)) for i, doc in enumerate(self._documents)]
        ranked = sorted((s for s in scored if s.score > 0), key=lambda s: -s.score)
        return ranked[:k]


def coverage(query: str, document: Document) -> float:
    """Share of the query's distinct terms that occur in the document (0 for an empty query)."""
    wanted = set(tokens(query))
    if not wanted:
        return 0.0
    return len(wanted & set(tokens(document.text))) / len(wanted)


def rerank(query: str, candidates: Sequence[Scored], k: int) -> list[Scored]:
    """The k candidates covering most of the query, their retrieval score breaking ties; each keeps its
    coverage as its new score."""
    ranked = sorted(candidates, key=lambda s: (-coverage(query, s.document), -s.score))
    return [Scored(s.document, coverage(query, s.document)) for s in ranked[:k]]
