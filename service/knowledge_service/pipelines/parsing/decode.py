"""An uploaded file's bytes as text: UTF-8, or UTF-16 with a byte-order mark; CRLF and CR become LF."""

from __future__ import annotations

from knowledge_service.core.errors import InvalidArgument


def decode_text(data: bytes, where: str, field: str) -> str:
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            text = data[3:].decode("utf-8")
        elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")  # the BOM picks the byte order and is dropped
        else:
            text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise InvalidArgument(
            f"{where}: not UTF-8 text, HTML, Markdown or PDF; convert it to one of these "
            "(UTF-16 is read only with a byte-order mark)",
            field=field,
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")
