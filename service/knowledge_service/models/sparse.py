"""The BM25 sparse encoder: Qdrant Edge's own Bm25, so both backends score alike."""

from __future__ import annotations

import qdrant_edge as qe

from knowledge_service.core.config import Settings
from knowledge_service.models.base import SparseModel


class SparseEncoder(SparseModel):
    """BM25 term weights from Qdrant's own encoder; the engine applies IDF at query time."""

    def __init__(self, settings: Settings) -> None:
        self.bm25 = qe.Bm25(
            qe.Bm25Config(
                k=settings.bm25_k,
                b=settings.bm25_b,
                avg_len=settings.bm25_avg_len,
                language=settings.bm25_language,
            )
        )

    def document(self, text: str) -> qe.SparseVector:
        return self.bm25.embed_document(text)

    def query(self, text: str) -> qe.SparseVector:
        return self.bm25.embed_query(text)
