"""ONNX Runtime backends (``onnx``, ``onnx-int8``) of the dense encoder and the reranker.

They run the verified export of the configured model (export.py): the fast tokenizer, then one
graph with pooling and normalisation inside it. Nothing of torch or sentence-transformers is on
their path, which is what makes a query encode a couple of milliseconds here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tokenizers import Tokenizer

from knowledge_service.core.threads import cores
from knowledge_service.models.base import DenseModel, RerankModel
from knowledge_service.models.export import Export, check_probes, find_or_export
from knowledge_service.models.session import Session


def _open(export: Export, threads: int) -> Session:
    tokenizer = Tokenizer.from_file(str(export.tokenizer))
    return Session(export.model, tokenizer, export.manifest["inputs"], threads=threads)


class OnnxEncoder(DenseModel):
    """The dense encoder on ONNX Runtime, fp32 (``onnx``) or with int8 weights (``onnx-int8``)."""

    def __init__(
        self, spec: str, *, backend: str, models_dirs: list[Path], batch_size: int = 32, threads: int = 0
    ) -> None:
        from knowledge_service.models.export import PROBE_TEXTS

        export = find_or_export("dense", spec, backend, models_dirs)
        self.spec = spec
        self.backend = backend
        self.vectors = "fp32" if backend == "onnx" else f"int8-{export.manifest['quantisation']}"
        # Dynamic quantisation scales activations per batch: measured here, a query's vector moves by
        # cosine 0.987 with the company it keeps. So every text of this backend is encoded alone,
        # side by side on the cores; alone is faster here too (SciFact chunks: 55-59/s against 40-45
        # in batches of 32, and 70-89/s two at once).
        self.batch_invariant = backend == "onnx"
        self.dim = int(export.manifest["dim"])
        self.batch_size = batch_size if self.batch_invariant else 1
        self._side_by_side = (
            None if self.batch_invariant else ThreadPoolExecutor(cores(), thread_name_prefix="encode-alone")
        )
        self.export = export
        self._session = _open(export, threads)
        check_probes(export, self._session.run(PROBE_TEXTS))

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Vectors in the order of ``texts``. Batches are made longest first, as sentence-transformers
        does, so each pads to lengths close to its own (chunks of a corpus: 1.2x the rate)."""
        if self._side_by_side is not None:  # each text alone
            if len(texts) == 1:
                return [self._alone(texts[0])]
            return list(self._side_by_side.map(self._alone, texts))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(texts), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, vector in zip(batch, self._session.run([texts[i] for i in batch]).tolist(), strict=True):
                out[i] = vector
        return out

    def _alone(self, text: str) -> list[float]:
        vector: list[float] = self._session.run([text])[0].tolist()
        return vector

    def tokenizer(self) -> Tokenizer:
        tok = Tokenizer.from_file(str(self.export.tokenizer))
        tok.no_truncation()
        tok.no_padding()
        return tok


class OnnxReranker(RerankModel):
    """The cross-encoder on ONNX Runtime; scores match the torch CrossEncoder's (activation included)."""

    def __init__(self, spec: str, *, backend: str, models_dirs: list[Path], threads: int = 0) -> None:
        from knowledge_service.models.export import PROBE_PAIRS

        export = find_or_export("rerank", spec, backend, models_dirs)
        self.spec = spec
        self.backend = backend
        self._session = _open(export, threads)
        check_probes(export, self._session.run_pairs(PROBE_PAIRS))

    def score_batch(self, query: str, passages: list[str]) -> list[float]:
        return [float(s) for s in self._session.run_pairs([(query, p) for p in passages])]
