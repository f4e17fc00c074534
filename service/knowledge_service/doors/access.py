"""Who may call what: the one table both front doors consult, before they read a request body.

Each operation (a gRPC method name; the HTTP route of the same operation carries the same name)
needs a role, acts on a namespace taken from one place, and accepts a body up to a size:

- ``namespace``: the request's namespace (HTTP: the path; gRPC: the message, or each streamed one);
- ``all``: every namespace (profiles are shared by all of them);
- ``none``: no namespace data (reading profiles, health);
- ``body``: named inside the body (evaluations): the role is checked before the body is read, the
  namespace once it is parsed.

HTTP checks the key, the role and a path namespace in ASGI middleware ahead of body parsing, then
counts body bytes against ``max_body`` as they arrive (http/guard.py). gRPC checks the key and the
role in a server interceptor before the message is deserialised, and the namespace in the handler
guard (grpc/guard.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from knowledge_service.core import limits as L
from knowledge_service.ops.auth import Role

Scope = Literal["namespace", "all", "none", "body"]


@dataclass(frozen=True)
class Operation:
    role: Role | None  # None: any valid key (only asked for when a route is not public)
    scope: Scope
    max_body: int = L.MAX_SMALL_BODY_BYTES


OPERATIONS: dict[str, Operation] = {
    "Search": Operation("search", "namespace"),
    "GetDocument": Operation("search", "namespace", 0),
    "CountDocuments": Operation("search", "namespace", 0),
    "Ingest": Operation("ingest", "namespace", L.MAX_REQUEST_BYTES),
    "IngestStream": Operation("ingest", "namespace", L.MAX_REQUEST_BYTES),
    "IngestFiles": Operation("ingest", "namespace", L.MAX_REQUEST_BYTES),
    "DeleteDocuments": Operation("admin", "namespace"),
    "ListProfiles": Operation("search", "none", 0),
    "GetProfile": Operation("search", "none", 0),
    "ListProfileVersions": Operation("search", "none", 0),
    "PutProfile": Operation("admin", "all", L.MAX_REQUEST_BYTES),  # may upload a query set to gate on
    "RollbackProfile": Operation("admin", "all"),
    "GetNamespaceSettings": Operation("search", "namespace", 0),
    "SetNamespaceSettings": Operation("admin", "namespace"),
    "Evaluate": Operation("admin", "body", L.MAX_REQUEST_BYTES),
    "Metrics": Operation("admin", "all", 0),  # when KNOWLEDGE_METRICS_PUBLIC is false
    "Health": Operation(None, "none", 0),  # when KNOWLEDGE_HEALTH_PUBLIC is false
}
