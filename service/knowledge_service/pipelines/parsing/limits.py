"""What parsing one file may cost (ParseLimits), and the exception that stops a parser past max_chars."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge_service.core import limits as L


@dataclass(frozen=True)
class ParseLimits:
    """What parsing one file may cost; parse_file enforces text and pages, ParserPool time and memory."""

    max_chars: int = L.MAX_DOC_CHARS
    max_pages: int = 2_000
    timeout_s: float = 20.0
    memory_mb: int = 256


class TooMuchText(BaseException):
    """Stops a parser once its text passes max_chars (a BaseException: pypdf catches Exception)."""

    def __init__(self, chars: int) -> None:
        super().__init__(chars)
        self.chars = chars  # characters produced when the parser was stopped
