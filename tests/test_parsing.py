"""Unit tests for turning uploaded files into documents (knowledge_service.pipelines.parsing)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.parsing.files import (
    SUPPORTED_EXTENSIONS,
    ParsedFile,
    file_label,
    iter_files,
    parse_file,
)
from knowledge_service.schemas.documents import DocumentIn


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per string, a classic xref table."""
    n_pages = len(pages)
    font = 3 + 2 * n_pages
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n_pages)), n_pages),
    ]
    for i, lines in enumerate(pages):
        ops = b" ".join(b"(%s) Tj 0 -16 Td" % line.encode("latin-1") for line in lines)
        stream = b"BT /F1 12 Tf 72 720 Td " + ops + b" ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font, 4 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    if title is not None:
        objects.append(b"<< /Title (%s) >>" % title.encode("latin-1"))
    return pdf_file(objects, info=len(objects) if title is not None else None)


def pdf_file(objects: list[bytes], info: int | None = None) -> bytes:
    """A PDF of these numbered objects (1 is the catalog), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info_ref = b" /Info %d 0 R" % info if info is not None else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\n" % (len(objects) + 1, info_ref)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def rewrite_pdf(data: bytes, **encrypt: object) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    if encrypt:
        writer.encrypt(**encrypt)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def rejected(*args: object, **kwargs: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        parse_file(*args, **kwargs)
    return info.value


# ----------------------------------------------------------------------------- plain text


def test_plain_text_strips_bom_and_normalises_newlines() -> None:
    parsed = parse_file("notes/todo.txt", b"\xef\xbb\xbfbuy milk\r\ncall mum\r\n")
    assert parsed == ParsedFile(
        doc_id="notes/todo.txt",
        title="todo",
        text="buy milk\ncall mum",
        metadata={"filename": "todo.txt", "format": "text"},
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom_decodes(codec: str) -> None:
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[codec]
    parsed = parse_file("café.txt", bom + "Grüße, café ☕\nzweite Zeile".encode(codec))
    assert parsed.text == "Grüße, café ☕\nzweite Zeile"
    assert parsed.title == "café"


def test_unknown_extension_that_decodes_is_text() -> None:
    parsed = parse_file("build.log", b"step 1 ok\nstep 2 ok\n")
    assert parsed.metadata["format"] == "text"
    assert parsed.title == "build"


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("readme.md", "text/html", "markdown"),  # extension wins over content type
        ("page.htm", "text/plain", "html"),
        ("upload", "text/markdown; charset=utf-8", "markdown"),
        ("upload", "text/x-markdown", "markdown"),
        ("upload", "TEXT/HTML", "html"),
        ("upload", "text/plain", "text"),  # an explicit content type beats sniffing
        ("upload", None, "html"),  # sniffed from <!DOCTYPE html>
        ("upload", "application/octet-stream", "html"),
    ],
)
def test_format_by_extension_then_content_type_then_sniffing(
    filename: str, content_type: str | None, expected: str
) -> None:
    data = b"<!DOCTYPE html><html><body><p># Hello</p></body></html>"
    parsed = parse_file(filename, data, content_type)
    assert parsed.metadata["format"] == expected


@pytest.mark.parametrize(
    ("filename", "doc_id", "basename"),
    [
        ("./docs/a.md", "docs/a.md", "a.md"),
        ("/srv/kb/a.md", "srv/kb/a.md", "a.md"),
        ("docs\\sub\\a.md", "docs/sub/a.md", "a.md"),
        (".\\a.md", "a.md", "a.md"),
        ("a.md", "a.md", "a.md"),
    ],
)
def test_doc_id_normalises_separators_and_leading_dots(filename: str, doc_id: str, basename: str) -> None:
    parsed = parse_file(filename, b"some text")
    assert (parsed.doc_id, parsed.metadata["filename"]) == (doc_id, basename)


# ----------------------------------------------------------------------------- HTML


HTML = b"""<!DOCTYPE html>
<html><head><title>  Release
  notes </title>
<style>body { color: red }</style>
<script>var secretToken = "do-not-index";</script>
</head>
<body>
<noscript>Enable JavaScript</noscript><template><p>template text</p></template>
<h1>Version 2</h1>
<p>Faster <b>search</b> and
   smaller indexes.</p><!-- a comment -->
<ul><li>one</li><li>two</li></ul>
<p>line one<br>line two</p>
<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>
</body></html>
"""


def test_html_visible_text_and_title() -> None:
    parsed = parse_file("site/release.html", HTML)
    assert parsed.title == "Release notes"
    assert parsed.metadata == {"filename": "release.html", "format": "html"}
    assert parsed.text == (
        "Version 2\n\nFaster search and smaller indexes.\n\none\ntwo\n\nline one\nline two\n\nk v\na 1"
    )
    for hidden in ("secretToken", "color: red", "Enable JavaScript", "template text", "comment"):
        assert hidden not in parsed.text


def test_html_title_falls_back_to_first_h1_then_stem() -> None:
    page = b"<html><body><h1>Main <em>heading</em></h1><p>body</p><h1>Other</h1></body></html>"
    assert parse_file("x.html", page).title == "Main heading"
    assert parse_file("plain-page.html", b"<p>just a paragraph</p>").title == "plain-page"


def test_html_with_only_scripts_has_no_text() -> None:
    error = rejected("empty.html", b"<html><script>alert(1)</script><style>p{}</style></html>")
    assert "empty.html" in error.message and "no text" in error.message


def test_html_odd_but_common_markup() -> None:
    page = (
        b"<p title=\"a > b\" data-x='<p>' class=plain>one</p>"  # ">" inside attribute values
        b"<P>Two<BR/>three</P>"
        b"<p>x<![CDATA[ raw <text> ]]>y</p>"
        b"<script src=x.js />visible<style>p > a { }</style><p>after</p>"  # a self-closed script
        b"<p>a < b &amp; c&nbsp;d &#x41;&#66;</p>"
        b"<pre>line 1\n  line &lt;2&gt;\n\nline 3</pre>"
        b'<?xml version="1.0"?><!DOCTYPE x><!-- c --></>'
        b"<p>cut <b>here</b><!-- never closed, so the rest is a comment <p>gone"
    )
    parsed = parse_file("odd.html", page)
    assert parsed.text == (
        "one\n\nTwo\nthree\n\nx raw <text> y\n\nvisible\n\nafter\n\na < b & c d AB"
        "\n\nline 1\nline <2>\nline 3\n\ncut here"
    )
    assert parse_file("p.html", b"<p>kept</p><div class='unclosed>gone").text == "kept"


def test_html_title_is_the_text_of_the_first_title_or_h1_element() -> None:
    assert parse_file("t.html", b"<title>A <b>bold</b>&amp; title</title><p>x").title == "A bold & title"
    page = b"<title> </title><h1>Real <em>one</em><script>no</script></h1><title>Late</title><p>x"
    assert parse_file("t.html", page).title == "Real one"
    assert parse_file("t.html", b"<h1>" + b"word " * 1_000 + b"</h1>").title == ("word " * 200).strip()


# ----------------------------------------------------------------------------- Markdown


MARKDOWN = """---
title: "Onboarding: week one"
author: Ada Lovelace
year: 2024
rating: 4.5
draft: false
published: 2024-05-01
tags: [intro, hr]
nested:
  key: ignored
bad.key: skipped
this_key_is_far_too_long_to_be_a_metadata_key_because_it_has_more_than_64_chars: x
quoted: 'it''s fine'
comment: value # trailing comment
empty:
filename: spoofed.md
---
# Welcome

Read the *handbook* first.
"""


def test_markdown_front_matter_becomes_metadata_and_title() -> None:
    parsed = parse_file("hr/onboarding.md", MARKDOWN.encode())
    assert parsed.title == "Onboarding: week one"
    assert parsed.text == "# Welcome\n\nRead the *handbook* first."
    assert parsed.metadata == {
        "author": "Ada Lovelace",
        "year": 2024,
        "rating": 4.5,
        "draft": False,
        "published": "2024-05-01",
        "quoted": "it's fine",
        "comment": "value",
        "filename": "onboarding.md",
        "format": "markdown",
    }
    DocumentIn(id=parsed.doc_id, text=parsed.text, title=parsed.title, metadata=parsed.metadata)


def test_markdown_title_from_first_heading_outside_code_fences() -> None:
    text = "intro line\n\n```bash\n# not a title\n```\n\n## Sub\n\n# Real Title #\n\nbody\n"
    parsed = parse_file("guide.markdown", text.encode())
    assert parsed.title == "Real Title"
    assert parsed.text == text.strip()
    assert parsed.metadata == {"filename": "guide.markdown", "format": "markdown"}


def test_markdown_without_closing_front_matter_is_kept_whole() -> None:
    parsed = parse_file("odd.md", b"---\nnot: front matter\n\nbody")
    assert parsed.text == "---\nnot: front matter\n\nbody"
    assert parsed.title == "odd"
    assert "not" not in parsed.metadata


def test_markdown_numbers_in_front_matter_are_int64_or_finite_floats() -> None:
    page = "---\nlow: -9223372036854775808\nhigh: 9223372036854775808\nbig: 1e400\nsmall: 2.5e-3\n---\nx"
    parsed = parse_file("n.md", page.encode())
    assert parsed.metadata["low"] == -(2**63)
    assert parsed.metadata["high"] == "9223372036854775808"
    assert parsed.metadata["big"] == "1e400"
    assert parsed.metadata["small"] == 0.0025


def test_markdown_heading_of_only_spaces_is_not_a_title() -> None:
    assert parse_file("h.md", b"#   \n\n# Real\n").title == "Real"


def test_markdown_with_only_front_matter_has_no_text() -> None:
    assert "no text" in rejected("meta.md", b"---\ntitle: x\n---\n\n").message


# ----------------------------------------------------------------------------- PDF


def test_pdf_text_title_and_pages() -> None:
    data = make_pdf([["Quarterly report", "Revenue grew"], ["Second page text"]], title="Q3")
    assert "Quarterly report" in PdfReader(io.BytesIO(data)).pages[0].extract_text()  # a valid PDF
    parsed = parse_file("reports/q3.pdf", data)
    assert parsed.title == "Q3"
    assert parsed.metadata == {"pages": 2, "filename": "q3.pdf", "format": "pdf"}
    assert "Quarterly report" in parsed.text and "Revenue grew" in parsed.text
    first, second = parsed.text.split("\n\n")
    assert "Second page text" in second and "Second" not in first


@pytest.mark.parametrize(("filename", "content_type"), [("scan", None), ("x.bin", "application/pdf")])
def test_pdf_found_by_content_type_or_magic_bytes(filename: str, content_type: str | None) -> None:
    parsed = parse_file(filename, make_pdf([["Sniffed text"]]), content_type)
    assert parsed.metadata["format"] == "pdf"
    assert parsed.title == filename.split(".")[0]  # no /Title: the stem
    assert "Sniffed text" in parsed.text


def test_encrypted_pdf_with_user_password_is_rejected() -> None:
    data = rewrite_pdf(make_pdf([["Top secret"]]), user_password="hunter2")
    error = rejected("secret.pdf", data, field="files[0]")
    assert error.field == "files[0]"
    assert "files[0] (secret.pdf)" in error.message and "encrypted" in error.message


def test_pdf_encrypted_with_empty_user_password_opens() -> None:
    data = rewrite_pdf(make_pdf([["Readable anyway"]]), user_password="", owner_password="owner")
    assert PdfReader(io.BytesIO(data)).is_encrypted
    assert "Readable anyway" in parse_file("locked.pdf", data).text


def test_pdf_without_text_asks_for_ocr() -> None:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    buf = io.BytesIO()
    writer.write(buf)
    error = rejected("scan.pdf", buf.getvalue())
    assert "no extractable text" in error.message and "OCR" in error.message


@pytest.mark.parametrize("data", [b"%PDF-1.7\nthis is not really a pdf", b"plain words"])
def test_broken_pdf_is_rejected(data: bytes) -> None:
    error = rejected("broken.pdf", data, field="files[3]")
    assert error.field == "files[3]"
    assert "broken.pdf" in error.message and "not a readable PDF" in error.message


# ----------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # binary with NUL bytes
        b"caf\xe9 latin-1 text",  # not UTF-8, no BOM
        bytes(range(256)),
    ],
)
def test_undecodable_bytes_name_the_field(data: bytes) -> None:
    error = rejected("upload/report.bin", data, field="files[2]")
    assert error.field == "files[2]"
    assert error.message.startswith("files[2] (report.bin): not UTF-8 text, HTML, Markdown or PDF")
    assert "convert it" in error.message


def test_oversize_file_names_the_limit() -> None:
    error = rejected("big.txt", b"a" * (L.MAX_FILE_BYTES + 1))
    assert error.field == "file"
    assert "MAX_FILE_BYTES" in error.message and str(L.MAX_FILE_BYTES) in error.message


@pytest.mark.parametrize("data", [b"", b"  \n\t\r\n", b"\xef\xbb\xbf  \n"])
def test_empty_file_is_rejected(data: bytes) -> None:
    error = rejected("blank.txt", data)
    assert "blank.txt" in error.message


def test_file_without_a_name_is_rejected() -> None:
    assert rejected("./", b"text", field="files[1]").field == "files[1]"


def test_file_label_names_the_field_and_the_base_name() -> None:
    assert file_label("./books\\2024/book.pdf", "files[2]") == "files[2] (book.pdf)"
    assert file_label("./", "files[1]") == "files[1]"


# ----------------------------------------------------------------------------- iter_files


def test_iter_files_walks_folders_sorted_skipping_hidden_and_unsupported(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    for rel in [
        "b.md",
        "a.txt",
        "sub/z.HTML",
        "sub/deeper/c.pdf",
        "sub/image.png",
        ".hidden.md",
        ".git/config.md",
        "sub/.cache/x.txt",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    single = tmp_path / "notes.log"
    single.write_text("explicit files are always taken")

    pairs = list(iter_files([root, single]))
    assert pairs == [
        (root / "a.txt", "a.txt"),
        (root / "b.md", "b.md"),
        (root / "sub/deeper/c.pdf", "sub/deeper/c.pdf"),
        (root / "sub/z.HTML", "sub/z.HTML"),
        (single, "notes.log"),
    ]
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf"} == SUPPORTED_EXTENSIONS


def test_iter_files_rejects_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file or folder"):
        list(iter_files([tmp_path / "missing"]))


def test_pdf_encryption_this_install_cannot_open(monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf.errors import DependencyError

    def needs_cryptography(self: PdfReader, password: str) -> None:
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    data = rewrite_pdf(make_pdf([["AES stand-in"]]), user_password="", owner_password="o")
    monkeypatch.setattr(PdfReader, "decrypt", needs_cryptography)
    error = rejected("aes.pdf", data)
    assert "encrypted in a way this server cannot open" in error.message
    assert "cryptography" in error.message
