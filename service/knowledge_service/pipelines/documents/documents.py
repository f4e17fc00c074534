"""The documents pipeline both front doors call: ingest (documents or files), delete, get and count."""

from __future__ import annotations

from knowledge_service.core.errors import NotFound
from knowledge_service.ops import tracing
from knowledge_service.ops.admission import Gate
from knowledge_service.ops.metrics import Metrics
from knowledge_service.pipelines.documents import delete
from knowledge_service.pipelines.documents.ingest import Ingester
from knowledge_service.pipelines.documents.writes import Writes
from knowledge_service.pipelines.parsing.pool import ParserPool
from knowledge_service.schemas.common import parse
from knowledge_service.schemas.documents import (
    CountRequest,
    CountResponse,
    DeleteRequest,
    DeleteResponse,
    DocumentOut,
    DocumentRef,
    IngestFilesRequest,
    IngestRequest,
    IngestResponse,
)
from knowledge_service.storage.runner import AsyncStore


class Documents:
    """Writes go through the ingest gate (ingest) or the namespace lock (delete); reads are direct."""

    def __init__(
        self,
        *,
        store: AsyncStore,
        writes: Writes,
        ingester: Ingester,
        gate: Gate,
        metrics: Metrics,
        parsers: ParserPool,
    ) -> None:
        self._store = store
        self._parsers = parsers
        self._writes = writes
        self._ingester = ingester
        self._gate = gate
        self._metrics = metrics

    async def ingest(self, req: IngestRequest) -> IngestResponse:
        async with self._gate.enter():
            with tracing.span("ingest", {"namespace": req.namespace, "documents": len(req.documents)}):
                resp = await self._ingester.ingest(req)
        for r in resp.results:
            self._metrics.ingested.labels(r.status).inc()
            if r.status in ("created", "updated"):
                self._metrics.ingested_chunks.inc(r.chunks)
        return resp

    async def ingest_files(self, req: IngestFilesRequest) -> IngestResponse:
        """Parse each file in a worker process, in order, then ingest them as one batch.

        A file that cannot be used (unknown format, no text, over a parse limit) refuses the whole
        request with an InvalidArgument naming ``files[i]``, before anything is ingested; once
        parsed, a document that fails validation fails alone, as in :meth:`ingest`. The id is the
        file's own (``id``) or its name; the title and metadata come from the file, with
        ``req.metadata`` added over them. Each file's bytes are let go once it is parsed.
        """
        docs = []
        for i, upload in enumerate(req.files):
            parsed = await self._parsers.parse(
                upload.filename or f"file-{i}", upload.data, upload.content_type, field=f"files[{i}]"
            )
            upload.data = b""
            docs.append(parsed.document(upload.id, req.metadata))
        return await self.ingest(parse(IngestRequest, namespace=req.namespace, documents=docs))

    async def delete(self, req: DeleteRequest) -> DeleteResponse:
        return await delete.delete(self._store, self._writes, req)

    async def get(self, req: DocumentRef) -> DocumentOut:
        records = await self._store.get_docs(req.namespace, [req.doc_id])
        rec = records.get(req.doc_id)
        if rec is None:
            raise NotFound(f"document {req.doc_id!r} not found in namespace {req.namespace!r}")
        return DocumentOut(
            id=rec["doc_id"],
            title=rec.get("title"),
            text=rec["text"],
            metadata=rec.get("metadata") or {},
            chunks=rec["chunks"],
            content_hash=rec["content_hash"],
            updated_at=rec["updated_at"],
        )

    async def count(self, req: CountRequest) -> CountResponse:
        """Documents, and chunks of their live generations (never leftovers of failed writes)."""
        docs = await self._store.count(req.namespace, "doc", req.filter)
        chunks = await self._store.count_live_chunks(req.namespace, req.filter)
        version = await self._store.get_index_version(req.namespace)
        return CountResponse(documents=docs, chunks=chunks, index_version=version)
