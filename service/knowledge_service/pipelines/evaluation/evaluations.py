"""Evaluations: run a labelled query set against one or two profiles on a namespace and compare.

Backs ``POST /v1/evaluations``, the ``require_eval`` gate on profile changes and
``knowledge eval --profile``. Each profile retrieves ``depth`` chunks per query (its candidates
are raised to ``depth`` when smaller), collapsed to documents; the cache is bypassed.

The query set is uploaded (``queries`` and ``qrels``) or read from a BEIR folder under
``KNOWLEDGE_EVAL_DATASETS_DIR`` (only its queries and qrels, off the event loop; never the
corpus). With that setting unset the server reads no dataset at all. Each replica runs at most
``max_concurrent_evaluations`` evaluations and gate checks at once (more are refused with 429
before doing anything), and every query they search goes through the search admission gate, so
evaluations queue with searches instead of bypassing their limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import ValidationError

from knowledge_service.core.errors import InvalidArgument, PreconditionFailed, from_validation_error
from knowledge_service.ops.admission import Gate, admitted
from knowledge_service.pipelines.evaluation.comparison import Comparison, ProfileRun, compare, gate
from knowledge_service.pipelines.evaluation.datasets import load_beir
from knowledge_service.pipelines.evaluation.scoring import collapse_to_documents
from knowledge_service.pipelines.profiles.registry import DEFAULT, ProfileRegistry
from knowledge_service.pipelines.search.searcher import Searcher
from knowledge_service.schemas.evaluations import DATASETS_SETTING, EvaluationRequest, ProfileSpec
from knowledge_service.schemas.profiles import RequireEval
from knowledge_service.schemas.search import RetrievalSettings, SearchRequest

DOC_LIMIT = 100
GATE_DEPTH = 100  # chunks retrieved per query by the require_eval gate
# How long an evaluation waits for a free evaluation slot: not at all, a busy replica answers 429.
EVALUATION_QUEUE_WAIT_S = 0.0

GateCheck = Callable[[RetrievalSettings], Awaitable[None]]


class Evaluations:
    """Runs evaluations and require_eval checks, at most ``gate.limit`` at once per replica."""

    def __init__(
        self, *, searcher: Searcher, profiles: ProfileRegistry, gate: Gate, datasets_dir: Path | None
    ) -> None:
        self._searcher = searcher
        self._profiles = profiles
        self._gate = gate
        self.datasets_dir = datasets_dir

    async def evaluate(self, req: EvaluationRequest) -> Comparison:
        """Compare the profiles on the query set (429 when the replica runs its limit of evaluations)."""
        async with self._slot():
            chosen = [self.resolve_spec(spec, req.namespace) for spec in req.profiles]
            queries, qrels = await self.query_set(req.dataset, req.split, req.queries, req.qrels)
            runs = [
                await self.profile_run(req.namespace, queries, name, version, settings, req.depth)
                for name, version, settings in chosen
            ]
            return await asyncio.to_thread(compare, qrels, runs)  # permutation tests: seconds of CPU

    def gate_check(self, name: str, rule: RequireEval) -> GateCheck:
        """A check for ProfileRegistry.put: the new settings may lose at most min_delta nDCG@10."""

        async def check(candidate: RetrievalSettings) -> None:
            async with self._slot():
                try:
                    queries, qrels = await self.query_set(rule.dataset, rule.split, rule.queries, rule.qrels)
                except InvalidArgument as exc:
                    field = f"require_eval.{exc.field}" if exc.field else "require_eval"
                    raise InvalidArgument(f"require_eval: {exc.message}", field=field) from None
                current = self._profiles.find(name)  # a new profile is compared with the default one
                base = current.settings if current else self._profiles.get(DEFAULT).settings
                version = current.version if current else None
                ns = rule.namespace
                runs = [
                    await self.profile_run(ns, queries, name, version, base, GATE_DEPTH),
                    await self.profile_run(ns, queries, f"{name} (new)", None, candidate, GATE_DEPTH),
                ]
                result = gate(await asyncio.to_thread(compare, qrels, runs), rule.min_delta)
            if not result.passed:
                raise PreconditionFailed(f"require_eval: {result.message}", field="require_eval")

        return check

    async def query_set(
        self,
        dataset: str | None,
        split: str,
        queries: dict[str, str] | None,
        qrels: dict[str, dict[str, int]] | None,
    ) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
        """The judged queries and their qrels: uploaded, or read from a dataset under the root."""
        if dataset is None:
            uploaded = queries or {}
            judged = {q: rel for q, rel in (qrels or {}).items() if q in uploaded}
            if not judged:
                raise InvalidArgument("qrels: no judged query is among the uploaded queries", field="qrels")
            return {q: uploaded[q] for q in judged}, judged
        if self.datasets_dir is None:
            raise InvalidArgument(
                f"dataset: this server reads no evaluation datasets; set {DATASETS_SETTING} on the server "
                "to a folder of BEIR datasets, or upload queries and qrels instead",
                field="dataset",
            )
        data = await asyncio.to_thread(load_beir, dataset, split, root=self.datasets_dir, with_corpus=False)
        return data.queries, data.qrels

    def resolve_spec(self, spec: ProfileSpec, namespace: str) -> tuple[str, int | None, RetrievalSettings]:
        try:
            if spec.name is not None:
                profile = self._profiles.resolve(namespace, spec.name)
                name, version, base = profile.name, profile.version, profile.settings
            else:
                name, version = spec.label or "candidate", None
                base = RetrievalSettings.model_validate(spec.settings)
            return name, version, base.merged(spec.overrides or {})
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    async def profile_run(
        self,
        namespace: str,
        queries: dict[str, str],
        name: str,
        version: int | None,
        settings: RetrievalSettings,
        depth: int,
    ) -> ProfileRun:
        deep = RetrievalSettings.model_construct(
            **{
                **settings.model_dump(),
                "fusion": settings.fusion,
                "top_k": depth,
                "candidates": max(settings.candidates, depth),
            }
        )
        run: dict[str, dict[str, float]] = {}
        latencies: list[float] = []
        for done, (qid, text) in enumerate(queries.items()):
            try:
                req = SearchRequest(namespace=namespace, query=text)
            except ValidationError:
                run[qid] = {}  # an empty or oversize query finds nothing
                continue
            refusal = (
                f"evaluation of {name!r} stopped after {done} of {len(queries)} queries: searches are at "
                f"their limit on this replica (KNOWLEDGE_MAX_CONCURRENT_SEARCHES = {self._searcher.limit})"
            )
            # Each query queues with the searches; its latency is the search's own, without the queue.
            resp = await self._searcher.search_with(req, deep, name, version or 0, refusal=refusal)
            latencies.append(resp.timings_ms["total"])
            run[qid] = collapse_to_documents(((h.doc_id, h.score) for h in resp.results), DOC_LIMIT)
        return ProfileRun(name=name, version=version, run=run, latencies_ms=latencies)

    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return admitted(
            self._gate,
            "too many evaluations on this replica, require_eval checks included "
            f"(KNOWLEDGE_MAX_CONCURRENT_EVALUATIONS = {self._gate.limit})",
        )
