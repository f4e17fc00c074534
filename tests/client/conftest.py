"""Client fixtures: the real service (gRPC and HTTP front doors over the root ``core``) and a
CrewAI environment that never reaches the network.

CrewAI reads its switches when imported, so they are set here, before any test module imports it:
no telemetry, no tracing, no version check, and a throwaway HOME and storage folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator

import pytest

_CREWAI_HOME = tempfile.mkdtemp(prefix="crewai-home-")
os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
os.environ["CREWAI_DISABLE_VERSION_CHECK"] = "true"
os.environ["CREWAI_STORAGE_DIR"] = os.path.join(_CREWAI_HOME, "storage")
os.environ["HOME"] = _CREWAI_HOME

from harness import serve_grpc  # noqa: E402
from knowledge_service.app import Knowledge  # noqa: E402
from knowledge_service.core.config import Settings  # noqa: E402
from knowledge_service.schemas.documents import IngestRequest  # noqa: E402

from .client_support import DOCS, NS, Service  # noqa: E402


@pytest.fixture
async def grpc_target(core: Knowledge, settings: Settings) -> AsyncIterator[str]:
    """The real gRPC front door over ``core``, on a free port."""
    async with serve_grpc(core, settings) as serving:
        yield serving.target


@pytest.fixture
async def service(core: Knowledge, grpc_target: str, http_url: str) -> Service:
    """Both front doors over one core, with ``DOCS`` ingested into namespace ``NS``."""
    resp = await core.documents.ingest(IngestRequest(namespace=NS, documents=DOCS))
    assert {r.status for r in resp.results} == {"created"}
    return Service(core=core, grpc=grpc_target, http=http_url)


@pytest.fixture(params=["grpc", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each transport in turn."""
    return request.param
