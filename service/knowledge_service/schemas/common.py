"""What every schema shares: strict models, names, metadata values, query normalisation."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from knowledge_service.core import limits as L
from knowledge_service.core.errors import from_validation_error

Namespace = Annotated[str, Field(pattern=L.NAMESPACE_PATTERN, description="Knowledge base name.")]


MetadataValue = str | int | float | bool | list[str | int | float | bool]


_WS = re.compile(r"\s+")


def normalise_query(text: str) -> str:
    """Canonical query text: Unicode NFKC, whitespace collapsed, trimmed (case is kept)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


class Strict(BaseModel):
    """A request model: unknown fields are refused, and so is every lax coercion (``true`` or
    ``"3"`` for an integer, ``0.0`` for a boolean), so that a value is taken only as its own type."""

    model_config = ConfigDict(extra="forbid", strict=True)


M = TypeVar("M", bound=BaseModel)


def parse(cls: type[M], **data: Any) -> M:
    """Validate ``data`` as ``cls``; a failure is an InvalidArgument naming each field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


ProfileName = Annotated[str, Field(pattern=L.NAMESPACE_PATTERN, description="Profile name.")]
