"""The torch reranker: a sentence-transformers CrossEncoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from knowledge_service.models.base import RERANK_BATCH, RerankModel


@dataclass
class Reranker(RerankModel):
    """A sentence-transformers CrossEncoder scoring (query, passage) pairs."""

    spec: str
    device: str = "cpu"

    def __post_init__(self) -> None:
        from sentence_transformers import CrossEncoder

        path = Path(self.spec)
        self.model = CrossEncoder(str(path) if path.exists() else self.spec, device=self.device)

    def score_batch(self, query: str, passages: list[str]) -> list[float]:
        pairs = [(query, p) for p in passages]
        return [float(s) for s in self.model.predict(pairs, batch_size=RERANK_BATCH, show_progress_bar=False)]
