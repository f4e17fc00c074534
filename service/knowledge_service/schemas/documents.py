"""Request and response models shared by both front doors (HTTP JSON and gRPC use the same names)."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument, PayloadTooLarge
from knowledge_service.schemas.common import MetadataValue, Namespace, Strict
from knowledge_service.schemas.filters import validate_filter

_META_KEY = re.compile(L.METADATA_KEY_PATTERN)


# ----------------------------------------------------------------------------- ingest


class DocumentIn(Strict):
    id: str = Field(min_length=1, max_length=L.MAX_DOC_ID_CHARS)
    text: str = Field(min_length=1, max_length=L.MAX_DOC_CHARS)
    title: str | None = Field(None, max_length=L.MAX_TITLE_CHARS)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _printable_id(cls, v: str) -> str:
        if any(unicodedata.category(c).startswith("C") for c in v):
            raise ValueError("must not contain control characters")
        return v

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must contain some non-whitespace text")
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > L.MAX_METADATA_KEYS:
            raise ValueError(f"at most {L.MAX_METADATA_KEYS} keys (got {len(v)})")
        for key, value in v.items():
            if not _META_KEY.fullmatch(key):
                raise ValueError(f"key {key!r} must match {L.METADATA_KEY_PATTERN}")
            if isinstance(value, list) and len(value) > L.MAX_METADATA_LIST:
                raise ValueError(f"key {key!r}: at most {L.MAX_METADATA_LIST} list items")
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(f"key {key!r}: numbers must be finite")
                if isinstance(item, int) and not L.INT64_MIN <= item <= L.INT64_MAX:
                    raise ValueError(f"key {key!r}: integers must fit in 64 bits")
        size = len(json.dumps(v, ensure_ascii=False).encode())
        if size > L.MAX_METADATA_BYTES:
            raise ValueError(f"at most {L.MAX_METADATA_BYTES} bytes as JSON (got {size})")
        return v


class IngestRequest(Strict):
    namespace: Namespace
    # Items stay raw here so that one bad document fails alone (see pipelines/documents/ingest.py).
    documents: list[dict[str, Any]] = Field(min_length=1, max_length=L.MAX_BATCH_DOCS)


IngestStatus = Literal["created", "updated", "unchanged", "failed"]


class IngestResult(BaseModel):
    id: str
    status: IngestStatus
    chunks: int = 0
    error: str | None = None


class IngestResponse(BaseModel):
    results: list[IngestResult]
    index_version: int


# ----------------------------------------------------------------------------- files


class FileIn(Strict):
    """One uploaded file: its name gives the document's id and, by its extension, the format."""

    filename: str = Field("", description="Slashes are kept in the id; empty: file-<i>.")
    content_type: str | None = Field(None, description="Tells the format when the extension does not.")
    data: bytes = b""
    id: str | None = Field(None, description="Unset: the file name.")


class IngestFilesRequest(Strict):
    """Files to parse and ingest as one batch, with metadata added to each (over the file's own).

    The file count and the bytes per file are checked here, before anything is parsed; the
    bytes of the whole request are the front door's body cap (HTTP) or message cap (gRPC).
    """

    namespace: Namespace
    files: list[FileIn]
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("files")
    @classmethod
    def _file_limits(cls, v: list[FileIn]) -> list[FileIn]:
        if not v:
            raise InvalidArgument("files: send one or more files", field="files")
        if len(v) > L.MAX_FILES_PER_REQUEST:
            raise too_many_files()
        for index, upload in enumerate(v):
            if len(upload.data) > L.MAX_FILE_BYTES:
                raise file_too_large(index, upload.filename)
        return v


def too_many_files() -> InvalidArgument:
    """The refusal of a request with more than MAX_FILES_PER_REQUEST files (both doors)."""
    return InvalidArgument(
        f"at most {L.MAX_FILES_PER_REQUEST} files per request (MAX_FILES_PER_REQUEST); "
        "send the rest in another request",
        field="files",
    )


def file_too_large(index: int, filename: str) -> PayloadTooLarge:
    """The refusal of a file over MAX_FILE_BYTES (both doors; HTTP as soon as the bound is passed)."""
    return PayloadTooLarge(
        f"files[{index}] ({filename}): over the limit of {L.MAX_FILE_BYTES} bytes per file "
        "(MAX_FILE_BYTES); split it into smaller files",
        field=f"files[{index}]",
    )


# ----------------------------------------------------------------------------- search


# ----------------------------------------------------------------------------- documents


class DocumentRef(Strict):
    namespace: Namespace
    doc_id: str = Field(min_length=1, max_length=L.MAX_DOC_ID_CHARS)


class DocumentOut(BaseModel):
    id: str
    title: str | None = None
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunks: int
    content_hash: str
    updated_at: float


class DeleteResponse(BaseModel):
    deleted: int
    index_version: int


class CountResponse(BaseModel):
    documents: int
    chunks: int
    index_version: int


class DeleteRequest(Strict):
    namespace: Namespace
    ids: list[Annotated[str, Field(min_length=1, max_length=L.MAX_DOC_ID_CHARS)]] = Field(
        default_factory=list, max_length=L.MAX_BATCH_DOCS
    )
    filter: dict[str, Any] | None = None

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, v: Any) -> Any:
        return validate_filter(v)

    @model_validator(mode="after")
    def _something(self) -> DeleteRequest:
        if not self.ids and not self.filter:
            raise ValueError("give ids, a filter, or both")
        return self


class CountRequest(Strict):
    namespace: Namespace
    filter: dict[str, Any] | None = None

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, v: Any) -> Any:
        return validate_filter(v)


# ----------------------------------------------------------------------------- profiles
