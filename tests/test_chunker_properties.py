"""Properties of the chunker (models/chunker.py), checked by Hypothesis on the model's own
tokenizer: every character of a document that is not whitespace lands in some chunk, each chunk's
offset maps it back to the source text, chunks come in order, and none is over its token budget."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from knowledge_service.models.base import DenseModel
from knowledge_service.models.chunker import Chunker

# Words, numbers, punctuation, accents, CJK, emoji, combining marks, and every kind of break.
_pieces = st.one_of(
    st.sampled_from(["retrieval", "BM25", "Ünïcode", "naïve", "日本語の文", "😀", "e\u0301", "—", "3.14"]),
    st.sampled_from([" ", "  ", "\n", "\n\n", "\t", "\u00a0", "\r\n", ". ", ", ", "? "]),
    st.text(min_size=1, max_size=12),
)
texts = st.lists(_pieces, min_size=1, max_size=400).map("".join)
BUDGETS = [(16, 0), (16, 4), (32, 8), (64, 16), (200, 32)]  # (tokens, overlap); the last is the default


@pytest.fixture(scope="module")
def tokenizer(dense_encoder: DenseModel) -> Tokenizer:
    return dense_encoder.tokenizer()


def test_chunks_cover_the_text_map_back_to_it_and_keep_their_budget(tokenizer: Tokenizer) -> None:
    chunkers = {b: Chunker(tokenizer, *b) for b in BUDGETS}

    @settings(max_examples=3 * settings.default.max_examples)  # 300 in the suite
    @given(texts, st.sampled_from(BUDGETS))
    def check(text: str, budget: tuple[int, int]) -> None:
        spans = chunkers[budget].spans(text)
        covered = [False] * len(text)
        last = -1
        for offset, chunk in spans:
            assert text[offset : offset + len(chunk)] == chunk  # the offset maps back
            assert chunk.strip()  # never blank
            assert offset > last  # in order, each starting past the one before
            last = offset
            assert len(tokenizer.encode(chunk, add_special_tokens=False).ids) <= budget[0]
            covered[offset : offset + len(chunk)] = [True] * len(chunk)
        lost = [i for i, c in enumerate(text) if not covered[i] and not c.isspace()]
        assert not lost, f"characters in no chunk: {[text[i] for i in lost][:10]}"
        assert chunkers[budget].split(text) == [c for _, c in spans]

    check()
