"""The dense encoder: a sentence-transformers bi-encoder producing unit-length vectors."""

from __future__ import annotations

import logging

from tokenizers import Tokenizer

from knowledge_service.models.base import DenseModel, resolve_model

log = logging.getLogger(__name__)


class DenseEncoder(DenseModel):
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
