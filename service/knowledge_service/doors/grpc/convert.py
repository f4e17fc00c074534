"""Translation between knowledge.v1 messages and the schema models, by protobuf's own json_format.

    to_model(Model, msg)    MessageToDict(msg, preserving_proto_field_name=True), inbound(), then
                            Model.model_validate (a failure names the field: INVALID_ARGUMENT)
    to_message(Msg, model)  model.model_dump(mode="json", exclude_none=True), outbound(), then
                            the message's own (C) constructor, which reads the same mapping as
                            ParseDict at a tenth of its cost (a field the message lacks is an
                            error, not dropped); outbound touches only the fields that need it,
                            by a plan made once per message type

A field added to the proto and to the schema under the same name needs no edit here. Where the
proto's JSON mapping and the schemas differ, :func:`inbound` and :func:`outbound` (and nothing
else) fix it, generically, by walking the message descriptor:

- **Enums.** ``SEARCH_MODE_DENSE`` <-> ``"dense"``: the prefix is the name of the enum's zero
  value less ``UNSPECIFIED``. The zero value is unset (the schema's default applies); a number
  the enum does not know is passed on, so the schema refuses it naming the field.
- **Unset fields.** A field without presence (a proto3 scalar, enum, repeated or map field) at its
  zero value is left out by MessageToDict, so the schema's default applies, or a required field
  is reported missing. ``optional`` scalars and message fields are sent exactly when set, zero
  included: ``top_k: 0`` is refused, an unset ``top_k`` takes the profile's. An empty map is
  therefore unset too (``queries: {}`` is no upload). On the way out ``None`` is unset.
- **64-bit integers** are JSON strings in MessageToDict's output: back to ``int``. Non-finite
  doubles are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` there (the constructor takes
  the floats themselves).
- **Struct / Value / ListValue** (metadata, filters, overrides): JSON numbers are doubles, so
  integral ones come back as ``int`` (``2020.0`` -> ``2020``); integers beyond 2**53 lose
  precision on the wire.
- **bytes** are base64 text in MessageToDict's output: the raw bytes are taken from the message.
- **Maps of maps.** Proto has none, so a map's values are a message whose only field is a map
  (``Judgments {map grades}``): such a message stands for its map, ``{"q1": {"d1": 2}}``.
- **Oneofs** need nothing: MessageToDict writes the member that is set, under its own name.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.schemas.search import SearchRequest

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=Message)

_STRUCTS = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_model(model: type[M], msg: Message) -> M:
    """A request message as its schema model (ValidationError names the field; a Struct holding a
    number JSON cannot carry is InvalidArgument)."""
    try:
        data = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    except json_format.SerializeToJsonError as exc:  # NaN or an infinity inside a Struct or Value
        raise InvalidArgument(f"{exc}; numbers in metadata, filters and overrides must be finite") from None
    return model.model_validate(inbound(msg.DESCRIPTOR, data, msg))


def to_message(message: type[P], value: BaseModel | Mapping[str, Any]) -> P:
    """A response model (or a mapping of field name -> models) as ``message``."""
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json", exclude_none=True)
    else:
        data = to_jsonable_python(value, exclude_none=True)
    return message(**outbound(message.DESCRIPTOR, data))


def search_request(msg: pb.SearchRequest) -> SearchRequest:
    """``to_model(SearchRequest, msg)``, by the name the translation tests use."""
    return to_model(SearchRequest, msg)


# ----------------------------------------------------------------------------- the one place


def inbound(desc: Descriptor, data: dict[str, Any], msg: Message) -> dict[str, Any]:
    """MessageToDict's output for ``msg`` as the schemas read it (see the module docstring)."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        field = desc.fields_by_name[name]
        raw = getattr(msg, name)
        if _is_map(field):  # MessageToDict walks the map in its own order: so does this
            item = field.message_type.fields_by_name["value"]
            raws = [raw[key] for key in raw] if _needs_raw(item) else [None] * len(value)
            value = {k: _in_item(item, v, r) for (k, v), r in zip(value.items(), raws, strict=True)}
        elif field.is_repeated:
            raws = list(raw) if _needs_raw(field) else [None] * len(value)
            value = [_in_item(field, v, r) for v, r in zip(value, raws, strict=True)]
        else:
            value = _inbound_value(field, value, raw)
        if value is not _UNSET:
            out[name] = value
    return out


def outbound(desc: Descriptor, data: dict[str, Any]) -> dict[str, Any]:
    """A dumped model as the constructor of a message of type ``desc`` reads it (the reverse of
    inbound). Only the fields that need translating are touched (see :func:`_out_plan`); ``None``
    is unset, as the constructor takes it."""
    plan = _out_plan(desc)
    if not plan:
        return data
    out = dict(data)
    for name, translate in plan.items():
        value = out.get(name)
        if value is not None:
            out[name] = translate(value)
    return out


_Translate = Callable[[Any], Any]
_PLANNING: set[str] = set()  # message types whose plan is being made (a message nested in itself)


@functools.cache
def _out_plan(desc: Descriptor) -> dict[str, _Translate]:
    """For each field of ``desc`` whose values the constructor cannot take as dumped, how to
    translate them; made once per message type. The other fields (scalars, Structs, messages made
    only of such fields) pass as they are."""
    _PLANNING.add(desc.full_name)
    try:
        plan: dict[str, _Translate] = {}
        for field in desc.fields:
            if _is_map(field):
                item = _out_each(field.message_type.fields_by_name["value"]) or _same
                plan[field.name] = functools.partial(_out_map, item)
            elif (each := _out_each(field)) is not None:
                plan[field.name] = functools.partial(_out_list, each) if field.is_repeated else each
        return plan
    finally:
        _PLANNING.discard(desc.full_name)


def _out_each(field: FieldDescriptor) -> _Translate | None:
    """How to translate one value of ``field`` (an element, if repeated); None: as it is."""
    if field.enum_type is not None:
        return functools.partial(_enum_out, _enum_prefix(field.enum_type))
    nested = field.message_type
    if nested is None or nested.full_name in _STRUCTS:
        return None
    if (inner := _only_map(nested)) is not None:  # stands for its map: wrap it back
        return lambda value: outbound(nested, {inner: value})
    if nested.full_name in _PLANNING or _out_plan(nested):
        return functools.partial(outbound, nested)
    return None


def _same(value: Any) -> Any:
    return value


def _out_map(each: _Translate, value: dict[str, Any]) -> dict[str, Any]:
    return {k: each(v) for k, v in value.items() if v is not None}


def _out_list(each: _Translate, value: list[Any]) -> list[Any]:
    return [each(v) for v in value]


def _enum_out(prefix: str, value: str | int) -> str | int:
    return f"{prefix}{value.upper()}" if isinstance(value, str) else value


_UNSET: Any = object()  # an enum's zero value: the field is left out


def _in_item(field: FieldDescriptor, value: Any, raw: Any) -> Any:
    """One element of a repeated field or one map value (an unset enum there is None)."""
    value = _inbound_value(field, value, raw)
    return None if value is _UNSET else value


def _inbound_value(field: FieldDescriptor, value: Any, raw: Any) -> Any:
    if field.enum_type is not None:
        return _enum_in(field.enum_type, value)
    if field.type in _INT64:
        return int(value)
    if field.type in _FLOATS:
        return _NON_FINITE.get(value, value) if isinstance(value, str) else value
    if field.type == FieldDescriptor.TYPE_BYTES:
        return raw
    if field.message_type is None:
        return value
    if field.message_type.full_name in _STRUCTS:
        return plain(value)
    nested = inbound(field.message_type, value, raw)
    inner = _only_map(field.message_type)
    return nested if inner is None else nested.get(inner, {})


def _needs_raw(field: FieldDescriptor) -> bool:
    """Whether translating this field's values reads the message itself (bytes, or inside messages)."""
    if field.type == FieldDescriptor.TYPE_BYTES:
        return True
    return field.message_type is not None and field.message_type.full_name not in _STRUCTS


def _enum_in(enum: EnumDescriptor, value: str | int) -> Any:
    if not isinstance(value, str):
        return value  # a number the enum does not know: the schema refuses it, naming the field
    if enum.values_by_name[value].number == 0:
        return _UNSET
    return value.removeprefix(_enum_prefix(enum)).lower()


def _enum_prefix(enum: EnumDescriptor) -> str:
    """``SEARCH_MODE_`` for SearchMode: its zero value is ``SEARCH_MODE_UNSPECIFIED``."""
    return str(enum.values_by_number[0].name).removesuffix("UNSPECIFIED")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _only_map(desc: Descriptor) -> str | None:
    """The name of the one field of a message that holds just a map (a map's value), else None."""
    fields = desc.fields
    return fields[0].name if len(fields) == 1 and _is_map(fields[0]) else None


def plain(value: Any) -> Any:
    """Struct numbers are floats: turn integral ones back into ints, recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
