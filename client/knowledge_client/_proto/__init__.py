"""Deprecated alias of :mod:`knowledge_client.proto`, the generated stubs' former (private) home.

``from knowledge_client._proto.knowledge.v1 import knowledge_pb2`` still works and gives the very
same module objects as ``knowledge_client.proto`` (so a message class is one class, whichever path
imported it). Import from ``knowledge_client.proto``; this alias goes once nothing uses it.
"""

from __future__ import annotations

import sys
import warnings

from ..proto import knowledge
from ..proto.knowledge import v1
from ..proto.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc

warnings.warn(
    "knowledge_client._proto is deprecated; import knowledge_client.proto", DeprecationWarning, stacklevel=2
)

for _module in (knowledge, v1, knowledge_pb2, knowledge_pb2_grpc):
    sys.modules[__name__ + _module.__name__.removeprefix("knowledge_client.proto")] = _module

__all__ = ["knowledge"]
