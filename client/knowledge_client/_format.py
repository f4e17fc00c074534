"""What the ``knowledge_search`` tool shows an LLM: numbered, cited passages within a budget.

Kept apart from :mod:`knowledge_client.crewai` so it is usable (and tested) without CrewAI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._exceptions import (
    DeadlineExceeded,
    InvalidRequest,
    KnowledgeError,
    NotFound,
    Overloaded,
    Unauthorized,
    Unavailable,
)
from ._models import SearchHit

FAILED = "knowledge_search failed"

# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by white space.
_SENTENCE_END = re.compile(r"""(?<=[.!?])['")\]]*\s+|\n\s*\n""")
_MORE = "({n} more passage{s} did not fit the {budget}-character budget.)"


def _source(n: int, hit: SearchHit) -> str:
    title = f'"{hit.title}" ' if hit.title else ""
    return f"[{n}] {title}(doc: {hit.doc_id}, chunk: {hit.chunk_id})"


def _sentences_within(text: str, room: int) -> str | None:
    """The longest run of whole sentences of ``text`` that fits ``room`` characters (+ " …")."""
    best = None
    for match in _SENTENCE_END.finditer(text):
        cut = text[: match.start()].rstrip()
        if len(cut) + 2 > room:
            break
        best = cut
    return None if best is None else best + " …"


def _words_within(text: str, room: int) -> str:
    """Last resort for a first passage whose first sentence alone is over budget."""
    cut = text[: max(0, room - 2)].rsplit(None, 1)[0] if room > 2 else ""
    return cut + " …"


def format_passages(query: str, namespace: str, hits: Sequence[SearchHit], *, max_chars: int) -> str:
    """Numbered passages with their sources, best first, in at most ``max_chars`` characters.

    Whole passages are kept while they fit; the first one that does not is cut after its last
    whole sentence that fits (marked " …"), and the rest are counted in a closing line. Only when
    not even one sentence of the first passage fits is it cut at a word boundary.

    Args:
        query: The query, echoed in the header.
        namespace: The knowledge base searched.
        hits: Search hits, best first.
        max_chars: The character budget of the whole answer.

    Returns:
        Text for the LLM, or a "no relevant passages" line when there are no hits.
    """
    query = query if len(query) <= 80 else query[:77] + "..."
    if not hits:
        return (
            f'No relevant passages found in "{namespace}" for "{query}". Try other words or a '
            "broader query, or answer without the knowledge base."
        )
    header = f'Passages from "{namespace}" for "{query}", best first. Cite a passage by its number, e.g. [1].'
    parts = [header]
    used = len(header)
    for i, hit in enumerate(hits):
        n = i + 1
        source, text = _source(n, hit), hit.text.strip()
        rest = len(hits) - n
        footer = len(_MORE.format(n=rest, s="s", budget=max_chars)) + 2 if rest else 0
        room = max_chars - used - 2 - len(source) - 1 - footer  # "\n\n" + source + "\n" + text
        if len(text) <= room:
            parts.append(f"{source}\n{text}")
            used += 2 + len(source) + 1 + len(text)
            continue
        footer = len(_MORE.format(n=rest + 1, s="s", budget=max_chars)) + 2
        room = max_chars - used - 2 - len(source) - 1 - footer
        trimmed = _sentences_within(text, room)
        if trimmed is None and n == 1:
            trimmed = _words_within(text, room)
        if trimmed is not None and trimmed.strip(" …"):
            parts.append(f"{source}\n{trimmed}")
            omitted = rest
        else:
            omitted = rest + 1
        if omitted:
            parts.append(_MORE.format(n=omitted, s="" if omitted == 1 else "s", budget=max_chars))
        break
    return "\n\n".join(parts)


def describe_failure(exc: BaseException, *, timeout: float) -> str:
    """A short message the LLM can act on: what failed and whether retrying may help."""
    detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    detail = detail if len(detail) <= 300 else detail[:297] + "..."
    if isinstance(exc, InvalidRequest):
        return (
            f"{FAILED}: the service rejected the arguments ({detail}). Change the query, top_k "
            "or filter; retrying the same call will fail again."
        )
    if isinstance(exc, Unauthorized):
        return (
            f"{FAILED}: not authorised ({detail}). Retrying will not help; answer without the "
            "knowledge base and say it was not accessible."
        )
    if isinstance(exc, NotFound):
        return f"{FAILED}: not found ({detail}). Retrying will not help."
    if isinstance(exc, DeadlineExceeded):
        return (
            f"{FAILED}: no answer within {timeout:g} s. Retrying once may help; a shorter query "
            "or a smaller top_k is faster."
        )
    if isinstance(exc, (Unavailable, Overloaded)):
        return (
            f"{FAILED}: the knowledge service is unavailable or busy ({detail}), even after "
            "retries. Retrying later may help; otherwise answer without it and say so."
        )
    if isinstance(exc, KnowledgeError):
        return (
            f"{FAILED}: the service reported an error ({exc.status}: {detail}). Retrying is unlikely to help."
        )
    return (
        f"{FAILED}: unexpected {type(exc).__name__} ({detail}). Retrying is unlikely to help; "
        "answer without the knowledge base."
    )
