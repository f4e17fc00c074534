"""Evaluation helpers: BEIR loading, ir_measures metrics, chunk collapsing, reference BM25."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import qdrant_edge as qe

from conftest import dataset
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.evaluation.datasets import load_beir
from knowledge_service.pipelines.evaluation.scoring import collapse_to_documents, evaluate, evaluate_per_query
from oracle import engine_tokens, rank_bm25_run

K, B, AVG_LEN = 1.2, 0.75, 256.0


@pytest.fixture(scope="module")
def cranfield():
    return load_beir(dataset("cranfield"), "test")


@pytest.fixture(scope="module")
def bm25():
    return qe.Bm25(qe.Bm25Config(k=K, b=B, avg_len=AVG_LEN))


def write_beir(root: Path, corpus_text: str = "alpha beta") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = [{"_id": "d1", "title": "One", "text": corpus_text}, {"_id": "d2", "text": "gamma"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": "q1", "text": "alpha"}, {"_id": "q2", "text": "unjudged"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir(exist_ok=True)
    header = "query-id\tcorpus-id\tscore\n"
    (root / "qrels" / "test.tsv").write_text(header + "q1\td1\t2\nq1\td2\t0\n")
    (root / "qrels" / "dev.tsv").write_text(header + "q2\td2\t1\n")
    return root


# --- load_beir ---------------------------------------------------------------------------------


def test_load_beir_cranfield(cranfield):
    assert cranfield.name == "cranfield"
    assert len(cranfield.corpus) == 1400
    assert len(cranfield.queries) == len(cranfield.qrels) == 225
    assert set(cranfield.queries) == set(cranfield.qrels)
    assert sum(len(j) for j in cranfield.qrels.values()) == 1612
    assert {g for j in cranfield.qrels.values() for g in j.values()} == {1, 2, 3, 4}
    title, text = cranfield.corpus["1"]
    assert title.startswith("experimental investigation of the aerodynamics")
    assert text.startswith(title)
    corpus_bytes = (dataset("cranfield") / "corpus.jsonl").read_bytes()
    assert cranfield.fingerprint == hashlib.sha256(corpus_bytes).hexdigest()


def test_load_beir_keeps_only_judged_queries(tmp_path):
    data = load_beir(write_beir(tmp_path / "toy"), "test")
    assert data.name == "toy"
    assert data.corpus == {"d1": ("One", "alpha beta"), "d2": ("", "gamma")}
    assert data.queries == {"q1": "alpha"}
    assert data.qrels == {"q1": {"d1": 2, "d2": 0}}
    assert data.texts() == {"d1": "One. alpha beta", "d2": "gamma"}
    assert load_beir(tmp_path / "toy", "dev").queries == {"q2": "unjudged"}


def test_fingerprint_follows_corpus_bytes(tmp_path):
    first = load_beir(write_beir(tmp_path / "a"), "test").fingerprint
    assert load_beir(write_beir(tmp_path / "b"), "test").fingerprint == first
    assert load_beir(write_beir(tmp_path / "c", "alpha beta!"), "test").fingerprint != first


def test_missing_split_lists_available(tmp_path):
    with pytest.raises(InvalidArgument, match=r"'train'.*available splits: dev, test"):
        load_beir(write_beir(tmp_path / "toy"), "train")


def test_missing_split_on_cranfield(cranfield):
    with pytest.raises(InvalidArgument, match="available splits: test"):
        load_beir(dataset("cranfield"), "train")


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(InvalidArgument, match="dataset '.*nope': folder not found"):
        load_beir(tmp_path / "nope", "test")
    root = write_beir(tmp_path / "toy")
    (root / "queries.jsonl").unlink()
    with pytest.raises(InvalidArgument, match=r"dataset '.*toy': queries\.jsonl not found"):
        load_beir(root, "test")
    root = write_beir(tmp_path / "noqrels")
    for tsv in (root / "qrels").iterdir():
        tsv.unlink()
    with pytest.raises(InvalidArgument, match="available splits: none"):
        load_beir(root, "test")


def test_malformed_lines_name_file_and_line_but_not_their_content(tmp_path):
    root = write_beir(tmp_path / "toy")
    with (root / "qrels" / "test.tsv").open("a") as handle:
        handle.write("q1\tsecret-doc\n")
    with pytest.raises(InvalidArgument, match=r"qrels/test\.tsv line 4: expected 'query-id<TAB>") as err:
        load_beir(root, "test")
    assert "secret-doc" not in err.value.message
    root = write_beir(tmp_path / "json")
    with (root / "queries.jsonl").open("a") as handle:
        handle.write('{"_id": "q3", "text": "secret-text"\n')
    with pytest.raises(InvalidArgument, match=r"queries\.jsonl line 3: not valid JSON") as err:
        load_beir(root, "test")
    assert "secret" not in err.value.message and "Expecting" not in err.value.message


def test_judged_queries_without_text_are_counted_not_listed(tmp_path):
    root = write_beir(tmp_path / "toy")
    with (root / "qrels" / "test.tsv").open("a") as handle:
        handle.write("secret-query\td1\t1\n")
    with pytest.raises(
        InvalidArgument, match=r"1 of the 2 judged queries in qrels/test\.tsv have no text"
    ) as err:
        load_beir(root, "test")
    assert "secret" not in err.value.message


def test_without_the_corpus_only_queries_and_qrels_are_read(tmp_path):
    root = write_beir(tmp_path / "toy")
    (root / "corpus.jsonl").write_text("not json at all\n")
    data = load_beir(root, "test", with_corpus=False)
    assert (data.corpus, data.fingerprint) == ({}, None)
    assert data.queries == {"q1": "alpha"} and data.qrels == {"q1": {"d1": 2, "d2": 0}}
    (root / "corpus.jsonl").unlink()
    assert load_beir(root, "test", with_corpus=False).queries == {"q1": "alpha"}
    with pytest.raises(InvalidArgument, match=r"corpus\.jsonl not found"):
        load_beir(root, "test")


def test_a_root_confines_the_folder_and_names_it_relative_to_the_root(tmp_path):
    root = tmp_path / "datasets"
    write_beir(root / "toy")
    assert load_beir("toy", "test", root=root, with_corpus=False).queries == {"q1": "alpha"}
    assert load_beir(root / "toy", "dev", root=root).queries == {"q2": "unjudged"}
    write_beir(tmp_path / "outside")
    for escape in ["../outside", str(tmp_path / "outside"), "toy/../../outside"]:
        with pytest.raises(InvalidArgument, match="inside the evaluation datasets folder") as err:
            load_beir(escape, "test", root=root)
        assert str(tmp_path) not in err.value.message
    with pytest.raises(
        InvalidArgument, match=r"^dataset 'toy': split 'train' not found \(no qrels/train\.tsv\)"
    ):
        load_beir("toy", "train", root=root)
    with pytest.raises(InvalidArgument, match="split: must name a qrels file"):
        load_beir("toy", "../../outside/qrels/test", root=root)


def test_unusable_names_and_symlink_loops_are_invalid_arguments(tmp_path):
    root = tmp_path / "datasets"
    write_beir(root / "toy")
    (root / "loop-a").symlink_to(root / "loop-b")
    (root / "loop-b").symlink_to(root / "loop-a")
    (root / "toy" / "queries.jsonl").unlink()
    (root / "toy" / "queries.jsonl").symlink_to(root / "loop-a")
    for name in ["bad\x00name", "x" * 300, "loop-a", "loop-a/inner", "toy"]:
        with pytest.raises(InvalidArgument) as err:
            load_beir(name, "test", root=root)
        assert str(tmp_path) not in err.value.message


# --- evaluate ----------------------------------------------------------------------------------

QRELS = {"q1": {"a": 2, "b": 1, "c": 1, "z": 0}, "q2": {"x": 1}}
# q1 ranks n1 (unjudged), b (1), a (2), z (judged 0); c (1) is never retrieved.
# q2 is judged but absent from the run; q3 is in the run but unjudged and must be ignored.
RUN = {"q1": {"n1": 4.0, "b": 3.0, "a": 2.0, "z": 1.0}, "q3": {"x": 1.0}}


def test_evaluate_hand_computed():
    # q1 nDCG@10, linear gain (trec_eval), discount log2(rank + 1):
    #   DCG  = 0/log2(2) + 1/log2(3) + 2/log2(4) + 0/log2(5) = 0.63093 + 1.0     = 1.63093
    #   IDCG = 2/log2(2) + 1/log2(3) + 1/log2(4)             = 2 + 0.63093 + 0.5 = 3.13093
    #   nDCG = 1.63093 / 3.13093 = 0.52091
    q1_ndcg = (1 / math.log2(3) + 2 / math.log2(4)) / (2 + 1 / math.log2(3) + 1 / math.log2(4))
    assert q1_ndcg == pytest.approx(0.52091, abs=1e-5)
    # q1 recall@100: relevant (grade >= 1) = {a, b, c}, retrieved {a, b} -> 2/3.
    # q1 RR@10: first relevant document (b) is at rank 2 -> 1/2.
    # q2 is missing from the run: 0 for every metric. Means are over the 2 judged queries.
    assert evaluate(RUN, QRELS) == pytest.approx(
        {"ndcg@10": q1_ndcg / 2, "recall@100": (2 / 3) / 2, "mrr@10": 0.5 / 2, "queries": 2}
    )
    assert evaluate(RUN, QRELS)["ndcg@10"] == pytest.approx(0.26045, abs=1e-5)


def test_evaluate_exponential_gain_hand_computed():
    # gain = 2**grade - 1: a -> 3, b and c -> 1.
    #   DCG  = 1/log2(3) + 3/log2(4)     = 0.63093 + 1.5       = 2.13093
    #   IDCG = 3 + 1/log2(3) + 1/log2(4) = 3 + 0.63093 + 0.5   = 4.13093  -> nDCG 0.51585
    q1_ndcg = (1 / math.log2(3) + 3 / 2) / (3 + 1 / math.log2(3) + 1 / 2)
    assert q1_ndcg == pytest.approx(0.51585, abs=1e-5)
    result = evaluate(RUN, QRELS, exponential_gain=True)
    assert result["ndcg@10"] == pytest.approx(q1_ndcg / 2)
    assert result["mrr@10"] == pytest.approx(0.25)


def test_evaluate_per_query_covers_judged_queries_only():
    per_query = evaluate_per_query(RUN, QRELS)
    assert set(per_query) == {"q1", "q2"}
    assert per_query["q1"]["mrr@10"] == pytest.approx(0.5)
    assert per_query["q1"]["recall@100"] == pytest.approx(2 / 3)
    assert per_query["q2"] == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    empty_run = evaluate({}, QRELS)
    assert empty_run == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "queries": 2.0}
    with pytest.raises(InvalidArgument):
        evaluate(RUN, {})


# --- collapse_to_documents ---------------------------------------------------------------------


def test_collapse_to_documents_dedupes_and_keeps_order():
    hits = [("d2", 0.9), ("d1", 0.95), ("d2", 0.99), ("d3", 0.1), ("d1", 0.5), ("d4", 0.0)]
    collapsed = collapse_to_documents(hits, limit=3)
    assert list(collapsed) == ["d2", "d1", "d3"]
    scores = list(collapsed.values())
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert list(collapse_to_documents(iter(hits), limit=10)) == ["d2", "d1", "d3", "d4"]
    assert collapse_to_documents([], limit=5) == {}
    # Evaluating the collapsed run reproduces exactly the hit order, whatever the chunk scores.
    run = {"q": collapse_to_documents([("n", 0.1), ("r", 0.9)], limit=10)}
    assert evaluate(run, {"q": {"r": 1}})["mrr@10"] == pytest.approx(0.5)
    with pytest.raises(InvalidArgument):
        collapse_to_documents(hits, limit=0)


# --- engine_tokens -----------------------------------------------------------------------------


def assert_matches_embed_document(text: str, bm25) -> None:
    """Ids, term frequencies and length from engine_tokens reproduce embed_document's weights."""
    doc = bm25.embed_document(text)
    counts = Counter(engine_tokens(text, bm25))
    assert set(counts) == set(doc.indices), text[:80]
    length = sum(counts.values())
    norm = K * (1 - B + B * length / AVG_LEN)
    expected = [counts[i] * (K + 1) / (counts[i] + norm) for i in doc.indices]
    assert doc.values == pytest.approx(expected, rel=1e-5), text[:80]


TEXTS = [
    "The quick brown foxes jumped over the lazy dog's back. Foxes, foxes!",
    "well-well known: 1.1 and 1-1/m, e.g. x/y, re-entry at mach-2 (lift)",
    "café naïve über İstanbul x² 日本語のテキスト",
    "the of and",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_engine_tokens_match_embed_document(text, bm25):
    assert_matches_embed_document(text, bm25)


def test_engine_tokens_keep_repeats_inside_a_piece(bm25):
    # embed_query deduplicates, so whitespace pieces alone would give "1.1" a single id.
    assert len(bm25.embed_query("1.1").indices) == 1
    assert engine_tokens("1.1", bm25) == bm25.embed_query("1").indices * 2
    fox = bm25.embed_query("fox").indices
    assert engine_tokens("The foxes, a fox", bm25) == fox * 2


def test_engine_tokens_fall_back_to_the_piece_when_splits_disagree(bm25):
    # Python splits Devanagari at vowel signs, the engine does not: the set must stay exact.
    text = "हिन्दी भाषा"
    assert set(engine_tokens(text, bm25)) == set(bm25.embed_document(text).indices)


def test_engine_tokens_match_embed_document_on_cranfield(cranfield, bm25):
    texts = cranfield.texts()
    assert "1-1/m" in texts["73"]  # a repeat inside one whitespace piece
    for text in texts.values():
        assert_matches_embed_document(text, bm25)


# --- rank_bm25_run -----------------------------------------------------------------------------


def test_rank_bm25_run_toy(bm25):
    corpus = {
        "wing": "wing lift at high speed",
        "wings": "wings, wings and more wings",
        "heat": "heat conduction in slabs",
    }
    run = rank_bm25_run(corpus, {"q": "Wing lift", "none": "the", "miss": "zebra"}, bm25)
    assert list(run["q"]) == ["wing", "wings"]  # "heat" shares no term and is left out
    assert run["q"]["wing"] > run["q"]["wings"] > 0
    assert run["none"] == {} and run["miss"] == {}
    assert list(rank_bm25_run(corpus, {"q": "wing lift"}, bm25, limit=1)["q"]) == ["wing"]
    with pytest.raises(InvalidArgument):
        rank_bm25_run({}, {"q": "wing"}, bm25)


def test_rank_bm25_cranfield_smoke(cranfield, bm25):
    run = rank_bm25_run(cranfield.texts(), cranfield.queries, bm25)
    assert set(run) == set(cranfield.queries)
    assert all(0 < len(docs) <= 100 for docs in run.values())
    result = evaluate(run, cranfield.qrels)
    exponential = evaluate(run, cranfield.qrels, exponential_gain=True)["ndcg@10"]
    print(
        f"\nrank_bm25 on cranfield/test ({result['queries']:.0f} queries): "
        f"nDCG@10 {result['ndcg@10']:.4f} (exponential gain {exponential:.4f}), "
        f"R@100 {result['recall@100']:.4f}, MRR@10 {result['mrr@10']:.4f}"
    )
    # Measured 0.371 (linear) / 0.360 (exponential); b=0 gives 0.345, k1=0 gives 0.018.
    assert 0.35 <= result["ndcg@10"] <= 0.40
    assert 0.34 <= exponential <= 0.39
    assert 0.70 <= result["recall@100"] <= 0.80
