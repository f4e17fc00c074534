"""Turn an uploaded file (plain text, Markdown, HTML or PDF) into a document ready for ingestion."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.parsing.decode import decode_text
from knowledge_service.pipelines.parsing.html import parse_html
from knowledge_service.pipelines.parsing.limits import ParseLimits, TooMuchText
from knowledge_service.pipelines.parsing.markdown import Scalar, parse_markdown
from knowledge_service.pipelines.parsing.pdf import parse_pdf

Format = Literal["text", "markdown", "html", "pdf"]

_BY_EXTENSION: dict[str, Format] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
SUPPORTED_EXTENSIONS = frozenset(_BY_EXTENSION)
_BY_CONTENT_TYPE: dict[str, Format] = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
}


@dataclass(frozen=True)
class ParsedFile:
    """A file turned into the fields of a DocumentIn (doc_id may be overridden by the caller)."""

    doc_id: str
    title: str | None
    text: str
    metadata: dict[str, Scalar]

    def document(self, doc_id: str | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """The raw document to ingest: this file's id unless ``doc_id``, ``metadata`` over its own."""
        return {
            "id": self.doc_id if doc_id is None else doc_id,
            "text": self.text,
            "title": self.title,
            "metadata": {**self.metadata, **(metadata or {})},
        }


def parse_file(
    filename: str,
    data: bytes,
    content_type: str | None = None,
    *,
    field: str = "file",
    limits: ParseLimits = ParseLimits(),  # noqa: B008 (frozen)
) -> ParsedFile:
    """Parse one uploaded file; raise InvalidArgument (naming `field`) when it cannot be used.

    Text and pages are counted while they are extracted: parsing stops as soon as the text passes
    limits.max_chars or the PDF has more than limits.max_pages pages.
    """
    doc_id, name = _names(filename)
    if not name:
        raise InvalidArgument(f"{field}: the file has no name; give it one", field=field)
    where = file_label(filename, field)
    if len(data) > L.MAX_FILE_BYTES:
        raise InvalidArgument(
            f"{where}: {len(data)} bytes is over the limit of {L.MAX_FILE_BYTES} bytes per file "
            "(MAX_FILE_BYTES); split it into smaller files",
            field=field,
        )
    if not data.strip():
        raise InvalidArgument(f"{where}: the file is empty; send a file with text", field=field)

    fmt = _detect_format(name, data, content_type)  # None: decide after decoding
    metadata: dict[str, Scalar] = {}
    title: str | None
    try:
        if fmt == "pdf":
            title, text, pages = parse_pdf(data, where, field, limits)
            metadata["pages"] = pages
        else:
            text = decode_text(data, where, field)
            if fmt is None:
                sniff = text.lstrip()[:14].lower()
                fmt = "html" if sniff.startswith(("<!doctype html", "<html")) else "text"
            if fmt == "html":
                title, text = parse_html(text, limits.max_chars)
            elif fmt == "markdown":
                title, text, front = parse_markdown(text, limits.max_chars)
                metadata.update(front)
            else:
                title = None
        text = text.strip()
        if len(text) > limits.max_chars:
            raise TooMuchText(len(text))
    except TooMuchText as exc:
        raise InvalidArgument(
            f"{where}: more than {limits.max_chars} characters of text (MAX_DOC_CHARS); "
            "split it into smaller files",
            field=field,
        ) from exc
    if not text:
        raise InvalidArgument(f"{where}: no text found; send a file with text", field=field)
    title = " ".join((title or "").split())[: L.MAX_TITLE_CHARS].rstrip() or PurePosixPath(name).stem
    metadata.update(filename=name, format=fmt)
    return ParsedFile(doc_id=doc_id, title=title, text=text, metadata=metadata)


def file_label(filename: str, field: str = "file") -> str:
    """How messages name an uploaded file: the field and the file's base name, `files[2] (book.pdf)`."""
    name = _names(filename)[1]
    return f"{field} ({name})" if name else field


def iter_files(paths: list[Path]) -> Iterator[tuple[Path, str]]:
    """Expand files and folders into (path, doc_id) pairs.

    A folder is walked recursively in sorted order, skipping hidden files and folders and files
    whose extension is not in SUPPORTED_EXTENSIONS; doc_id is the path relative to that folder.
    A file named directly is always yielded, with its name as doc_id. A path that does not exist
    raises InvalidArgument.
    """
    for root in paths:
        if root.is_file():
            yield root, root.name
            continue
        if not root.is_dir():
            raise InvalidArgument(f"{root}: no such file or folder", field="paths")
        found: list[tuple[str, Path]] = []
        for folder, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fname in filenames:
                path = Path(folder, fname)
                if not fname.startswith(".") and _extension(fname) in SUPPORTED_EXTENSIONS:
                    found.append((path.relative_to(root).as_posix(), path))
        for doc_id, path in sorted(found):
            yield path, doc_id


# ----------------------------------------------------------------------------- file names, detection


def _names(filename: str) -> tuple[str, str]:
    """(doc_id, base name) of an uploaded file name: forward slashes, no leading ./ or /."""
    path, start = filename.replace("\\", "/"), 0
    while path.startswith(("./", "/"), start):  # an index, not repeated slicing: linear
        start += 2 if path.startswith("./", start) else 1
    doc_id = path[start:]
    return doc_id, PurePosixPath(doc_id).name


def _extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _detect_format(name: str, data: bytes, content_type: str | None) -> Format | None:
    """By extension, then content type, then PDF magic; None when only the text can tell."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = _BY_EXTENSION.get(_extension(name)) or _BY_CONTENT_TYPE.get(mime)
    return fmt or ("pdf" if data.lstrip()[:5] == b"%PDF-" else None)
