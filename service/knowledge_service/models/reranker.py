"""The reranker: a sentence-transformers CrossEncoder, scored in batches within a time budget."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from knowledge_service.models.base import RerankModel, RerankTimeout

RERANK_BATCH = 16  # pairs per forward pass; the time budget is checked between batches


@dataclass
class Reranker(RerankModel):
    """A sentence-transformers CrossEncoder scoring (query, passage) pairs."""

    spec: str
    device: str = "cpu"

    def __post_init__(self) -> None:
        from sentence_transformers import CrossEncoder

        path = Path(self.spec)
        self.model = CrossEncoder(str(path) if path.exists() else self.spec, device=self.device)

    def score(self, query: str, passages: list[str], deadline: float | None = None) -> list[float]:
        """Scores of (query, passage) pairs, in batches; RerankTimeout once ``deadline``
        (time.monotonic) has passed between two batches, so an overrun stops within one batch."""
        scores: list[float] = []
        for start in range(0, len(passages), RERANK_BATCH):
            if deadline is not None and time.monotonic() >= deadline:
                raise RerankTimeout(
                    f"reranked {start} of {len(passages)} passages before the time budget ran out"
                )
            batch = [(query, p) for p in passages[start : start + RERANK_BATCH]]
            scores += [
                float(s) for s in self.model.predict(batch, batch_size=RERANK_BATCH, show_progress_bar=False)
            ]
        return scores
