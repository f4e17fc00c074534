"""The background sweep: remove chunks that have no live record, left by writes that never settled.

Two passes, both off the request path and in small pages:

- **Markers** (every ``KNOWLEDGE_SWEEP_INTERVAL_S``): each cleanup marker (storage/points.py) names a
  generation that a write may have left behind. An ``old`` generation that is no longer live is
  dead for good, so its chunks go at once. A ``new`` generation that is not live may belong to a
  write still in progress, so it waits for ``KNOWLEDGE_SWEEP_GRACE_S`` (writers refresh their
  markers well within it). A marker whose generation is live is dropped after the grace period.
- **Full scan** (at start, then every ``KNOWLEDGE_SWEEP_SCAN_INTERVAL_S``): every chunk is checked
  against its document's record, for orphans no marker names (for example from stores written
  before markers existed). A chunk is removed only if it is older than the grace period, no marker
  names its generation, and a record read *after* the markers does not name it either, so a write
  in progress (which leaves its marker before its chunks) is never touched.

``knowledge_swept_chunks_total{pass}`` counts what each pass removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from knowledge_service.ops.metrics import Metrics
from knowledge_service.pipelines.documents.settle import finish
from knowledge_service.storage import Marker
from knowledge_service.storage.runner import AsyncStore

log = logging.getLogger(__name__)
PAGE = 500


class Sweeper:
    def __init__(
        self,
        store: AsyncStore,
        metrics: Metrics,
        *,
        interval_s: float,
        scan_interval_s: float,
        grace_s: float,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self.interval_s = interval_s
        self.scan_interval_s = scan_interval_s
        self.grace_s = grace_s

    async def run_forever(self) -> None:
        interval = self.interval_s
        scan_every = self.scan_interval_s
        next_scan = time.monotonic() + min(interval, 30.0) if scan_every > 0 else float("inf")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_markers()
                if time.monotonic() >= next_scan:
                    await self.scan()
                    next_scan = time.monotonic() + scan_every
            except Exception:
                log.exception("sweep failed; retrying at the next interval")

    async def sweep_markers(self) -> int:
        """Settle every marker whose writer is certainly done; return the chunks removed."""
        store = self._store
        markers = await store.all_markers(PAGE * 20)
        removed = 0
        by_ns: dict[str, list[Marker]] = defaultdict(list)
        for m in markers:
            by_ns[m.namespace].append(m)
        older_than = time.time() - self.grace_s
        for ns, group in by_ns.items():
            _, n = await finish(store, ns, group, older_than, count=True)
            removed += self._counted(ns, n, "markers")
        return removed

    async def scan(self) -> int:
        """Check every chunk against its record; return the orphan chunks removed."""
        store = self._store
        removed, offset = 0, None
        while True:
            page, offset = await store.scan_chunks(PAGE, offset)
            removed += await self._scan_page(page)
            if offset is None:
                return removed
            await asyncio.sleep(0)  # let requests in between pages

    async def _scan_page(self, page: list[dict[str, Any]]) -> int:
        store = self._store
        old_enough = time.time() - self.grace_s
        candidates: dict[str, dict[int, str]] = defaultdict(dict)  # ns -> generation -> doc id
        for c in page:
            if float(c.get("written_at", 0.0)) < old_enough:
                candidates[c["namespace"]][int(c["generation"])] = c["doc_id"]
        removed = 0
        for ns, gens in candidates.items():
            doc_ids = sorted(set(gens.values()))
            marked = {m.generation for m in await store.get_markers(ns, doc_ids)}
            records = await store.get_docs(ns, doc_ids)  # read after the markers
            orphans = [
                g for g, d in gens.items() if g not in marked and records.get(d, {}).get("generation") != g
            ]
            removed += await self._remove(ns, orphans, "scan")
        return removed

    async def _remove(self, ns: str, generations: list[int], pass_: str) -> int:
        if not generations:
            return 0
        store = self._store
        n = await store.count_generations(ns, generations)
        await store.delete_generations(ns, generations)
        return self._counted(ns, n, pass_)

    def _counted(self, ns: str, n: int, pass_: str) -> int:
        self._metrics.swept_chunks.labels(pass_).inc(n)
        if n:
            log.info("sweep removed %d orphan chunks in namespace %r (%s)", n, ns, pass_)
        return n
