"""The metadata filter language: validation and a canonical form both storage backends translate.

A filter is one JSON object, either a condition on a metadata field or a combinator::

    {"field": "lang", "eq": "en"}                      equality (string, integer or boolean)
    {"field": "tags", "any": ["db", "search"]}         any of (strings or integers)
    {"field": "year", "range": {"gte": 2000, "lt": 2010}}  numeric range (gt, gte, lt, lte)
    {"and": [F, ...]}   {"or": [F, ...]}   {"not": F}

Limits: nesting depth <= MAX_FILTER_DEPTH, at most MAX_FILTER_CONDITIONS conditions in all, at most
MAX_FILTER_VALUES values in one ``any``, strings of at most MAX_FILTER_STRING_CHARS, 64-bit integers,
finite range bounds. Field names match METADATA_KEY_PATTERN in full (no trailing newline).
"""

from __future__ import annotations

import math
import re
from typing import Any

from knowledge_service.core.errors import InvalidArgument
from knowledge_service.core.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_DEPTH,
    MAX_FILTER_STRING_CHARS,
    MAX_FILTER_VALUES,
    METADATA_KEY_PATTERN,
)

_KEY = re.compile(METADATA_KEY_PATTERN)
_RANGE_OPS = ("gt", "gte", "lt", "lte")

Filter = dict[str, Any]


def validate_filter(raw: Any) -> Filter | None:
    """Check ``raw`` against the language and its limits; return its canonical form (or None)."""
    if raw is None or raw == {}:
        return None
    counter = [0]
    return _node(raw, "filter", 1, counter)


def _fail(path: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{path}: {message}", field=path)


def _node(raw: Any, path: str, depth: int, counter: list[int]) -> Filter:
    if not isinstance(raw, dict):
        raise _fail(path, "must be an object (a condition or and/or/not)")
    if depth > MAX_FILTER_DEPTH:
        raise _fail(path, f"nesting deeper than {MAX_FILTER_DEPTH} levels; flatten the filter")
    combinators = [k for k in ("and", "or", "not") if k in raw]
    if combinators:
        if len(raw) != 1:
            raise _fail(path, "a combinator object has exactly one key: and, or or not")
        op = combinators[0]
        if op == "not":
            return {"not": _node(raw["not"], f"{path}.not", depth + 1, counter)}
        items = raw[op]
        if not isinstance(items, list) or not items:
            raise _fail(f"{path}.{op}", "must be a non-empty list of filters")
        return {op: [_node(x, f"{path}.{op}[{i}]", depth + 1, counter) for i, x in enumerate(items)]}
    return _condition(raw, path, counter)


def _condition(raw: dict[str, Any], path: str, counter: list[int]) -> Filter:
    counter[0] += 1
    if counter[0] > MAX_FILTER_CONDITIONS:
        raise _fail(path, f"more than {MAX_FILTER_CONDITIONS} conditions; simplify the filter")
    field = raw.get("field")
    if not isinstance(field, str) or not _KEY.fullmatch(field):
        raise _fail(f"{path}.field", f"must be a metadata key matching {METADATA_KEY_PATTERN}")
    ops = [k for k in raw if k != "field"]
    if len(ops) != 1 or ops[0] not in ("eq", "any", "range"):
        raise _fail(path, "a condition has 'field' and exactly one of: eq, any, range")
    op = ops[0]
    value = raw[op]
    if op == "eq":
        if not (_is_string(value) or isinstance(value, bool) or _is_integer(value)):
            raise _fail(
                f"{path}.eq",
                f"must be a string of at most {MAX_FILTER_STRING_CHARS} characters, a 64-bit integer "
                "or a boolean",
            )
        return {"field": field, "eq": value}
    if op == "any":
        if (
            not isinstance(value, list)
            or not value
            or not all(_is_string(v) for v in value)
            and not all(_is_integer(v) for v in value)
        ):
            raise _fail(
                f"{path}.any",
                f"must be a non-empty list of strings (at most {MAX_FILTER_STRING_CHARS} characters "
                "each) or of 64-bit integers",
            )
        if len(value) > MAX_FILTER_VALUES:
            raise _fail(f"{path}.any", f"at most {MAX_FILTER_VALUES} values (got {len(value)})")
        return {"field": field, "any": list(value)}
    if not isinstance(value, dict) or not value or set(value) - set(_RANGE_OPS):
        raise _fail(f"{path}.range", "must be an object with some of gt, gte, lt, lte")
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _fail(f"{path}.range.{k}", "must be a finite number")
    return {"field": field, "range": {k: float(value[k]) for k in _RANGE_OPS if k in value}}


def _is_string(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_FILTER_STRING_CHARS


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX
