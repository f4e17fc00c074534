"""A backend's filter objects, built by walking the canonical filter language once for all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from knowledge_service.schemas.filters import Filter


class FilterDialect(ABC):
    """Builds one backend's filter objects; ``translate`` walks the canonical filter with it."""

    @abstractmethod
    def eq(self, key: str, value: Any) -> Any: ...

    @abstractmethod
    def any(self, key: str, values: list[Any]) -> Any: ...

    @abstractmethod
    def range(self, key: str, bounds: dict[str, float]) -> Any: ...

    @abstractmethod
    def has_id(self, ids: list[str]) -> Any: ...

    @abstractmethod
    def group(
        self, must: Sequence[Any] = (), should: Sequence[Any] = (), must_not: Sequence[Any] = ()
    ) -> Any:
        """A nested filter; empty lists are omitted."""

    def translate(self, flt: Filter) -> Any:
        """The canonical metadata filter (see schemas/schemas/filters.py) as this backend's filter."""
        if "and" in flt:
            return self.group(must=[self.translate(f) for f in flt["and"]])
        if "or" in flt:
            return self.group(should=[self.translate(f) for f in flt["or"]])
        if "not" in flt:
            return self.group(must_not=[self.translate(flt["not"])])
        key = f"metadata.{flt['field']}"
        if "eq" in flt:
            return self.eq(key, flt["eq"])
        if "any" in flt:
            return self.any(key, flt["any"])
        return self.range(key, flt["range"])

    def scope(self, namespace: str, kind: str, flt: Filter | None = None, *extra: Any) -> Any:
        """Points of one kind in one namespace, optionally narrowed by a metadata filter."""
        must = [self.eq("namespace", namespace), self.eq("kind", kind), *extra]
        if flt:
            must.append(self.translate(flt))
        return self.group(must=must)
