"""Client for the knowledge side-car over gRPC or HTTP, and (with the ``crewai`` extra) its tool.

    from knowledge_client import KnowledgeClient

    with KnowledgeClient("127.0.0.1:50051") as client:
        hits = client.search("handbook", "who do I page about slow search?", top_k=5).results

The CrewAI tool lives in :mod:`knowledge_client.crewai` and is not imported from here, so this
package never imports CrewAI. The contract's generated gRPC stubs are public in
:mod:`knowledge_client.proto` (``from knowledge_client.proto.knowledge.v1 import knowledge_pb2``).
"""

from __future__ import annotations

from ._async_client import AsyncKnowledgeClient
from ._client import KnowledgeClient
from ._exceptions import (
    Conflict,
    DeadlineExceeded,
    InvalidRequest,
    KnowledgeError,
    NotFound,
    Overloaded,
    PreconditionFailed,
    Unauthorized,
    Unavailable,
)
from ._grpc import AsyncGrpcTransport, GrpcTransport
from ._http import AsyncHttpTransport, HttpTransport
from ._models import (
    CountResponse,
    DeleteResponse,
    Document,
    Fusion,
    IngestResponse,
    IngestResult,
    NamespaceSettings,
    Profile,
    RequireEval,
    RetrievalSettings,
    SearchHit,
    SearchResponse,
    StageScores,
    StoredDocument,
)
from ._retry import RetryPolicy
from ._transports import AsyncTransport, Transport

__version__ = "0.1.0"

__all__ = [
    "AsyncGrpcTransport",
    "AsyncHttpTransport",
    "AsyncKnowledgeClient",
    "AsyncTransport",
    "Conflict",
    "CountResponse",
    "DeadlineExceeded",
    "DeleteResponse",
    "Document",
    "Fusion",
    "GrpcTransport",
    "HttpTransport",
    "IngestResponse",
    "IngestResult",
    "InvalidRequest",
    "KnowledgeClient",
    "KnowledgeError",
    "NamespaceSettings",
    "NotFound",
    "Overloaded",
    "PreconditionFailed",
    "Profile",
    "RequireEval",
    "RetrievalSettings",
    "RetryPolicy",
    "SearchHit",
    "SearchResponse",
    "StageScores",
    "StoredDocument",
    "Transport",
    "Unauthorized",
    "Unavailable",
    "__version__",
]
