"""Turn an uploaded file (plain text, Markdown, HTML or PDF) into a document ready for ingestion."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from . import limits as L
from .errors import InvalidArgument

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

_META_KEY = re.compile(L.METADATA_KEY_PATTERN)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)")
_FRONT_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(?:[ \t]+(.*))?")
_ATX_H1 = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")

_HTML_DROP = frozenset(("script", "style", "noscript", "template", "title"))
_HTML_PARAGRAPH = (
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl",
    "hr", "figure", "section", "article", "header", "footer", "main", "aside", "nav", "form",
    "address", "details", "fieldset",
)  # fmt: skip
_HTML_LINE = ("br", "div", "li", "dt", "dd", "tr", "caption", "figcaption", "summary", "option")
_LINE, _PARA = "\x00", "\x01"  # break markers: NUL never survives decoding, \x01 is removed
_HTML_BREAKS = {
    **dict.fromkeys(_HTML_PARAGRAPH, _PARA),
    **dict.fromkeys(_HTML_LINE, _LINE),
    **dict.fromkeys(("td", "th"), " "),
}


@dataclass(frozen=True)
class ParsedFile:
    """A file turned into the fields of a DocumentIn (doc_id may be overridden by the caller)."""

    doc_id: str
    title: str | None
    text: str
    metadata: dict[str, Scalar]


def parse_file(
    filename: str, data: bytes, content_type: str | None = None, *, field: str = "file"
) -> ParsedFile:
    """Parse one uploaded file; raise InvalidArgument (naming `field`) when it cannot be used."""
    doc_id = filename.replace("\\", "/")
    while doc_id.startswith(("./", "/")):
        doc_id = doc_id.removeprefix(".").removeprefix("/")
    name = PurePosixPath(doc_id).name
    if not name:
        raise InvalidArgument(f"{field}: the file has no name; give it one", field=field)
    where = f"{field} ({name})"
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
    if fmt == "pdf":
        title, text, pages = _parse_pdf(data, where, field)
        metadata["pages"] = pages
    else:
        text = _decode(data, where, field)
        if fmt is None:
            sniff = text.lstrip()[:14].lower()
            fmt = "html" if sniff.startswith(("<!doctype html", "<html")) else "text"
        if fmt == "html":
            title, text = _parse_html(text)
        elif fmt == "markdown":
            title, text, front = _parse_markdown(text)
            metadata.update(front)
        else:
            title = None
    text = text.strip()
    if not text:
        raise InvalidArgument(f"{where}: no text found; send a file with text", field=field)
    if len(text) > L.MAX_DOC_CHARS:
        raise InvalidArgument(
            f"{where}: {len(text)} characters of text is over the limit of {L.MAX_DOC_CHARS} "
            "(MAX_DOC_CHARS); split it into smaller files",
            field=field,
        )
    title = " ".join((title or "").split())[: L.MAX_TITLE_CHARS] or PurePosixPath(name).stem
    metadata.update(filename=name, format=fmt)
    return ParsedFile(doc_id=doc_id, title=title, text=text, metadata=metadata)


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


def _parse_html(markup: str) -> tuple[str | None, str]:
    from bs4 import BeautifulSoup, CData, NavigableString, Tag

    soup = BeautifulSoup(markup.replace(_PARA, " "), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if not title and (h1 := soup.find("h1")):
        title = h1.get_text(" ", strip=True)
    # Iterative walk (no tree edits: inserting into bs4 is linear per call, so quadratic overall).
    parts: list[str] = []
    stack: list[tuple[object, bool]] = [(soup, False)]  # (node or queued break marker, in <pre>)
    while stack:
        node, in_pre = stack.pop()
        if type(node) is str:
            parts.append(node)
        elif isinstance(node, Tag) and node.name not in _HTML_DROP:
            if mark := _HTML_BREAKS.get(node.name):  # a break before and after the element
                parts.append(mark)
                stack.append((mark, False))
            in_pre = in_pre or node.name == "pre"  # keep the line breaks of preformatted text
            stack.extend((child, in_pre) for child in reversed(node.contents))
        elif type(node) in (NavigableString, CData):  # not comments, doctypes, ...
            parts.append(str(node).replace("\n", _LINE) if in_pre else str(node))
    text = " ".join("".join(parts).split())  # HTML whitespace rules: every run is one space
    text = re.sub(r" ?[\x00\x01][\x00\x01 ]*", lambda m: "\n\n" if _PARA in m[0] else "\n", text)
    return title or None, text


def _parse_markdown(text: str) -> tuple[str | None, str, dict[str, Scalar]]:
    front: dict[str, Scalar] = {}
    title: str | None = None
    lines = text.split("\n")
    if lines[0].rstrip() == "---":
        end = next((i for i, ln in enumerate(lines[1:], 1) if ln.rstrip() in ("---", "...")), 0)
        if end:
            for line in lines[1:end]:
                match = _FRONT_PAIR.fullmatch(line.rstrip())
                value = _front_value(match[2]) if match and match[2] else None
                if value is None or not _META_KEY.match(match[1]):
                    continue
                if match[1] == "title":
                    title = str(value)
                elif match[1] not in ("filename", "format"):
                    front[match[1]] = value
            lines = lines[end + 1 :]
    if title is None:
        fence = ""
        for line in lines:
            stripped = line.strip()
            if stripped.startswith(("```", "~~~")):
                fence = "" if fence and stripped.startswith(fence) else fence or stripped[:3]
            elif not fence and (heading := _ATX_H1.fullmatch(line)):
                title = heading[1]
                break
    return title, "\n".join(lines), front


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
    raw = re.split(r"\s#", raw, maxsplit=1)[0].strip()
    lowered = raw.lower()
    if not raw or raw[0] in "[{|>&*!" or lowered in ("null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def _parse_pdf(data: bytes, where: str, field: str) -> tuple[str | None, str, int]:
    from pypdf import PdfReader

    reader, opened = None, False
    try:
        reader = PdfReader(io.BytesIO(data))
        opened = not reader.is_encrypted or bool(reader.decrypt(""))
        if opened:
            pages = [_CONTROL.sub("", page.extract_text() or "").strip() for page in reader.pages]
            title = reader.metadata.title if reader.metadata else None
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
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise InvalidArgument(
            f"{where}: the PDF has no extractable text (scanned image?); OCR it first",
            field=field,
        )
    return (str(title) if title else None), text, len(pages)
