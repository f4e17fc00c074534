"""Text, title and page count of a PDF (pypdf): refused past max_pages, stopped once past max_chars."""

from __future__ import annotations

import io
import re

from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.parsing.limits import ParseLimits, TooMuchText

# Every regex here runs on user input, so each must run in linear time.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # one character class, no repetition


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


def parse_pdf(data: bytes, where: str, field: str, limits: ParseLimits) -> tuple[str | None, str, int]:
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
