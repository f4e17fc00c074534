"""What the knowledge_search tool shows the LLM: numbering, sources, the budget, failures."""

from __future__ import annotations

import pytest

import knowledge_client as kc
from knowledge_client._format import describe_failure, format_passages


def _hit(n: int, text: str, title: str | None = "Title") -> kc.SearchHit:
    return kc.SearchHit(doc_id=f"d{n}", chunk_id=f"d{n}#0", text=text, score=1 / n, title=title)


LONG = " ".join(f"Sentence number {i} says something useful about tides." for i in range(40))


def test_passages_are_numbered_with_their_sources():
    text = format_passages(
        "tides", "ocean", [_hit(1, "High tide at six."), _hit(2, "Low.", None)], max_chars=4000
    )
    assert text.splitlines()[0] == (
        'Passages from "ocean" for "tides", best first. Cite a passage by its number, e.g. [1].'
    )
    assert '[1] "Title" (doc: d1, chunk: d1#0)\nHigh tide at six.' in text
    assert "[2] (doc: d2, chunk: d2#0)\nLow." in text
    assert "did not fit" not in text


def test_nothing_found_says_so():
    assert format_passages("x", "ocean", [], max_chars=500).startswith(
        'No relevant passages found in "ocean" for "x".'
    )


@pytest.mark.parametrize("budget", [300, 500, 800, 1500])
def test_budget_is_kept_without_cutting_a_sentence(budget: int):
    hits = [_hit(1, "Short first passage."), _hit(2, LONG), _hit(3, "Never shown.")]
    text = format_passages("tides", "ocean", hits, max_chars=budget)
    assert len(text) <= budget
    assert "[1]" in text and "Short first passage." in text
    body = text.split("[2] ", 1)[1] if "[2] " in text else ""
    if body:
        passage = body.split("\n", 1)[1].split("\n\n")[0]
        assert passage.endswith("tides. …")  # cut after a whole sentence
    assert "Never shown." not in text
    omitted = 1 if body else 2
    assert f"({omitted} more passage" in text


def test_everything_that_fits_is_shown():
    hits = [_hit(1, "Short first passage."), _hit(2, LONG), _hit(3, "Shown too.")]
    text = format_passages("tides", "ocean", hits, max_chars=4000)
    assert LONG in text and text.endswith("Shown too.") and "did not fit" not in text


def test_an_overlong_first_sentence_is_cut_at_a_word():
    text = format_passages("q", "ns", [_hit(1, "word " * 500)], max_chars=300)
    assert len(text) <= 300 and text.endswith("word …")


def test_long_queries_are_shortened_in_the_header():
    text = format_passages("q" * 2000, "ns", [_hit(1, "A.")], max_chars=300)
    assert len(text) <= 300 and "q" * 77 + "..." in text


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (kc.InvalidRequest("top_k: at most 100"), ["rejected the arguments", "top_k", "fail again"]),
        (kc.Unauthorized("bad key"), ["not authorised", "will not help"]),
        (kc.NotFound("no such namespace"), ["not found", "will not help"]),
        (kc.DeadlineExceeded("slow"), ["within 10 s", "Retrying once may help"]),
        (kc.Unavailable("connection refused"), ["unavailable or busy", "Retrying later may help"]),
        (kc.Overloaded("busy"), ["unavailable or busy", "Retrying later may help"]),
        (kc.KnowledgeError("boom"), ["INTERNAL: boom", "unlikely to help"]),
        (RuntimeError("bug"), ["unexpected RuntimeError (bug)", "unlikely to help"]),
    ],
)
def test_failures_become_short_actionable_messages(exc: BaseException, words: list[str]):
    text = describe_failure(exc, timeout=10)
    assert text.startswith("knowledge_search failed: ") and len(text) < 500
    assert all(w in text for w in words), text
