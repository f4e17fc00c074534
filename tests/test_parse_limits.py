"""Hostile files: each is parsed, or refused naming the limit it hit, without hurting the service.

The limits are checked in-process (parse_file) and through ParserPool, whose worker processes are
real: spawned, capped, killed and replaced for real.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
import tracemalloc
import zlib

import pytest

from harness import eventually
from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument, Unavailable
from knowledge_service.pipelines.parsing.files import parse_file
from knowledge_service.pipelines.parsing.limits import ParseLimits
from knowledge_service.pipelines.parsing.pool import ParserPool
from test_parsing import pdf_file

BUDGET_S = ParseLimits().timeout_s  # what one file may take by default: the bound for slow tests


def nested_html() -> bytes:
    """6 MB of tags that are never closed: a tree a million elements deep."""
    return b"<html><body>" + b"<div><span>a" * 500_000


def shared_stream_pdf(pages: int, lines: int, width: int, *, new_lines: bool = True) -> bytes:
    """A small PDF whose pages all draw one compressed content stream of lines x width characters.

    With new_lines=False the text never moves to a new line: each page is one very long line.
    """
    move = b" 0 -1 Td " if new_lines else b" "
    content = b"BT /F1 1 Tf " + (b"(" + b"a" * width + b") Tj" + move) * lines + b"ET"
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> >>"
        % (b" ".join(b"%d 0 R" % (5 + i) for i in range(pages)), pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
    ] + [b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>"] * pages
    return pdf_file(objects)


def slow_pdf() -> bytes:
    """80 M characters from 20 KB: many seconds of extraction when no character limit stops it."""
    return shared_stream_pdf(pages=200, lines=2_000, width=200)


def rss() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def workers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "parse-worker"]


def cpu_ticks(pid: int) -> int:
    """User and system CPU time a process has used, in clock ticks (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rejected(*args: object, **kwargs: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        parse_file(*args, **kwargs)
    return info.value


async def refused(pool: ParserPool, *args: object, **kwargs: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        await pool.parse(*args, **kwargs)
    return info.value


# ----------------------------------------------------------------------------- in-process limits


@pytest.mark.timeout(120)  # tracemalloc slows allocation-heavy code several times
def test_nested_tags_html_takes_memory_in_proportion_to_its_text() -> None:
    data = nested_html()
    tracemalloc.start()
    try:
        parsed = parse_file("deep.html", data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parsed.text == "\n".join(["a"] * 500_000)  # each <div> starts a line
    assert peak < 64 * 2**20  # a tree of it took ~145 times the file (870 MB)


@pytest.mark.parametrize(
    ("pages", "lines", "width", "new_lines"),
    [
        (200, 2_000, 200, True),  # 200 pages of 2,000 lines: 80 M characters
        (10, 20_000, 200, False),  # pages that are one line of 4 M characters each
    ],
)
def test_pdf_pages_sharing_one_stream_stop_at_the_character_limit(
    pages: int, lines: int, width: int, new_lines: bool
) -> None:
    data = shared_stream_pdf(pages, lines, width, new_lines=new_lines)
    assert len(data) < 25_000
    error = rejected("book.pdf", data, field="files[2]")
    assert error.field == "files[2]"
    assert error.message == (
        "files[2] (book.pdf): more than 2000000 characters of text (MAX_DOC_CHARS); "
        "split it into smaller files"
    )
    produced = error.__cause__.chars  # type: ignore[union-attr]
    assert L.MAX_DOC_CHARS < produced <= L.MAX_DOC_CHARS + 2 * width  # stopped within a line


def test_pdf_over_the_page_limit_is_refused_before_its_text_is_extracted() -> None:
    data = shared_stream_pdf(pages=2_001, lines=2_000, width=200)  # 800 M characters if extracted
    error = rejected("atlas.pdf", data, field="files[0]")
    assert error.field == "files[0]"
    assert error.message == (
        "files[0] (atlas.pdf): 2,001 pages is over the limit of 2,000 pages "
        "(KNOWLEDGE_PARSE_MAX_PAGES); split it into smaller files"
    )
    small = shared_stream_pdf(pages=5, lines=1, width=10)
    assert "KNOWLEDGE_PARSE_MAX_PAGES" in rejected("a.pdf", small, limits=ParseLimits(max_pages=4)).message
    assert parse_file("a.pdf", small, limits=ParseLimits(max_pages=5)).metadata["pages"] == 5


def test_the_character_limit_is_the_one_in_force() -> None:
    limits = ParseLimits(max_chars=1_000)
    for name, data in [
        ("a.txt", b"x" * 1_001),
        ("a.md", b"# T\n\n" + b"x " * 600),
        ("a.html", b"<p>" + b"x " * 600),
        ("a.pdf", shared_stream_pdf(pages=1, lines=20, width=100)),
    ]:
        assert (
            "more than 1000 characters of text (MAX_DOC_CHARS)" in rejected(name, data, limits=limits).message
        )
        assert len(parse_file(name, data).text) > 1_000  # under the default limit


@pytest.mark.timeout(BUDGET_S)
@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("# " + "a " * 40_000 + "x", ("a " * 500).strip()),  # cut at MAX_TITLE_CHARS
        ("# a" + " " * 80_000 + "c", "a c"),  # quadratic for the old heading regex
        ("# a" + " " * 80_000 + "#", "a"),
        ("#" + " \t" * 40_000 + "x", "x"),
        ("# x" + " #" * 40_000, ("x" + " #" * 39_999)[: L.MAX_TITLE_CHARS].strip()),
        ("# a" + "\t" * 80_000 + "#" * 80_000 + " " * 80_000, "a"),
    ],
)
def test_markdown_heading_lines_built_to_backtrack_parse_in_linear_time(line: str, title: str) -> None:
    assert parse_file("long.md", line.encode()).title == title


@pytest.mark.timeout(BUDGET_S)
def test_markdown_front_matter_built_to_backtrack_parses_in_linear_time() -> None:
    lines = [
        "---",
        "k" * 80_000 + " " * 80_000 + ": too long a key",  # the key regex gives up once per key
        "huge: " + "1" * 80_000,  # more digits than int() takes: kept as text
        "inf: " + "9" * 400 + ".5",  # a float too big to be one: kept as text
        "spaced: v" + " \t" * 40_000 + "# comment",
        "---" + " " * 80_000 + "not the end",
        "---",
        "# Body",
    ]
    parsed = parse_file("front.md", "\n".join(lines).encode())
    assert parsed.title == "Body"
    assert parsed.metadata["huge"] == "1" * 80_000
    assert parsed.metadata["inf"] == "9" * 400 + ".5"
    assert parsed.metadata["spaced"] == "v"
    assert "k" * 100 not in str(parsed.metadata)
    unclosed = parse_file("open.md", ("---\n" + "k: v\n" * 200_000 + "# Open").encode())
    assert unclosed.title == "Open" and unclosed.metadata == {"filename": "open.md", "format": "markdown"}


@pytest.mark.timeout(BUDGET_S)
@pytest.mark.parametrize(
    ("markup", "text"),
    [
        (b"<p>kept</p>" + b"<a " * 25_000, "kept"),  # a tag never closed: 40 s in html.parser
        (b"<p>kept</p>" + b"<!--" * 60_000, "kept"),  # a comment never closed: quadratic too
        (b"<p>kept</p>" + b"<![" * 1_000, "kept"),  # html.parser raised AssertionError
        (b"<p>&#" + b"1" * 5_000 + b";</p>", "\ufffd"),  # int() refuses 5,000 digits
        (b"<p>&#" + b"0" * 5_000 + b"65;</p>", "A"),
        (b"<p>" + b"a < b " * 100_000 + b"</p>", ("a < b " * 100_000).strip()),
        (b"<a " + b'b="x" ' * 100_000 + b">kept", "kept"),
        (b"<script>" + b"</scrip" * 100_000 + b"</script>kept", "kept"),
    ],
)
def test_markup_built_to_be_slow_parses_in_linear_time(markup: bytes, text: str) -> None:
    assert parse_file("page.html", markup).text == text


@pytest.mark.timeout(BUDGET_S)
def test_a_file_name_of_many_leading_dots_and_slashes_is_normalised_in_linear_time() -> None:
    parsed = parse_file("./" * 1_000_000 + "/" * 100_000 + "docs/a.md", b"text")  # 50 s when quadratic
    assert parsed.doc_id == "docs/a.md"


# ----------------------------------------------------------------------------- the pool


@pytest.fixture
async def pool():
    pool = ParserPool(workers=2)
    yield pool
    await pool.close()


async def test_pool_parses_nested_tags_html_without_the_service_growing(pool: ParserPool) -> None:
    data = nested_html()
    await pool.parse("warm-up.txt", b"starts a worker")
    before, started = rss(), time.monotonic()
    parsed = await pool.parse("deep.html", data, "text/html", field="files[0]")
    assert time.monotonic() - started < 30  # the spec's bound for this file
    assert rss() - before < 50 * 2**20
    assert parsed.doc_id == "deep.html" and parsed.text.count("a") == 500_000


async def test_pool_refuses_as_parse_file_does(pool: ParserPool) -> None:
    error = await refused(pool, "upload/report.bin", b"caf\xe9 latin-1", field="files[2]")
    assert error.field == "files[2]"
    assert error.message.startswith("files[2] (report.bin): not UTF-8 text")
    error = await refused(pool, "book.pdf", slow_pdf(), field="files[1]")
    assert error.field == "files[1]" and "(MAX_DOC_CHARS)" in error.message


async def test_a_memory_bomb_fails_one_file_and_the_next_file_is_parsed() -> None:
    # Legal (9 MB, one line of text), but decoding it takes 36 MB: one emoji makes every character
    # of the string four bytes wide.
    data = b"<p>kept</p><!--" + b"a" * 9_000_000 + "\N{GRINNING FACE}-->".encode()
    assert parse_file("big.html", data).text == "kept"
    pool = ParserPool(workers=1, limits=ParseLimits(memory_mb=32))
    try:
        error = await refused(pool, "big.html", data, field="files[1]")
        assert error.field == "files[1]"
        assert error.message == (
            "files[1] (big.html): parsing needed more than the limit of 32 MB of memory per file "
            "(KNOWLEDGE_PARSE_MEMORY_MB), or crashed; split it into smaller files"
        )
        assert (await pool.parse("next.md", b"# Next\n\nfine")).title == "Next"
    finally:
        await pool.close()


async def test_a_worker_killed_while_parsing_fails_that_file_only() -> None:
    pool = ParserPool(workers=1, limits=ParseLimits(max_chars=10**9))
    try:
        await pool.parse("warm-up.txt", b"starts the worker")
        (worker,) = workers()
        idle = cpu_ticks(worker.pid)
        parse = asyncio.create_task(pool.parse("slow.pdf", slow_pdf()))
        # The worker has the file once it works (an idle worker uses no CPU): extracting it takes
        # many seconds.
        await eventually(lambda: cpu_ticks(worker.pid) > idle + 5, timeout=30, what="the worker parses")
        assert not parse.done()
        os.kill(worker.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        with pytest.raises(InvalidArgument, match="KNOWLEDGE_PARSE_MEMORY_MB"):
            await parse
        assert (await pool.parse("next.txt", b"fine")).text == "fine"
        assert [p.pid for p in workers()] != [worker.pid]
    finally:
        await pool.close()


async def test_a_parse_over_the_time_limit_fails_and_the_next_file_is_parsed() -> None:
    pool = ParserPool(workers=1, limits=ParseLimits(timeout_s=1, max_chars=10**9))
    try:
        started = time.monotonic()
        error = await refused(pool, "slow.pdf", slow_pdf(), field="files[0]")
        assert time.monotonic() - started < BUDGET_S  # killed at 1 s, not left to finish
        assert error.field == "files[0]"
        assert error.message == (
            "files[0] (slow.pdf): parsing took longer than the limit of 1 s per file "
            "(KNOWLEDGE_PARSE_TIMEOUT_S); split it into smaller files"
        )
        assert (await pool.parse("next.md", b"# Next")).title == "Next"
    finally:
        await pool.close()


async def test_cancelling_a_parse_frees_its_worker_slot() -> None:
    pool = ParserPool(workers=1, limits=ParseLimits(max_chars=10**9))
    try:
        with pytest.raises(TimeoutError):  # the caller gives up: the parse is cancelled
            await asyncio.wait_for(pool.parse("slow.pdf", slow_pdf()), timeout=1.5)
        started = time.monotonic()
        assert (await pool.parse("next.txt", b"fine")).text == "fine"
        assert time.monotonic() - started < BUDGET_S  # the abandoned file was not finished first
        assert len(workers()) == 1
    finally:
        await pool.close()


async def test_cancelling_a_parse_waiting_for_a_worker_gives_its_turn_back() -> None:
    pool = ParserPool(workers=1, limits=ParseLimits(timeout_s=2, max_chars=10**9))
    try:
        running = asyncio.create_task(pool.parse("slow.pdf", slow_pdf()))
        waiting = asyncio.create_task(pool.parse("waiting.txt", b"never parsed"))

        def queued() -> bool:  # the only slot is taken by the slow file, handed to a worker
            return pool._slots.empty() and any(w.job is not None for w in pool._live)

        await eventually(queued, timeout=30, what="the slow file holds the only worker")
        assert not waiting.done()  # so the second parse waits for its turn
        waiting.cancel()
        with pytest.raises(InvalidArgument, match="KNOWLEDGE_PARSE_TIMEOUT_S"):
            await running
        assert waiting.cancelled()
        parsed = await asyncio.wait_for(pool.parse("after.txt", b"fine"), timeout=BUDGET_S)
        assert parsed.text == "fine"
    finally:
        await pool.close()


async def test_many_parses_at_once_share_two_workers(pool: ParserPool) -> None:
    files = [(f"notes/{i}.md", f"# Note {i}\n\nbody {i}".encode()) for i in range(20)]
    files += [(f"pages/{i}.html", f"<title>Page {i}</title><p>body {i}".encode()) for i in range(20)]
    files += [(f"docs/{i}.pdf", shared_stream_pdf(pages=2, lines=3, width=10)) for i in range(5)]
    results = await asyncio.gather(*(pool.parse(name, data) for name, data in files))
    assert [r.doc_id for r in results] == [name for name, _ in files]
    assert results[3].title == "Note 3" and results[23].title == "Page 3"
    assert results[-1].metadata["pages"] == 2
    assert len(workers()) <= 2


async def test_workers_are_fresh_interpreters_with_a_memory_cap(pool: ParserPool) -> None:
    import torch  # noqa: F401  (the service has it loaded; a forked worker would too)

    await pool.parse("a.txt", b"starts a worker")
    (worker,) = workers()
    with open(f"/proc/{worker.pid}/cmdline", "rb") as cmdline:
        assert b"spawn_main" in cmdline.read()
    with open(f"/proc/{worker.pid}/maps") as maps:
        assert "torch" not in maps.read()
    with open(f"/proc/{worker.pid}/limits") as limits:
        cap = next(line.split()[3] for line in limits if line.startswith("Max address space"))
    with open(f"/proc/{worker.pid}/status") as status:
        mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    assert mapped < int(cap) <= mapped + ParseLimits().memory_mb * 2**20


async def test_close_stops_the_workers_and_can_be_called_twice() -> None:
    pool = ParserPool(workers=2)
    await asyncio.gather(*(pool.parse(f"{i}.txt", b"text") for i in range(4)))
    running = {w.process.pid for w in pool._live}
    assert len(running) == 2 and running <= {p.pid for p in workers()}
    await pool.close()
    await pool.close()
    assert not workers()
    with pytest.raises(Unavailable):
        await pool.parse("late.txt", b"text")
