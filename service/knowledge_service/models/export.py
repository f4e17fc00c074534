"""ONNX exports of the configured models, made offline once, cached, and verified when loaded.

An export is made from the model's local files (a folder, or the Hugging Face cache; never the
network) by tracing the whole sentence-transformers pipeline, pooling and normalisation included,
so the runtime only tokenises and runs one graph. ``onnx-int8`` then quantises its weights
dynamically with ONNX Runtime's quantiser, in the configuration the CPU calls for (``quant_target``).

Each export lives in its own folder, named after everything that changes its output (kind, model
files' digest, backend, quantisation target, recipe version), with ``model.onnx``,
``tokenizer.json`` and ``manifest.json``. Before a folder is published (renamed into place, so a
crash leaves nothing half-written) its outputs are checked against the torch model on probe inputs;
when loaded, the file's digest and the probe outputs are checked again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from knowledge_service.models.base import model_slug, resolve_model
from knowledge_service.models.session import Session

log = logging.getLogger(__name__)

Kind = Literal["dense", "rerank"]
RECIPE = 1  # bump when the export recipe changes: older exports are then made again
ONNX_BACKENDS = ("onnx", "onnx-int8")

# Probe inputs: short and long (past the model's length, so truncation is checked too).
PROBE_TEXTS = [
    "what causes protein misfolding in neurons",
    "Vitamin D deficiency is associated with reduced bone mineral density in elderly women.",
    "hello",
    "The quick brown fox jumps over the lazy dog. " * 80,
]
PROBE_PAIRS = [(q, p) for q in PROBE_TEXTS[:2] for p in PROBE_TEXTS[1:]]

# How close an export must be to the torch model on the probes. Quantised vectors are compared by
# cosine (measured here: 0.98 or better); quantised rerank scores by their correlation, or by
# their distance where the reference scores barely vary.
FP32_MAX_ABS = 1e-4
INT8_MIN_COSINE = 0.95
INT8_MIN_SCORE_CORR = 0.95
INT8_MAX_SCORE_ABS = 0.01  # or scores this close (a model whose scores barely vary has no correlation)
LOAD_MAX_ABS = 1e-3  # a loaded export against its own recorded probe outputs


class ExportError(RuntimeError):
    """The export could not be made or does not reproduce the model."""


def quant_target() -> str:
    """The dynamic-quantisation configuration this CPU wants: ``avx512_vnni`` (VNNI int8 dot
    products, full-range weights), ``avx2`` (no VNNI: 7-bit weights, which avoids the saturation
    of u8 x s8 products there), or ``arm64``."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "arm64"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    return "avx512_vnni" if {"avx512_vnni", "avx_vnni"} & set(flags) else "avx2"


@dataclass(frozen=True)
class Export:
    """A verified export on disk."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def model(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def tokenizer(self) -> Path:
        return self.folder / "tokenizer.json"


def find_or_export(kind: Kind, spec: str, backend: str, dirs: list[Path]) -> Export:
    """The export of ``spec`` for ``backend``: found in one of ``dirs`` (searched in order), or
    made into the last one (the writable one)."""
    if backend not in ONNX_BACKENDS:
        raise ValueError(f"not an ONNX backend: {backend!r}")
    source = local_model_folder(spec)
    target = quant_target() if backend == "onnx-int8" else "fp32"
    name = f"{kind}-{model_slug(spec)}-{backend}-{target}-r{RECIPE}-{folder_digest(source)[:16]}"
    for d in dirs:
        if (d / name / "manifest.json").is_file():
            try:
                return load_export(d / name)
            except ExportError as exc:
                log.warning("export %s is not usable (%s); making it again", d / name, exc)
                if d == dirs[-1]:
                    shutil.rmtree(d / name, ignore_errors=True)
    out = dirs[-1] / name
    _make(kind, spec, source, backend, target, out)
    return load_export(out)


def load_export(folder: Path) -> Export:
    """Read an export's manifest and check its model file against the recorded digest."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"unreadable manifest: {exc}") from None
    if file_digest(folder / "model.onnx") != manifest.get("sha256"):
        raise ExportError("model.onnx does not match the digest in its manifest")
    return Export(folder, manifest)


def check_probes(export: Export, outputs: np.ndarray) -> None:
    """A loaded export must reproduce the outputs it recorded when it was made."""
    recorded = np.asarray(export.manifest["probe_outputs"], dtype=np.float32)
    if outputs.shape != recorded.shape or float(np.abs(outputs - recorded).max()) > LOAD_MAX_ABS:
        raise ExportError(f"{export.folder.name}: outputs on the probe inputs differ from the recorded ones")


def local_model_folder(spec: str) -> Path:
    """The model's files on this machine: its folder, or its snapshot in the Hugging Face cache."""
    path = Path(resolve_model(spec))
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError):  # not cached, or not a name: a missing path
        raise ExportError(
            f"model {spec!r} is not on this machine: give a local path, or fetch it into the "
            "Hugging Face cache first (exports are made offline)"
        ) from None


def folder_digest(folder: Path) -> str:
    """A digest of every file of a model folder (names and contents)."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and "onnx" not in p.parts):
        h.update(str(f.relative_to(folder)).encode() + b"\0")
        h.update(file_digest(f).encode())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _make(kind: Kind, spec: str, source: Path, backend: str, target: str, out: Path) -> None:
    """Export, quantise, verify against torch, then publish ``out`` atomically."""
    log.info("exporting %s model %s for %s (%s)", kind, spec, backend, target)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        traced = _trace(kind, spec, source, work / "fp32.onnx")
        model = work / "model.onnx"
        if backend == "onnx-int8":
            _quantise(work / "fp32.onnx", model, target)
            (work / "fp32.onnx").unlink()
        else:
            (work / "fp32.onnx").rename(model)
        outputs = run_probes(kind, model, traced["tokenizer"], traced["inputs"])
        _verify(kind, backend, traced["reference"], outputs)
        traced["tokenizer"].save(str(work / "tokenizer.json"))
        manifest = {
            "kind": kind,
            "model": spec,
            "backend": backend,
            "quantisation": target,
            "recipe": RECIPE,
            "inputs": traced["inputs"],
            "dim": traced["dim"],
            "sha256": file_digest(model),
            "probe_outputs": outputs.tolist(),
        }
        (work / "manifest.json").write_text(json.dumps(manifest))
        try:
            os.rename(work, out)
        except OSError:  # another process published the same export first: keep theirs
            if not (out / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _trace(kind: Kind, spec: str, source: Path, dest: Path) -> dict[str, Any]:
    """Trace the torch pipeline into ONNX; returns its tokenizer, input names, probe outputs."""
    import torch
    from tokenizers import Tokenizer

    if kind == "dense":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(source), device="cpu").eval()
        hf_tok, max_length = st.tokenizer, st.max_seq_length
        reference = st.encode(PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
        dim = int(reference.shape[1])
        names = list(hf_tok.model_input_names)

        class Graph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = st  # a submodule: its weights are exported as weights

            def forward(self, *args: torch.Tensor) -> torch.Tensor:
                out = self.model(dict(zip(names, args, strict=True)))["sentence_embedding"]
                return torch.nn.functional.normalize(out, dim=-1)

        sample = hf_tok(PROBE_TEXTS[:2], padding=True, truncation=True, return_tensors="pt")
    else:
        from sentence_transformers import CrossEncoder

        ce = CrossEncoder(str(source), device="cpu").eval()
        hf_tok, max_length = ce.tokenizer, ce.max_length or ce.tokenizer.model_max_length
        reference = np.asarray(ce.predict(PROBE_PAIRS, show_progress_bar=False), dtype=np.float32)
        dim, activation = 1, ce.get_default_activation_fn()
        names = list(hf_tok.model_input_names)

        class Graph(torch.nn.Module):  # type: ignore[no-redef]
            def __init__(self) -> None:
                super().__init__()
                self.model = ce

            def forward(self, *args: torch.Tensor) -> torch.Tensor:
                scores = self.model(dict(zip(names, args, strict=True)))["scores"]
                return activation(scores).reshape(-1)

        q, p = zip(*PROBE_PAIRS[:2], strict=True)
        sample = hf_tok(list(q), list(p), padding=True, truncation=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    with torch.inference_mode():
        torch.onnx.export(
            Graph().eval(),
            tuple(sample[n] for n in names),
            str(dest),
            input_names=names,
            output_names=["output"],
            dynamic_axes={**axes, "output": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    tok = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
    tok.enable_truncation(int(min(max_length, hf_tok.model_max_length)))
    tok.enable_padding(pad_id=hf_tok.pad_token_id, pad_token=hf_tok.pad_token)
    return {"tokenizer": tok, "inputs": names, "reference": reference, "dim": dim}


def _quantise(src: Path, dest: Path, target: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel int8 weights: measured here, cosine to fp32 0.98 (queries) and 0.99 (passages),
    # against 0.95 per tensor.
    quantize_dynamic(
        str(src), str(dest), weight_type=QuantType.QInt8, per_channel=True, reduce_range=target == "avx2"
    )


def run_probes(kind: Kind, model: Path, tokenizer: Any, inputs: list[str]) -> np.ndarray:
    session = Session(model, tokenizer, inputs, threads=1)
    return session.run(PROBE_TEXTS) if kind == "dense" else session.run_pairs(PROBE_PAIRS)


def _verify(kind: Kind, backend: str, reference: np.ndarray, outputs: np.ndarray) -> None:
    if backend == "onnx":
        worst = float(np.abs(outputs - reference).max())
        if worst > FP32_MAX_ABS:
            raise ExportError(f"the fp32 export differs from the torch model by {worst:.2e} on the probes")
    elif kind == "dense":
        cosine = float((outputs * reference).sum(axis=1).min())
        if cosine < INT8_MIN_COSINE:
            raise ExportError(
                f"the int8 export's vectors reach only cosine {cosine:.3f} to the torch model's"
            )
    else:
        corr = float(np.corrcoef(outputs, reference)[0, 1]) if np.ptp(reference) > FP32_MAX_ABS else 1.0
        if float(np.abs(outputs - reference).max()) > INT8_MAX_SCORE_ABS and not corr >= INT8_MIN_SCORE_CORR:
            raise ExportError(f"the int8 export's scores correlate only {corr:.3f} with the torch model's")
