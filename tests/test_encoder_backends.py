"""ONNX backends: exported offline from the configured model, once, cached, verified when loaded,
reproducing the torch model, and part of the index parameters where they change vectors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from knowledge_service.app import Knowledge, index_params
from knowledge_service.core.config import Settings
from knowledge_service.models import export
from knowledge_service.models.base import DenseModel
from knowledge_service.models.onnx import OnnxEncoder, OnnxReranker
from knowledge_service.models.registry import Options, load_dense, load_reranker
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest

SPEC = Settings().embed_model
QUERIES = ["how do vaccines train the immune system", "fusion of lexical and dense rankings", "bone density"]
PASSAGES = [
    "Vaccines expose the immune system to an antigen so that memory cells form.",
    "Reciprocal rank fusion merges the ranked lists of a lexical and a dense retriever.",
    "Low vitamin D is associated with reduced bone mineral density in older adults.",
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.fixture(scope="module")
def shared_dirs() -> tuple[Path, ...]:
    return Options.of(Settings()).models_dirs  # the session's exports (KNOWLEDGE_MODELS_DIR)


@pytest.fixture(scope="module")
def encoders(torch_encoder: DenseModel, shared_dirs: tuple[Path, ...]) -> dict[str, DenseModel]:
    return {
        "torch": torch_encoder,
        **{b: OnnxEncoder(SPEC, backend=b, models_dirs=list(shared_dirs)) for b in ("onnx", "onnx-int8")},
    }


def test_fp32_onnx_gives_the_torch_vectors(encoders: dict[str, DenseModel]) -> None:
    texts = QUERIES + PASSAGES
    torch_v, onnx_v = (np.array(encoders[b].encode(texts)) for b in ("torch", "onnx"))
    assert np.abs(torch_v - onnx_v).max() < 1e-4


def test_batches_are_made_longest_first_and_vectors_come_back_in_order(shared_dirs: tuple[Path, ...]) -> None:
    model = OnnxEncoder(SPEC, backend="onnx", models_dirs=list(shared_dirs), batch_size=2)
    texts = [PASSAGES[3], QUERIES[2], PASSAGES[1], QUERIES[0], PASSAGES[0]]  # lengths out of order
    alone = np.array([model.encode([t])[0] for t in texts])
    assert np.abs(np.array(model.encode(texts)) - alone).max() < 1e-5  # three batches, each text in its place


def test_an_int8_vector_does_not_depend_on_the_texts_encoded_with_it(encoders: dict[str, DenseModel]) -> None:
    model = encoders["onnx-int8"]
    texts = PASSAGES + QUERIES
    together = np.array(model.encode(texts))
    alone = np.array([model.encode([t])[0] for t in texts])
    reversed_ = np.array(model.encode(texts[::-1])[::-1])
    assert np.abs(together - alone).max() < 1e-6 and np.abs(reversed_ - alone).max() < 1e-6


def test_int8_vectors_stay_close_and_rank_the_same(encoders: dict[str, DenseModel]) -> None:
    torch_q, int8_q = (np.array(encoders[b].encode(QUERIES)) for b in ("torch", "onnx-int8"))
    torch_p, int8_p = (np.array(encoders[b].encode(PASSAGES)) for b in ("torch", "onnx-int8"))
    assert (torch_q * int8_q).sum(axis=1).min() > 0.95
    assert (torch_p * int8_p).sum(axis=1).min() > 0.95
    # each query's best passage is the same under both
    assert ((torch_q @ torch_p.T).argmax(axis=1) == (int8_q @ int8_p.T).argmax(axis=1)).all()


def test_the_chunker_counts_with_the_same_tokenizer(encoders: dict[str, DenseModel]) -> None:
    text = PASSAGES[0] * 40
    counts = {b: len(m.tokenizer().encode(text, add_special_tokens=False).ids) for b, m in encoders.items()}
    assert len(set(counts.values())) == 1 and counts["torch"] > 512  # truncation is off


def test_an_export_is_made_once_then_found(shared_dirs: tuple[Path, ...], tmp_path: Path) -> None:
    dirs = [tmp_path]
    first = export.find_or_export("dense", SPEC, "onnx", dirs)
    made = first.model.stat().st_mtime_ns
    again = export.find_or_export("dense", SPEC, "onnx", dirs)
    assert again.folder == first.folder and again.model.stat().st_mtime_ns == made
    assert [p.name for p in tmp_path.iterdir()] == [first.folder.name]  # no temporary folder is left
    assert first.manifest["sha256"] == export.file_digest(first.model)


def test_a_prebuilt_folder_is_searched_first_and_never_written(
    shared_dirs: tuple[Path, ...], tmp_path: Path
) -> None:
    prebuilt = export.find_or_export("dense", SPEC, "onnx-int8", list(shared_dirs)).folder.parent
    settings = Settings(data_dir=tmp_path, models_prebuilt_dir=prebuilt)
    model = load_dense(SPEC, backend="onnx-int8", options=Options.of(settings))
    assert isinstance(model, OnnxEncoder) and model.export.folder.parent == prebuilt
    assert not (tmp_path / "models").exists()


def test_a_damaged_export_is_detected_and_made_again(
    shared_dirs: tuple[Path, ...], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = export.find_or_export("dense", SPEC, "onnx", list(shared_dirs))
    copy = tmp_path / good.folder.name
    shutil.copytree(good.folder, copy)
    with (copy / "model.onnx").open("r+b") as f:  # flip bytes in the middle of the weights
        f.seek(f.seek(0, 2) // 2)
        f.write(b"\x00\x01\x02\x03" * 64)
    with caplog.at_level(logging.WARNING):
        fresh = export.find_or_export("dense", SPEC, "onnx", [tmp_path])
    assert "does not match the digest" in caplog.text
    assert export.file_digest(fresh.model) == fresh.manifest["sha256"] == good.manifest["sha256"]


def test_an_export_that_does_not_reproduce_the_model_is_never_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "FP32_MAX_ABS", -1.0)  # no export can be that close
    with pytest.raises(export.ExportError, match="differs from the torch model"):
        export.find_or_export("dense", SPEC, "onnx", [tmp_path])
    assert list(tmp_path.iterdir()) == []  # nothing half-made is left to be found later


def test_a_model_that_is_not_on_this_machine_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match="not on this machine: give a local path"):
        export.find_or_export("dense", "no-such-org/no-such-model", "onnx", [tmp_path])


def test_the_quantisation_follows_the_cpu() -> None:
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert export.quant_target() == ("avx512_vnni" if {"avx512_vnni", "avx_vnni"} & flags else "avx2")


def test_onnx_reranker_scores_are_the_cross_encoders(
    tiny_cross_encoder: Path, shared_dirs: tuple[Path, ...]
) -> None:
    passages = PASSAGES * 5  # more than one batch of 16
    torch_scores = load_reranker(str(tiny_cross_encoder)).score(QUERIES[0], passages)
    onnx = OnnxReranker(str(tiny_cross_encoder), backend="onnx", models_dirs=list(shared_dirs))
    assert np.abs(np.array(onnx.score(QUERIES[0], passages)) - np.array(torch_scores)).max() < 1e-4


def test_the_backend_is_an_index_parameter_only_where_it_changes_vectors(
    encoders: dict[str, DenseModel],
) -> None:
    params = {b: index_params(Settings(), m) for b, m in encoders.items()}
    assert params["torch"] == params["onnx"]
    assert params["onnx-int8"] != params["torch"]


async def test_switching_to_int8_re_indexes_documents_on_their_next_ingest(
    settings: Settings, encoders: dict[str, DenseModel]
) -> None:
    docs = [{"id": f"d{i}", "text": p} for i, p in enumerate(PASSAGES)]
    statuses = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        core = await Knowledge.open(settings, dense=encoders[backend])
        try:
            resp = await core.documents.ingest(IngestRequest(namespace="kb", documents=docs))
            statuses[backend] = {r.status for r in resp.results}
            found = await core.searcher.search(SearchRequest(namespace="kb", query=QUERIES[0]))
            assert found.results[0].doc_id == "d0"
        finally:
            await core.close()
    assert statuses == {"torch": {"created"}, "onnx": {"unchanged"}, "onnx-int8": {"updated"}}
