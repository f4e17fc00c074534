"""The visible text and the title of an HTML page, from a hand-written tokenizer that runs in linear time."""

from __future__ import annotations

import html
import re
import string

from knowledge_service.core import limits as L
from knowledge_service.pipelines.parsing.limits import TooMuchText

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
# Every regex here runs on user input, so each must run in linear time. Each is either anchored and
# bounded, or a run of one character class (or a literal) that cannot backtrack into itself; the
# comment beside each says which. Where a regex would need nested or ambiguous repetition (tags),
# plain string code does the work instead.
#
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


def parse_html(markup: str, max_chars: int) -> tuple[str | None, str]:
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
            name_end = _end_of(_TAG_NAME, markup, name_from)
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
        value = _end_of(_SPACES, markup, eq + 1)  # stops at the ">" at the latest
        quote = markup[value]
        if quote in "\"'":
            k = markup.find(quote, value + 1) + 1
            if not k:
                return -1
        else:
            k = _end_of(_UNQUOTED, markup, value)


def _end_of(pattern: re.Pattern[str], markup: str, pos: int) -> int:
    """Where ``pattern``'s match at ``pos`` ends (these patterns also match the empty string)."""
    match = pattern.match(markup, pos)
    assert match is not None
    return match.end()
