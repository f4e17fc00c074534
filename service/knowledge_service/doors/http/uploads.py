"""Multipart file uploads, bounded while they are parsed: files per request, bytes per file, form
fields and bytes per field (python-multipart's streaming parser, fed as the body arrives). The
whole body is also capped by the HTTP guard, so nothing unbounded is ever held."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.schemas.documents import file_too_large, too_many_files

FIELDS = ("ids", "metadata")  # the text fields an upload may carry beside its files


@dataclass
class Upload:
    filename: str
    content_type: str | None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    files: list[Upload] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)


class _Parts:
    """python-multipart callbacks that build a Form and raise as soon as a bound is passed."""

    def __init__(self) -> None:
        self.form = Form()
        self._header, self._value = b"", b""
        self._headers: dict[bytes, bytes] = {}
        self._file: Upload | None = None
        self._text: tuple[str, bytearray] | None = None
        self._fields = 0

    def on_part_begin(self) -> None:
        self._headers, self._file, self._text = {}, None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if name != "files":
                raise InvalidArgument(f"form field {name!r}: send files as 'files' parts", field="files")
            if len(self.form.files) >= L.MAX_FILES_PER_REQUEST:
                raise too_many_files()
            ctype = self._headers.get(b"content-type")
            self._file = Upload(
                options[b"filename"].decode("utf-8", "replace"), ctype.decode("latin-1") if ctype else None
            )
            self.form.files.append(self._file)
        else:
            if name not in FIELDS:
                raise InvalidArgument(f"unknown form field {name!r}; allowed: files, {', '.join(FIELDS)}")
            self._fields += 1
            if self._fields > L.MAX_FORM_FIELDS:
                raise InvalidArgument(f"at most {L.MAX_FORM_FIELDS} form fields per request", field=name)
            self._text = (name, bytearray())

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            if len(self._file.data) + (end - start) > L.MAX_FILE_BYTES:
                raise file_too_large(len(self.form.files) - 1, self._file.filename)
            self._file.data += data[start:end]
        elif self._text is not None:
            name, value = self._text
            if len(value) + (end - start) > L.MAX_FORM_FIELD_BYTES:
                raise InvalidArgument(
                    f"form field {name!r}: over {L.MAX_FORM_FIELD_BYTES} bytes; send less", field=name
                )
            value += data[start:end]

    def on_part_end(self) -> None:
        if self._text is not None:
            name, value = self._text
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidArgument(f"form field {name!r}: not UTF-8 text", field=name) from None
            self.form.fields.setdefault(name, []).append(text)
        self._file, self._text = None, None


async def read_form(content_type: str | None, chunks: AsyncIterator[bytes]) -> Form:
    """Parse a multipart/form-data body from ``chunks``; raise InvalidArgument on a broken or
    over-limit form, as soon as the bound is passed."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidArgument("send multipart/form-data with one or more 'files' parts", field="files")
    parts = _Parts()
    parser = MultipartParser(boundary, _callbacks(parts))  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:  # a malformed body
        raise InvalidArgument(f"malformed multipart body ({type(exc).__name__})", field="files") from None
    if not parts.form.files:
        raise InvalidArgument("send one or more files as 'files' parts", field="files")
    return parts.form


def _callbacks(parts: _Parts) -> dict[str, object]:
    names: tuple[str, ...] = ("part_begin", "header_field", "header_value", "header_end", "headers_finished")
    names += ("part_data", "part_end")
    return {f"on_{n}": getattr(parts, f"on_{n}") for n in names}
