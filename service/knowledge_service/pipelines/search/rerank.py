"""The rerank stage: a cross-encoder reorders the fused head, within a time budget.

The stage keeps a running estimate of its own cost, so that a request whose deadline is nearer
than that skips it (flagged ``skipped``) instead of overrunning.
"""

from __future__ import annotations

import logging
import time

from knowledge_service.core.threads import Worker
from knowledge_service.models.base import RerankModel, RerankTimeout
from knowledge_service.schemas.search import RerankStatus

log = logging.getLogger(__name__)


class RerankStage:
    """Scores (query, passage) pairs with the configured reranker, if any."""

    def __init__(self, reranker: RerankModel | None, worker: Worker, budget_ms: float) -> None:
        self._reranker = reranker
        self._worker = worker
        self._budget_s = budget_ms / 1000
        self.estimate_s = 0.0  # recent cost of the stage (exponential moving average)

    @property
    def configured(self) -> bool:
        return self._reranker is not None

    def status(self, wanted: bool) -> RerankStatus:
        """What the stage will do for a search whose profile says ``rerank = wanted``."""
        if not wanted:
            return "disabled"
        return "applied" if self._reranker is not None else "not_configured"

    def would_overrun(self, deadline: float | None) -> bool:
        return deadline is not None and deadline - time.monotonic() < self.estimate_s

    async def score(
        self, query: str, passages: list[str], deadline: float | None
    ) -> tuple[list[float] | None, RerankStatus]:
        """Scores for ``passages``, or None and why not (``skipped`` on the budget, ``failed``)."""
        assert self._reranker is not None
        started = time.perf_counter()
        budget = time.monotonic() + self._budget_s
        try:
            scores = await self._worker.run(
                self._reranker.score, query, passages, min(budget, deadline) if deadline else budget
            )
        except RerankTimeout as exc:
            log.warning("rerank cut: %s; serving fused order", exc)
            return None, "skipped"
        except Exception:
            log.exception("reranker failed; serving fused order")
            return None, "failed"
        spent = time.perf_counter() - started
        self.estimate_s = spent if not self.estimate_s else 0.8 * self.estimate_s + 0.2 * spent
        return scores, "applied"
