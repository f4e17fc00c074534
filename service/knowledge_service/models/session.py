"""An ONNX Runtime session with its tokenizer: texts (or text pairs) in, the graph's output out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

# Where a tokenizer's encoding keeps each model input.
_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


class Session:
    """An ONNX Runtime session with its tokenizer: texts (or pairs) in, the graph's output out."""

    def __init__(self, model: Path, tokenizer: Tokenizer, inputs: list[str], *, threads: int = 0) -> None:
        import onnxruntime as ort

        unknown = set(inputs) - set(_FIELDS)
        if unknown:
            raise ValueError(f"model inputs {sorted(unknown)} are not produced by a tokenizer")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads  # 0 = one per core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle ORT threads spin by default, taking the cores the event loop and the engine need
        # between two encodes; on a small shared CPU they should sleep instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizer
        self._inputs = inputs

    def run(self, texts: list[str]) -> np.ndarray:
        return self._feed(self._tokenizer.encode_batch(texts))

    def run_pairs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return self._feed(self._tokenizer.encode_batch(pairs))

    def _feed(self, encodings: list[Any]) -> np.ndarray:
        feeds = {
            name: np.array([getattr(e, _FIELDS[name]) for e in encodings], dtype=np.int64)
            for name in self._inputs
        }
        out: np.ndarray = self._session.run(None, feeds)[0]
        return out
