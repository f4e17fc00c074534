"""Properties of the metadata filter language (schemas/filters.py), checked by Hypothesis.

- Any JSON value given as a filter is either accepted in a canonical form or refused with
  InvalidArgument: nothing else escapes, however deep, wide or odd it is.
- The canonical form is a fixed point: validating it again gives it back.
- On each storage backend (Edge and qdrant-client), a filter selects exactly the documents a
  plain-Python reading of the language selects, over metadata that mixes types, lists, missing
  fields, negative and large numbers.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge_service.app import Knowledge
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.core.limits import MAX_FILTER_DEPTH
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.filters import Filter, validate_filter

FIELDS = ["lang", "year", "tags", "score", "flag", "mixed", "absent"]
STRINGS = ["en", "de", "", "Ünïcode ✓", "1"]

# Forty documents whose metadata covers what a filter can meet: each field missing on some,
# lists (empty too) on some, and ``mixed`` holding a different type on each.
_MIXED: list[Any] = ["1", 1, True, 1.0, [1, "1"], False, 0, "en"]
DOCS = [
    {
        "id": f"d{i}",
        "text": f"document number {i}",
        "metadata": {
            k: v
            for k, v in {
                "lang": STRINGS[i % 5] if i % 7 else None,
                "year": [1999, 2000, 2001, -5, 0, 2**40][i % 6] if i % 4 else None,
                "tags": [["db"], ["db", "search"], [], ["search", "Ünïcode ✓"], "db"][i % 5]
                if i % 3
                else None,
                "score": [0.5, -1.25, 3.0, 1e6, 2.0][i % 5] if i % 6 else None,
                "flag": bool(i % 2) if i % 5 else None,
                "mixed": _MIXED[i % len(_MIXED)],
            }.items()
            if v is not None
        },
    }
    for i in range(40)
]


def _values(stored: Any) -> list[Any]:
    return stored if isinstance(stored, list) else [stored]


def _same(a: Any, b: Any) -> bool:
    """Equality as the engine matches it: strings with strings, booleans with booleans, integers
    with integers (a stored float is not matched by an integer, nor 1 by true)."""
    kinds = {type(a), type(b)}
    return len(kinds) == 1 and a == b and not isinstance(a, float)


def matches(flt: Filter, metadata: dict[str, Any]) -> bool:
    """The reference reading of a canonical filter (a stored list matches if any element does)."""
    if "and" in flt:
        return all(matches(f, metadata) for f in flt["and"])
    if "or" in flt:
        return any(matches(f, metadata) for f in flt["or"])
    if "not" in flt:
        return not matches(flt["not"], metadata)
    if flt["field"] not in metadata:
        return False
    stored = _values(metadata[flt["field"]])
    if "eq" in flt:
        return any(_same(flt["eq"], v) for v in stored)
    if "any" in flt:
        return any(_same(w, v) for w in flt["any"] for v in stored)
    bounds = flt["range"]
    numbers = [v for v in stored if isinstance(v, int | float) and not isinstance(v, bool)]
    return any(
        all({"gt": v > b, "gte": v >= b, "lt": v < b, "lte": v <= b}[op] for op, b in bounds.items())
        for v in numbers
    )


# ----------------------------------------------------------------------------- strategies

_scalars = st.one_of(
    st.sampled_from(STRINGS),
    st.sampled_from([0, 1, -5, 1999, 2000, 2001, 2**40]),
    st.booleans(),
)
_bound = st.one_of(st.sampled_from([-10, 0, 0.5, 1, 1999.5, 2000, 3.0, 2**40]), st.floats(-1e7, 1e7))


def _condition(field: str) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(lambda v: {"field": field, "eq": v}, _scalars),
        st.builds(
            lambda v: {"field": field, "any": v},
            st.one_of(
                st.lists(st.sampled_from(STRINGS), min_size=1, max_size=4),
                st.lists(st.sampled_from([0, 1, -5, 2000, 2**40]), min_size=1, max_size=4),
            ),
        ),
        st.builds(
            lambda b: {"field": field, "range": b},
            st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), _bound, min_size=1),
        ),
    )


conditions = st.sampled_from(FIELDS).flatmap(_condition)
valid_filters = st.recursive(
    conditions,
    lambda inner: st.one_of(
        st.builds(lambda fs: {"and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda f: {"not": f}, inner),
    ),
    max_leaves=8,
)

_keys = st.sampled_from(["field", "eq", "any", "range", "and", "or", "not", "gt", "lte", "x", ""])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_keys | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _depth(flt: Filter) -> int:
    if "and" in flt or "or" in flt:
        return 1 + max(_depth(f) for f in flt.get("and", flt.get("or", [])))
    if "not" in flt:
        return 1 + _depth(flt["not"])
    return 1


# ----------------------------------------------------------------------------- properties


@given(json_values)
def test_any_json_is_accepted_in_canonical_form_or_refused_with_invalid_argument(raw: Any) -> None:
    try:
        canonical = validate_filter(raw)
    except InvalidArgument as exc:
        assert str(exc)  # says what is wrong
        return
    assert canonical is None or validate_filter(canonical) == canonical


@given(valid_filters)
def test_the_canonical_form_is_a_fixed_point(flt: Filter) -> None:
    try:
        canonical = validate_filter(flt)
    except InvalidArgument:
        assert _depth(flt) > MAX_FILTER_DEPTH  # the only limit the strategy can cross
        return
    assert canonical is not None and validate_filter(canonical) == canonical


def test_deep_nesting_is_refused_before_it_is_walked() -> None:
    deep: Any = {"field": "lang", "eq": "en"}
    for _ in range(100_000):  # far past Python's recursion limit
        deep = {"not": deep}
    with pytest.raises(InvalidArgument, match="nesting deeper"):
        validate_filter(deep)


async def test_each_backend_selects_what_the_reference_reading_selects(any_core: Knowledge) -> None:
    await any_core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    store = any_core.stores[0]

    @settings(
        max_examples=settings.default.max_examples * 3 // 2,  # 150 in the suite
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(valid_filters)
    def selects(flt: Filter) -> None:
        try:
            canonical = validate_filter(flt)
        except InvalidArgument:
            return
        assert canonical is not None
        records, _ = store.find_docs("kb", canonical, limit=len(DOCS) + 1)
        expected = {d["id"] for d in DOCS if matches(canonical, d["metadata"])}
        assert {r["doc_id"] for r in records} == expected, canonical

    selects()


def test_the_reference_reading_is_not_trivial() -> None:
    """The documents above give each kind of condition both answers (so the backend check bites)."""
    for flt in (
        {"field": "mixed", "eq": 1},
        {"field": "tags", "any": ["search"]},
        {"field": "year", "range": {"gte": 2000.0}},
        {"not": {"field": "flag", "eq": True}},
    ):
        picked = [matches(flt, d["metadata"]) for d in DOCS]
        assert any(picked) and not all(picked), flt
