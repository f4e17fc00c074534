"""The chunker: token-counted chunks with overlap, and the text a chunk is embedded as."""

from __future__ import annotations

from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer


class Chunker:
    """Splits text into chunks of at most ``capacity`` model tokens, overlapping by ``overlap``."""

    def __init__(self, tokenizer: Tokenizer, capacity: int, overlap: int) -> None:
        if overlap >= capacity:
            raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({capacity})")
        self._splitter = TextSplitter.from_huggingface_tokenizer(
            tokenizer, capacity=capacity, overlap=overlap
        )

    def split(self, text: str) -> list[str]:
        return [c for _, c in self.spans(text)]

    def spans(self, text: str) -> list[tuple[int, str]]:
        """Each chunk with its offset in ``text`` (characters): ``text[o : o + len(c)] == c``.
        Chunks are trimmed, so only whitespace between them belongs to none."""
        return [(o, c) for o, c in self._splitter.chunk_indices(text) if c.strip()]


def passage_text(title: str | None, chunk: str) -> str:
    """What gets embedded and BM25-indexed for a chunk: its document title, then the chunk."""
    return f"{title}\n{chunk}" if title else chunk
