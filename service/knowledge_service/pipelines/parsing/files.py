"""Turn an uploaded file (plain text, Markdown, HTML or PDF) into a document ready for ingestion."""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.parsing.html import parse_html
from knowledge_service.pipelines.parsing.limits import ParseLimits, TooMuchText

Format = Literal["text", "markdown", "html", "pdf"]
Scalar = str | int | float | bool

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

# Every regex here runs on user input, so each must run in linear time. Each is either anchored and
# bounded, or a run of one character class (or a literal) that cannot backtrack into itself; the
# comment beside each says which. Where a regex would need nested or ambiguous repetition (the ATX
# heading), plain string code does the work instead.
_META_KEY = re.compile(L.METADATA_KEY_PATTERN)  # anchored, at most 64 characters
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # one character class, no repetition
_INT = re.compile(r"[-+]?\d+")  # one run of digits
# Alternatives tried once each; in each, every run is followed by a character the run cannot match,
# so a failed match backtracks at most once over each run: linear.
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)")
# Used with fullmatch on one line: the key run stops at a character it cannot match, and `(.*)` takes
# the rest of the line (lines have no newline), so this backtracks at most once over the key: linear.
_FRONT_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(?:[ \t]+(.*))?")
_COMMENT_START = re.compile(r"\s#")  # a literal after one character class, no repetition
# The line that closes front matter. At each line start: a literal, then one run of a class that
# cannot pass the end of the line, so a failed try backtracks over that line only: linear.
_FRONT_END = re.compile(r"^(?:---|\.\.\.)[^\S\n]*$", re.MULTILINE)


@dataclass(frozen=True)
class ParsedFile:
    """A file turned into the fields of a DocumentIn (doc_id may be overridden by the caller)."""

    doc_id: str
    title: str | None
    text: str
    metadata: dict[str, Scalar]


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
            title, text, pages = _parse_pdf(data, where, field, limits)
            metadata["pages"] = pages
        else:
            text = _decode(data, where, field)
            if fmt is None:
                sniff = text.lstrip()[:14].lower()
                fmt = "html" if sniff.startswith(("<!doctype html", "<html")) else "text"
            if fmt == "html":
                title, text = parse_html(text, limits.max_chars)
            elif fmt == "markdown":
                title, text, front = _parse_markdown(text, limits.max_chars)
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


# ----------------------------------------------------------------------------- detection, decoding


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


def _decode(data: bytes, where: str, field: str) -> str:
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            text = data[3:].decode("utf-8")
        elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")  # the BOM picks the byte order and is dropped
        else:
            text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise InvalidArgument(
            f"{where}: not UTF-8 text, HTML, Markdown or PDF; convert it to one of these "
            "(UTF-16 is read only with a byte-order mark)",
            field=field,
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ----------------------------------------------------------------------------- formats


def _parse_markdown(text: str, max_chars: int) -> tuple[str | None, str, dict[str, Scalar]]:
    front: dict[str, Scalar] = {}
    title: str | None = None
    body = text
    first, newline, rest = text.partition("\n")
    if first.rstrip() == "---" and newline and (closing := _FRONT_END.search(rest)):
        for line in _lines(rest, 0, closing.start()):
            match = _FRONT_PAIR.fullmatch(line.rstrip())
            value = _front_value(match[2]) if match and match[2] else None
            if value is None or not _META_KEY.match(match[1]):
                continue
            if match[1] == "title":
                title = str(value)
            elif match[1] not in ("filename", "format"):
                front[match[1]] = value
        body = rest[closing.end() + 1 :]
    if len(body.strip()) > max_chars:  # before looking at every line for a title
        raise TooMuchText(len(body.strip()))
    if title is None:
        fence = ""
        for line in _lines(body):
            stripped = line.strip()
            if stripped.startswith(("```", "~~~")):
                fence = "" if fence and stripped.startswith(fence) else fence or stripped[:3]
            elif not fence and (heading := _atx_h1(line)):
                title = heading
                break
    return title, body, front


def _lines(text: str, start: int = 0, stop: int | None = None) -> Iterator[str]:
    """The lines of text[start:stop] one by one (split all at once, short lines take 30 times the text)."""
    stop = len(text) if stop is None else stop
    while start <= stop:
        end = text.find("\n", start, stop)
        end = stop if end < 0 else end
        yield text[start:end]
        start = end + 1


def _atx_h1(line: str) -> str | None:
    """The text of a level-1 ATX heading ("# Title", "# Title #"), None for other lines; linear."""
    if line[:1] != "#" or line[1:2] not in (" ", "\t"):
        return None
    text = line[1:].strip(" \t")
    unclosed = text.rstrip("#")
    if unclosed != text and unclosed[-1:] in (" ", "\t"):  # a closing run of "#" after a space
        text = unclosed.rstrip(" \t")
    return text or None


def _front_value(raw: str) -> Scalar | None:
    """A YAML scalar on one line; None for what is not one (lists, maps, blocks, null)."""
    raw = raw.strip()
    if raw[:1] in ('"', "'"):
        quote = raw[0]
        if len(raw) < 2 or not raw.endswith(quote):
            return None
        if quote == '"':
            try:
                return str(json.loads(raw))
            except ValueError:
                return raw[1:-1]
        return raw[1:-1].replace("''", "'")
    raw = _COMMENT_START.split(raw, maxsplit=1)[0].strip()
    lowered = raw.lower()
    if not raw or raw[0] in "[{|>&*!" or lowered in ("null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(raw) and len(raw) <= 20 and -(2**63) <= (whole := int(raw)) < 2**63:
        return whole  # int64; int() of a longer run of digits is slow, and refused past 4,300
    if _FLOAT.fullmatch(raw) and math.isfinite(number := float(raw)):
        return number
    return raw


class _PdfBudget:
    """pypdf visitors that count a document's text as it is extracted, and stop past max_chars.

    visitor_text reports text a line at a time, so a page that is one long line would report
    nothing until its end: the bytes shown by text operators since the last report are counted
    too, one character each, so such a page stops at the limit as well. (A two-byte font counts
    double only until the end of its line, so that errs by at most a line.)
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0  # text of the pages done, and text reported on this page so far
        self.unreported = 0  # bytes of text shown on this page but not reported yet

    def text(self, text: str, *_: object) -> None:
        self.chars += len(text)
        self.unreported = 0
        self._check()

    def operator(self, operator: bytes, operands: list[object], *_: object) -> None:
        if operator in (b"Tj", b"TJ", b"'", b'"'):
            for operand in operands:
                for item in operand if isinstance(operand, list) else (operand,):
                    if isinstance(item, (str, bytes)):
                        self.unreported += len(item)
            self._check()

    def _check(self) -> None:
        if self.chars + self.unreported > self.max_chars:
            raise TooMuchText(self.chars + self.unreported)


def _parse_pdf(data: bytes, where: str, field: str, limits: ParseLimits) -> tuple[str | None, str, int]:
    from pypdf import PdfReader

    reader, opened, pages = None, False, 0
    texts: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        opened = not reader.is_encrypted or bool(reader.decrypt(""))
        if opened:
            pages = len(reader.pages)  # pypdf bounds the page tree it walks to count
            if pages > limits.max_pages:
                raise InvalidArgument(
                    f"{where}: {pages:,} pages is over the limit of {limits.max_pages:,} pages "
                    "(KNOWLEDGE_PARSE_MAX_PAGES); split it into smaller files",
                    field=field,
                )
            budget, total = _PdfBudget(limits.max_chars), 0
            for page in reader.pages:
                budget.chars, budget.unreported = total, 0
                raw = page.extract_text(visitor_text=budget.text, visitor_operand_before=budget.operator)
                if text := _CONTROL.sub("", raw or "").strip():
                    total += len(text) + 2 * bool(texts)  # "\n\n" between pages
                    texts.append(text)
                if total > limits.max_chars:
                    raise TooMuchText(total)
            title = reader.metadata.title if reader.metadata else None
    except (InvalidArgument, MemoryError):
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files
        problem = "not a readable PDF; repair or re-export it"
        if reader is not None and reader.is_encrypted and not opened:  # e.g. AES, no cryptography
            problem = "the PDF is encrypted in a way this server cannot open; remove the encryption"
        raise InvalidArgument(
            f"{where}: {problem} ({type(exc).__name__}: {str(exc)[:200]})", field=field
        ) from exc
    if not opened:
        raise InvalidArgument(
            f"{where}: the PDF is encrypted and cannot be opened without a password; "
            "remove the password or encryption and send it again",
            field=field,
        )
    text = "\n\n".join(texts)
    if not text:
        raise InvalidArgument(
            f"{where}: the PDF has no extractable text (scanned image?); OCR it first",
            field=field,
        )
    return (str(title) if title else None), text, pages
