"""Offline evaluation: BEIR loading, ir_measures metrics, and a rank_bm25 reference run.

Engine tokenisation, measured on qdrant-edge-py 0.9.0 (default ``Bm25``, Word tokenizer):
``embed_query(piece)`` returns each piece's term ids deduplicated and sorted, so splitting only on
whitespace reproduces the *set* of ids ``embed_document`` returns, but undercounts a term repeated
inside one piece ("1.1", "1-1/m": one id, tf 2). That changed tf or document length in 27 of
1,400 Cranfield and 648 of 5,183 SciFact documents. The engine splits on non-alphanumeric
characters, so ``engine_tokens`` embeds each run of alphanumerics instead; its ids, counts and
length reproduce ``embed_document``'s values exactly for every document in SciFact, Cranfield
and Vaswani. Python and Rust disagree on what is alphanumeric for some scripts (Devanagari
vowel signs): where the runs' ids differ from the whole piece's, the piece's ids are kept, so the
set stays exact and only the counts inside that piece may be low.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ir_measures
from ir_measures import RR, R, nDCG

from .errors import InvalidArgument

if TYPE_CHECKING:
    import qdrant_edge

METRIC_KEYS = ("ndcg@10", "recall@100", "mrr@10")
_WORD_RUN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class BeirDataset:
    """One BEIR collection and split; ``queries`` holds only queries judged in that split."""

    name: str
    corpus: dict[str, tuple[str, str]] = field(repr=False)
    queries: dict[str, str] = field(repr=False)
    qrels: dict[str, dict[str, int]] = field(repr=False)
    fingerprint: str

    def texts(self) -> dict[str, str]:
        """Doc id -> "title. text" (the text alone when there is no title)."""
        return {d: f"{t}. {x}" if t else x for d, (t, x) in self.corpus.items()}


def load_beir(directory: Path, split: str) -> BeirDataset:
    """Load ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` from a BEIR folder.

    Raises:
        InvalidArgument: the folder, a file or the split is missing, or a line is malformed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidArgument(f"dataset folder not found: {directory}")
    corpus_path = _require(directory / "corpus.jsonl")
    queries_path = _require(directory / "queries.jsonl")
    qrels_dir = directory / "qrels"
    splits = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if split not in splits:
        available = ", ".join(splits) or "none"
        raise InvalidArgument(
            f"split {split!r} not found in {qrels_dir}; available splits: {available}",
            field="split",
        )
    qrels = _read_qrels(qrels_dir / f"{split}.tsv")
    corpus = {
        doc_id: (str(row.get("title") or ""), str(row.get("text") or ""))
        for doc_id, row in _read_jsonl(corpus_path)
    }
    queries = {qid: str(row.get("text") or "") for qid, row in _read_jsonl(queries_path) if qid in qrels}
    unknown = sorted(set(qrels) - set(queries))
    if unknown:
        raise InvalidArgument(f"{len(unknown)} judged queries have no text in {queries_path}: {unknown[:5]}")
    return BeirDataset(directory.name, corpus, queries, qrels, _sha256(corpus_path))


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InvalidArgument(f"dataset file not found: {path}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield str(row["_id"]), row
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidArgument(f"{path}:{number}: not a BEIR record ({exc})") from None


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
            if not row or (number == 1 and row[:1] == ["query-id"]):
                continue
            try:
                qid, doc_id, score = row
                qrels.setdefault(qid, {})[doc_id] = int(score)
            except ValueError:
                raise InvalidArgument(
                    f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {row!r}"
                ) from None
    return qrels


def evaluate_per_query(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    *,
    exponential_gain: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics for every judged query (ir_measures / trec_eval); unretrieved queries score 0.

    ``ndcg@10`` uses trec_eval's linear gain (the grade, as in BEIR) unless ``exponential_gain``
    asks for 2**grade - 1. ``mrr@10`` and ``recall@100`` count grade >= 1 as relevant.
    """
    ndcg = nDCG @ 10
    if exponential_gain:
        grades = {g for judged in qrels.values() for g in judged.values()}
        ndcg = nDCG(cutoff=10, gains={g: max(2**g - 1, 0) for g in grades})
    names = {ndcg: "ndcg@10", R @ 100: "recall@100", RR @ 10: "mrr@10"}
    results = {qid: dict.fromkeys(METRIC_KEYS, 0.0) for qid in qrels}
    judged_run = {
        qid: {doc: float(score) for doc, score in docs.items()}
        for qid, docs in run.items()
        if qid in qrels and docs
    }
    if judged_run:
        for metric in ir_measures.iter_calc(list(names), qrels, judged_run):
            results[metric.query_id][names[metric.measure]] = float(metric.value)
    return results


def evaluate(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    *,
    exponential_gain: bool = False,
) -> dict[str, float]:
    """Mean ``ndcg@10``, ``recall@100``, ``mrr@10`` over the judged queries, and ``queries``."""
    if not qrels:
        raise InvalidArgument("no judged queries to evaluate")
    per_query = evaluate_per_query(run, qrels, exponential_gain=exponential_gain)
    means = {key: sum(m[key] for m in per_query.values()) / len(per_query) for key in METRIC_KEYS}
    return {**means, "queries": float(len(per_query))}


def collapse_to_documents(hits: Iterable[tuple[str, float]], limit: int) -> dict[str, float]:
    """Chunk hits in rank order -> each document's first hit, scored 1/rank, at most ``limit``.

    Chunk scores are dropped: after fusion or reranking they are not comparable across stages,
    and only their order is trusted. 1/rank is strictly decreasing, so evaluating the result
    reproduces the service's document order exactly (no ties for trec_eval to reorder).
    """
    if limit < 1:
        raise InvalidArgument(f"limit must be >= 1, got {limit}", field="limit")
    documents: dict[str, float] = {}
    for doc_id, _score in hits:
        if doc_id not in documents:
            documents[doc_id] = 1.0 / (len(documents) + 1)
            if len(documents) == limit:
                break
    return documents


def engine_tokens(text: str, bm25: qdrant_edge.Bm25) -> list[int]:
    """The term ids the engine's BM25 encoder counts in ``text``, with repeats, in text order.

    Ids within a piece that falls back (see the module docstring) come sorted, as the engine
    returns them; BM25 only needs the counts.
    """
    tokens: list[int] = []
    for piece in text.split():
        whole = bm25.embed_query(piece).indices
        runs = _WORD_RUN.findall(piece)
        if len(runs) <= 1 or not whole:
            tokens.extend(whole)
            continue
        split_ids = [i for run in runs for i in bm25.embed_query(run).indices]
        tokens.extend(split_ids if set(split_ids) == set(whole) else whole)
    return tokens


def rank_bm25_run(
    corpus: dict[str, str],
    queries: dict[str, str],
    bm25: qdrant_edge.Bm25,
    *,
    k1: float = 1.2,
    b: float = 0.75,
    limit: int = 100,
) -> dict[str, dict[str, float]]:
    """Reference BM25 run: rank_bm25's BM25Okapi over the engine's own term ids.

    Documents sharing no term with a query are left out, as the engine leaves them out. IDF is
    rank_bm25's (log((N - n + 0.5) / (n + 0.5)), floored), not Qdrant's log(1 + ...), so expect
    close but not identical scores to the engine's.
    """
    import numpy as np
    from rank_bm25 import BM25Okapi  # a dev dependency: only evaluation needs it

    if not corpus:
        raise InvalidArgument("corpus is empty", field="corpus")
    doc_ids = list(corpus)
    index = BM25Okapi([engine_tokens(corpus[d], bm25) for d in doc_ids], k1=k1, b=b)
    run: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        terms = bm25.embed_query(text).indices
        scores = index.get_scores(terms) if terms else np.zeros(len(doc_ids))
        top = np.argsort(-scores, kind="stable")[:limit]
        run[qid] = {doc_ids[i]: float(scores[i]) for i in top if scores[i] > 0}
    return run
