"""Turn an uploaded file (plain text, Markdown, HTML or PDF) into a document ready for ingestion."""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument
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
# heading, HTML tags), plain string code does the work instead.
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

_HTML_DROP = frozenset(("script", "style", "noscript", "template", "title"))
_HTML_RAW = ("script", "style")  # raw text: no markup inside, up to the matching end tag
_HTML_PARAGRAPH = (
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl",
    "hr", "figure", "section", "article", "header", "footer", "main", "aside", "nav", "form",
    "address", "details", "fieldset",
)  # fmt: skip
_HTML_LINE = ("br", "div", "li", "dt", "dd", "tr", "caption", "figcaption", "summary", "option")
_SPACE, _LINE, _PARA = 1, 2, 3  # separators owed between two words; the strongest one wins
_SEPARATORS = ("", " ", "\n", "\n\n")
_HTML_BREAKS = {
    **dict.fromkeys(_HTML_PARAGRAPH, _PARA),
    **dict.fromkeys(_HTML_LINE, _LINE),
    **dict.fromkeys(("td", "th"), _SPACE),
}
# Runs of one character class matched at a position (cannot backtrack), and a literal followed by
# one character: all linear. html.parser is not used: on this Python it is quadratic on unclosed
# tags (75 KB of "<a " takes 40 s) and raises AssertionError on "<![" junk. Nor is lxml: libxml2's
# HTML parser, in the recover mode that real pages need, returns partial or empty text without an
# error when an allocation fails, which under the parse workers' memory cap loses text silently.
_ASCII_LETTERS = frozenset(string.ascii_letters)
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_SPACES = re.compile(r"[\t\n\f\r ]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_RAW_END = {tag: re.compile(rf"</{tag}[\t\n\f\r />]", re.IGNORECASE) for tag in _HTML_RAW}
# html.unescape calls int() on every digit of a decimal reference: slow, and a ValueError past 4,300
# digits. A literal then one run of digits: linear.
_LONG_DECIMAL_REF = re.compile(r"&#([0-9]{8,})")


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
                title, text = _parse_html(text, limits.max_chars)
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


def _parse_html(markup: str, max_chars: int) -> tuple[str | None, str]:
    out = _HtmlText(max_chars)
    _scan_html(markup, out)
    return out.title(), out.joined()


class _HtmlText:
    """The visible text of a page as its tokens arrive, in memory linear in the text it keeps.

    No tree: counters say which dropped elements and <pre> are open, and the break owed before the
    next word is the strongest seen since the last word (HTML whitespace collapsing). The text of
    the first <title> and of the first <h1> is kept for the title.
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.blocks: list[str] = []  # the text so far: blocks, then parts
        self.parts: list[str] = []
        self.chars = 0  # characters in blocks and parts
        self.owed = 0  # separator before the next word: 0, _SPACE, _LINE or _PARA
        self.dropped = dict.fromkeys(_HTML_DROP, 0)  # open elements whose text is not shown
        self.hidden = 0  # sum of dropped
        self.pre = 0  # open <pre> elements: their line breaks are kept
        self.heads: dict[str, list[str]] = {"title": [], "h1": []}  # text of the first of each
        self.head_depth = {"title": 0, "h1": 0}  # > 0 while the first one is open
        self.head_chars = {"title": 0, "h1": 0}
        self.heads_done: set[str] = set()

    def joined(self) -> str:
        return "".join(self.blocks) + "".join(self.parts)

    def title(self) -> str | None:
        return " ".join(self.heads["title"]) or " ".join(self.heads["h1"]) or None

    def text(self, data: str) -> None:
        if self.head_depth["title"] or self.head_depth["h1"]:
            self._head_text(data)
        if self.hidden:
            return
        if not self.pre:
            self._words(data)
            return
        for n, line in enumerate(data.split("\n")):
            if n and self.owed < _LINE:
                self.owed = _LINE
            self._words(line)

    def _head_text(self, data: str) -> None:
        for head, depth in self.head_depth.items():
            if depth and not self.dropped["template"] and self.head_chars[head] <= L.MAX_TITLE_CHARS:
                if piece := " ".join(data.split()):  # text nodes joined by a space, like get_text(" ")
                    self.heads[head].append(piece)
                    self.head_chars[head] += len(piece) + 1

    def _words(self, data: str) -> None:
        words = data.split()
        if not words or data[0].isspace():
            self.owed = self.owed or (_SPACE if data else 0)
            if not words:
                return
        chunk = " ".join(words)
        if self.chars and self.owed:  # nothing is owed before the first word: the text is stripped
            chunk = _SEPARATORS[self.owed] + chunk
        self.owed = _SPACE if data[-1].isspace() else 0
        self.parts.append(chunk)
        self.chars += len(chunk)
        if self.chars > self.max_chars:
            raise TooMuchText(self.chars)
        if len(self.parts) >= 4096:  # short strings take ~50 bytes each: join them in blocks
            self.blocks.append("".join(self.parts))
            self.parts.clear()

    def start(self, tag: str) -> None:
        if tag in self.head_depth and (self.head_depth[tag] or tag not in self.heads_done):
            self.head_depth[tag] += 1
        if tag in self.dropped:
            self.dropped[tag] += 1
            self.hidden += 1
        elif not self.hidden:
            if (level := _HTML_BREAKS.get(tag, 0)) > self.owed:
                self.owed = level
            self.pre += tag == "pre"

    def end(self, tag: str) -> None:
        if self.head_depth.get(tag):
            self.head_depth[tag] -= 1
            if not self.head_depth[tag]:
                self.heads_done.add(tag)
        if tag in self.dropped:
            if self.dropped[tag]:
                self.dropped[tag] -= 1
                self.hidden -= 1
        elif not self.hidden:
            if (level := _HTML_BREAKS.get(tag, 0)) > self.owed:
                self.owed = level
            self.pre -= tag == "pre" and self.pre > 0


def _scan_html(markup: str, out: _HtmlText) -> None:
    """Tokenise HTML in one pass and in linear time, giving `out` its text and tags.

    Comments, doctypes, processing instructions and bogus markup are skipped; CDATA sections are
    text. A construct still open at the end of the input (a tag, comment or script) ends the text
    there, as in a browser. Each search starts past the previous one, so no character is scanned
    twice, whatever the input.
    """
    find, i, text_from = markup.find, 0, 0
    while (j := find("<", i)) >= 0:
        c = markup[j + 1 : j + 2]
        is_end = c == "/"
        name_from = j + 1 + is_end
        tag = None
        if markup[name_from : name_from + 1] in _ASCII_LETTERS:
            name_end = _TAG_NAME.match(markup, name_from).end()
            tag, k = markup[name_from:name_end].lower(), _tag_end(markup, name_end)
        elif markup.startswith("<!--", j):
            k = _past(markup, "-->", j + 2)  # from j + 2: "<!-->" and "<!--->" are comments too
        elif markup.startswith("<![CDATA[", j):
            k = _past(markup, "]]>", j + 9)
        elif c in ("!", "?", "/"):  # doctype, bogus comment, processing instruction, "</>"
            k = _past(markup, ">", j + 2)
        else:  # a "<" that starts nothing is text
            i = j + 1
            continue
        if k < 0:  # never closed: the rest of the input is inside it
            break
        if j > text_from:
            _flush(markup, text_from, j, out)
        i = text_from = k
        if tag is None:
            if c == "!" and markup.startswith("<![CDATA[", j):
                out.text(markup[j + 9 : k - 3])
        elif is_end:
            out.end(tag)
        else:
            out.start(tag)
            if markup[k - 2] == "/":  # <br/>
                out.end(tag)
            elif tag in _RAW_END:  # script, style: skip to their end tag, they are never shown
                found = _RAW_END[tag].search(markup, k)
                i = text_from = _tag_end(markup, found.end() - 1) if found else -1
                if i < 0:
                    return
                out.end(tag)
    else:
        _flush(markup, text_from, len(markup), out)
        return
    _flush(markup, text_from, j, out)


def _past(markup: str, closer: str, start: int) -> int:
    """Index just past the first `closer` from `start`, or -1."""
    found = markup.find(closer, start)
    return found + len(closer) if found >= 0 else -1


def _flush(markup: str, start: int, end: int, out: _HtmlText) -> None:
    text = markup[start:end]
    if "&#" in text:
        text = _LONG_DECIMAL_REF.sub(_short_decimal_ref, text)
    if text:
        out.text(html.unescape(text))


def _short_decimal_ref(match: re.Match[str]) -> str:
    """At most 7 significant digits (more is past U+10FFFF, which html.unescape makes U+FFFD)."""
    digits = match[1].lstrip("0") or "0"
    return "&#" + (digits if len(digits) <= 7 else "1114112")


def _tag_end(markup: str, k: int) -> int:
    """Index just past the ">" closing a tag whose attributes start at k; -1 if it never closes.

    A ">" inside a quoted attribute value does not close the tag. The ">" found is kept until the
    scan passes it, so each character is looked at once: linear in the tag's length.
    """
    gt = -1
    while True:
        if gt < k:
            gt = markup.find(">", k)
            if gt < 0:
                return -1
        eq = markup.find("=", k, gt)
        if eq < 0:
            return gt + 1
        value = _SPACES.match(markup, eq + 1).end()  # stops at the ">" at the latest
        quote = markup[value]
        if quote in "\"'":
            k = markup.find(quote, value + 1) + 1
            if not k:
                return -1
        else:
            k = _UNQUOTED.match(markup, value).end()


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
