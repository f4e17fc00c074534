"""Markdown: the scalar values of its YAML front matter, and a title from it or the first ATX heading."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

from knowledge_service.core import limits as L
from knowledge_service.pipelines.parsing.limits import TooMuchText

Scalar = str | int | float | bool  # a front-matter value, and so a metadata value of a parsed file

# Every regex here runs on user input, so each must run in linear time. Each is either anchored and
# bounded, or a run of one character class (or a literal) that cannot backtrack into itself; the
# comment beside each says which. Where a regex would need nested or ambiguous repetition (the ATX
# heading), plain string code does the work instead.
_META_KEY = re.compile(L.METADATA_KEY_PATTERN)  # anchored, at most 64 characters
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


def parse_markdown(text: str, max_chars: int) -> tuple[str | None, str, dict[str, Scalar]]:
    front: dict[str, Scalar] = {}
    title: str | None = None
    body = text
    first, newline, rest = text.partition("\n")
    if first.rstrip() == "---" and newline and (closing := _FRONT_END.search(rest)):
        for line in _lines(rest, 0, closing.start()):
            match = _FRONT_PAIR.fullmatch(line.rstrip())
            if match is None or not match[2]:
                continue
            value = _front_value(match[2])
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
