"""Chunk stitching: adjacent chunks of one document in a result list become one result."""

from __future__ import annotations

from knowledge_service.schemas.search import SearchHit


def stitch(ranked: list[tuple[SearchHit, int]]) -> list[SearchHit]:
    """Merge chunks of one document with adjacent indexes into one result.

    A merged result takes the place, score and scores of its best-ranked part; its chunk id names
    the span (``doc#2-4``) and the overlap the chunker put between neighbours appears once.
    """
    kept: list[tuple[SearchHit, int, int]] = []  # result, first chunk index, last chunk index
    for hit, index in ranked:
        kept.append((hit, index, index))
        i = len(kept) - 1
        while (j := _neighbour(kept, i)) is not None:
            (x, xlo, xhi), (y, ylo, yhi) = sorted((kept[i], kept[j]), key=lambda k: k[1])
            best = kept[min(i, j)][0]
            merged = best.model_copy(
                update={"text": _join(x.text, y.text), "chunk_id": f"{best.doc_id}#{xlo}-{yhi}"}
            )
            kept[min(i, j)] = (merged, xlo, yhi)
            del kept[max(i, j)]
            i = min(i, j)
    return [k[0] for k in kept]


def _neighbour(kept: list[tuple[SearchHit, int, int]], i: int) -> int | None:
    hit, lo, hi = kept[i]
    for j, (other, olo, ohi) in enumerate(kept):
        if j != i and other.doc_id == hit.doc_id and (olo == hi + 1 or ohi == lo - 1):
            return j
    return None


def _join(first: str, second: str) -> str:
    """``first`` then ``second``, writing the text they share (chunk overlap) once."""
    probe = second[: min(40, len(second))]
    at = first.rfind(probe)
    while at >= 0:
        if second.startswith(first[at:]):
            return first[:at] + second
        at = first.rfind(probe, 0, at)
    return f"{first} {second}"
