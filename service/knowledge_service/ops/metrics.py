"""Prometheus metrics (prometheus-client), exposed at ``/metrics`` on the HTTP port.

Each core registers its metrics in a registry of its own, so two cores in one process (tests,
replicas sharing a store) never mix their figures.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from knowledge_service.ops.admission import Gate

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "knowledge_requests_total",
            "Requests by transport, route or RPC, and status.",
            ["transport", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "knowledge_request_seconds",
            "Request latency by transport and route or RPC.",
            ["transport", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "knowledge_search_stage_seconds",
            "Search time per stage (cache on every search; the rest on misses).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "knowledge_cache_lookups_total", "Result cache lookups by outcome.", ["outcome"], registry=r
        )
        self.cache_skipped = Counter(
            "knowledge_cache_skipped_total",
            "Answers not cached, by reason (too_large).",
            ["reason"],
            registry=r,
        )
        self.ingested = Counter(
            "knowledge_ingested_documents_total", "Documents ingested, by outcome.", ["status"], registry=r
        )
        self.ingested_chunks = Counter("knowledge_ingested_chunks_total", "Chunks written.", registry=r)
        self.swept_chunks = Counter(
            "knowledge_swept_chunks_total",
            "Orphan chunks (no live record) removed by the sweeper, by pass (markers, scan).",
            ["pass"],
            registry=r,
        )
        self.in_flight = Gauge(
            "knowledge_in_flight", "Requests holding a slot, by kind.", ["kind"], registry=r
        )
        self.queued = Gauge("knowledge_queued", "Requests waiting for a slot, by kind.", ["kind"], registry=r)
        self.up = Gauge(
            "knowledge_component_up",
            "1 when a component answers (store, cache, model).",
            ["component"],
            registry=r,
        )

    def watch_gate(self, gate: Gate) -> None:
        """Read an admission gate's slots in use and its queue at each scrape."""
        self.in_flight.labels(gate.name).set_function(lambda: gate.active)
        self.queued.labels(gate.name).set_function(lambda: gate.waiting)

    def observe_search(self, timings_ms: dict[str, float], cache_hit: bool, degraded: list[str]) -> None:
        self.cache.labels("error" if "cache" in degraded else "hit" if cache_hit else "miss").inc()
        for stage in ("cache", "encode", "query", "rerank"):
            if stage in timings_ms:
                self.stage.labels(stage).observe(timings_ms[stage] / 1000)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
