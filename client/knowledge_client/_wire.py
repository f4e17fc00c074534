"""knowledge.v1 messages <-> the HTTP API's JSON bodies, by protobuf's own ``json_format``.

The gRPC transport builds every request with :func:`to_message` and reads every response with
:func:`to_body`, so both transports hand the clients the same dicts and one set of pydantic models
(``_models``) reads them. The message types come from the service descriptor, by RPC name: a field,
or an RPC, added to the proto needs no code here.

``json_format`` does the translation. Where its ProtoJSON mapping and the HTTP API's JSON differ,
this module bridges them here and only here, by field *type*, never by field name:

- **Enums.** ProtoJSON says ``"SEARCH_MODE_DENSE"``, the HTTP API ``"dense"``: the enum's prefix
  (its zero value's name less ``UNSPECIFIED``, by the proto style guide) is added on the way out
  and removed on the way in. A zero (``*_UNSPECIFIED``) value, or a number this client's stubs do
  not know, is left out of the body, so the model's default applies.
- **Struct and Value** (metadata, filters, overrides) hold JSON numbers as doubles: an integral one
  comes back as ``int`` (``2020.0`` -> ``2020``), as the HTTP API sends it.
- **int64** is printed as a number (``unquote_int64_if_possible``); past 2**53 it stays a string,
  which the models' ``int`` fields still accept.
- **Presence.** Fields without presence are printed even at their default, as the HTTP API prints
  every field (``always_print_fields_with_no_presence``); an unset ``optional`` or message field is
  left out, where the HTTP API sends ``null``: either way the model's default (None) applies.
  Lists have no null in the proto: an unset list arrives as ``[]`` (``_models.NoneIfEmpty`` reads
  it as unset where the HTTP API says ``null``).
- **Wrappers.** The proto cannot nest maps, so a map of maps (``qrels``: query -> doc -> grade) is
  a map of messages whose only field is a map (``Judgments {grades}``): such a message is that
  map in the body, in both directions.
- **Requests** name fields as the proto does (``preserving_proto_field_name``). A key the message
  has no field for is refused (:class:`~knowledge_client.InvalidRequest`), never dropped: a setting
  this client's stubs cannot carry must not vanish silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from ._exceptions import InvalidRequest
from .proto.knowledge.v1 import knowledge_pb2 as pb

Body = dict[str, Any]
Visit = Callable[[FieldDescriptor, Any, str], Any]  # one value of a field, at a path -> its new value

SERVICE = pb.DESCRIPTOR.services_by_name["KnowledgeService"]
# Well-known types whose ProtoJSON form is plain JSON: the caller's data, never walked.
_JSON_TYPES = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_LEAVE_OUT = object()  # an inbound value the body does not carry (the model's default applies)


def request_type(method: str) -> type[Message]:
    """The request message class of an RPC of ``knowledge.v1.KnowledgeService``."""
    cls: type[Message] = message_factory.GetMessageClass(SERVICE.methods_by_name[method].input_type)
    return cls


# ----------------------------------------------------------------------------- the one walk


def _enum_prefix(enum: EnumDescriptor) -> str:
    zero = enum.values_by_number[0].name
    return zero.removesuffix("UNSPECIFIED") if zero.endswith("_UNSPECIFIED") else ""


def _each(field: FieldDescriptor, value: Any, path: str, one: Visit) -> Any:
    """Apply ``one`` to a field's value, or to each element of a repeated or map field's value."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, Mapping):
            return value  # json_format names the mistake
        item = field.message_type.fields_by_name["value"]
        pairs = ((k, one(item, v, f"{path}[{k!r}]")) for k, v in value.items())
        return {k: v for k, v in pairs if v is not _LEAVE_OUT}
    if field.is_repeated:
        if not isinstance(value, list | tuple):
            return value
        items = (one(field, v, f"{path}[{i}]") for i, v in enumerate(value))
        return [v for v in items if v is not _LEAVE_OUT]
    return one(field, value, path)


def _walk(desc: Descriptor, data: Mapping[str, Any], path: str, one: Visit) -> Body:
    out: Body = {}
    for key, value in data.items():
        field = desc.fields_by_name.get(key)
        new = value if field is None or value is None else _each(field, value, path + key, one)
        if new is not _LEAVE_OUT:
            out[key] = new
    return out


def _wrapped(field: FieldDescriptor) -> FieldDescriptor | None:
    """The map field of a message that holds nothing but it (see Wrappers), else None."""
    if not _walked(field) or len(field.message_type.fields) != 1:
        return None
    only: FieldDescriptor = field.message_type.fields[0]
    is_map = only.message_type is not None and only.message_type.GetOptions().map_entry
    return only if is_map else None


def _outbound(field: FieldDescriptor, value: Any, path: str) -> Any:
    if (only := _wrapped(field)) is not None and isinstance(value, Mapping):
        return {only.name: _each(only, value, path, _outbound)}
    if field.enum_type is not None and isinstance(value, str):
        enum, prefix = field.enum_type, _enum_prefix(field.enum_type)
        name = prefix + value.upper()
        if name == enum.values_by_number[0].name or name not in enum.values_by_name:
            names = [v.name.removeprefix(prefix).lower() for v in enum.values if v.number != 0]
            raise InvalidRequest(f"{path}: must be one of {names} (got {value!r})", field=path)
        return name
    if _walked(field) and isinstance(value, Mapping):
        return _walk(field.message_type, value, path + ".", _outbound)
    return value


def _inbound(field: FieldDescriptor, value: Any, path: str) -> Any:
    if (only := _wrapped(field)) is not None and isinstance(value, Mapping):
        return _each(only, value.get(only.name, {}), path, _inbound)
    if field.enum_type is not None:
        zero = field.enum_type.values_by_number[0].name
        if not isinstance(value, str) or value == zero:  # an unknown number, or unset
            return _LEAVE_OUT
        return value.removeprefix(_enum_prefix(field.enum_type)).lower()
    if field.message_type is not None and field.message_type.full_name in _JSON_TYPES:
        return _integral(value)
    if _walked(field) and isinstance(value, Mapping):
        return _walk(field.message_type, value, path + ".", _inbound)
    return value


def _walked(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name not in _JSON_TYPES


def _integral(value: Any) -> Any:
    """JSON numbers in a Struct are doubles: integral ones become ints again, recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


# ----------------------------------------------------------------------------- both directions

_NESTED = re.compile(r"Failed to parse (\w+) field: ")
_AT = re.compile(r'\s+at "?\w+\.?([^"\s]*)"?\.*$')


def _invalid(method: str, exc: Exception) -> InvalidRequest:
    """json_format's message, less its nesting, named after the field it points at."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    chain = _NESTED.findall(first)
    text = _NESTED.sub("", first).rstrip(".")
    at = _AT.search(text)
    field = (at.group(1) if at else "") or ".".join(chain) or None
    detail = text[: at.start()] if at else text
    return InvalidRequest(f"{field or method}: {detail}", field=field)


def to_message(method: str, body: Mapping[str, Any]) -> Message:
    """The request message of ``method`` from a body; InvalidRequest if it does not fit."""
    cls = request_type(method)
    data = _walk(cls.DESCRIPTOR, body, "", _outbound)
    try:
        return json_format.ParseDict(data, cls())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise _invalid(method, exc) from None


def to_body(message: Message) -> Body:
    """A response message as the HTTP API's JSON body says it."""
    data = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    return _walk(message.DESCRIPTOR, data, "", _inbound)
