"""Client for the knowledge side-car (gRPC and HTTP); the public API is filled in later."""

from __future__ import annotations

__all__: list[str] = []
