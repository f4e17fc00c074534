"""The test oracle: a rank_bm25 reference run over the engine's own tokens.

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

import re

import qdrant_edge

from knowledge_service.core.errors import InvalidArgument

_WORD_RUN = re.compile(r"[^\W_]+")


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
