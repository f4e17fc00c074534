"""Parse uploaded files in worker processes, so that a hostile file fails alone.

A parser that runs away (a memory bomb, a pathological input, a crash in native code) must cost
that one file, not the service, which holds models, gRPC and threads and must neither grow nor die.

- Workers are fresh interpreters from the multiprocessing "spawn" context (never fork: the parent's
  threads and native libraries do not survive one). A worker imports the parsing code, then caps
  its own address space (RLIMIT_AS) at what it maps after those imports plus limits.memory_mb, so a
  memory bomb ends in a MemoryError or a dead worker.
- A queue holds one slot per worker: an idle worker, or None for one to start when the slot is
  taken. A parse takes a slot, so at most `workers` files are parsed at once and the others wait
  their turn. The file goes to the worker over a pipe as bytes; a thread waits for the answer, so
  the event loop never blocks.
- A worker that passes limits.timeout_s, dies (out of memory, killed by the kernel, segfault) or
  whose caller is cancelled is killed, and its slot comes back empty: the next file gets a fresh
  worker.
- Answers are a ParsedFile, or an InvalidArgument's message and field, raised again here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import signal
import sys
import types
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from knowledge_service.core.errors import InvalidArgument, Unavailable
from knowledge_service.pipelines.parsing.files import ParsedFile, file_label, parse_file
from knowledge_service.pipelines.parsing.limits import ParseLimits

__all__ = ["ParseLimits", "ParserPool"]

_START_TIMEOUT_S = 60.0  # for a new worker's imports, not counted in limits.timeout_s


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection  # used by one thread at a time: the one running _exchange, if any
    ready: bool = False
    job: Future[tuple[object, ...]] | None = None


class ParserPool:
    """Parse files in up to `workers` worker processes, each file within `limits`."""

    def __init__(self, workers: int = 2, limits: ParseLimits = ParseLimits()) -> None:  # noqa: B008 (frozen)
        if workers < 1:
            raise ValueError("a parser pool needs at least one worker")
        self.limits = limits
        self._context = multiprocessing.get_context("spawn")
        self._slots: asyncio.Queue[_Worker | None] = asyncio.Queue()
        for _ in range(workers):
            self._slots.put_nowait(None)
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="parse-pool")
        self._live: set[_Worker] = set()
        self._closed = False

    async def parse(
        self, filename: str, data: bytes, content_type: str | None = None, *, field: str = "file"
    ) -> ParsedFile:
        """Parse one file in a worker; InvalidArgument when it is refused or over a limit."""
        worker = await self._slots.get()
        try:
            if self._closed:
                raise Unavailable("the parser pool is closed")
            if worker is None:
                worker = self._start()
            worker.job = self._threads.submit(
                _exchange, worker, (filename, content_type, field), data, self.limits.timeout_s
            )
            try:
                answer = await asyncio.wrap_future(worker.job)
            except BaseException:  # cancelled: abandon the file and kill its worker
                self._discard(worker)
                worker = None
                raise
            worker.job = None
            if answer[0] not in ("ok", "invalid") or self._closed:  # timed out, died, broke; closing
                self._discard(worker)
                worker = None
        finally:
            self._slots.put_nowait(worker)  # None: the next parse of this slot starts a worker
        return self._result(answer, filename, field)

    async def close(self) -> None:
        """Stop every worker (parses still running fail); safe to call more than once."""
        self._closed = True
        workers = list(self._live)
        for worker in workers:
            self._discard(worker)
        await asyncio.to_thread(_join, workers)
        self._threads.shutdown(wait=False)

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(theirs, self.limits), name="parse-worker", daemon=True
        )
        # A spawned child first runs the parent's __main__ again (the `knowledge` CLI, a test
        # runner...); a worker needs none of it, so it is started while __main__ is a blank module.
        main, sys.modules["__main__"] = sys.modules["__main__"], types.ModuleType("__main__")
        try:
            process.start()  # a fork-exec and a few KB written: milliseconds
        finally:
            sys.modules["__main__"] = main
        theirs.close()
        worker = _Worker(process, ours)
        self._live.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker; its pipe is closed once no thread is using it."""
        self._live.discard(worker)
        worker.process.kill()  # reaped by the next start or by close()
        if worker.job is None:
            worker.conn.close()
        else:  # the thread in _exchange returns once the worker is dead
            worker.job.add_done_callback(lambda _: worker.conn.close())

    def _result(self, answer: tuple[object, ...], filename: str, field: str) -> ParsedFile:
        kind, *rest = answer
        if kind == "ok":
            return rest[0]  # type: ignore[return-value]
        if kind == "invalid":
            raise InvalidArgument(str(rest[0]), field=rest[1])  # type: ignore[arg-type]
        if self._closed:
            raise Unavailable("the parser pool was closed while parsing; send the file again")
        if kind == "unstarted":
            raise Unavailable("a parser worker process could not start; see the service's log")
        where = file_label(filename, field)
        if kind == "timeout":
            raise InvalidArgument(
                f"{where}: parsing took longer than the limit of {self.limits.timeout_s:g} s per file "
                "(KNOWLEDGE_PARSE_TIMEOUT_S); split it into smaller files",
                field=field,
            )
        if kind == "error":
            raise RuntimeError(f"{where}: the parser failed: {rest[0]}")
        raise InvalidArgument(
            f"{where}: parsing needed more than the limit of {self.limits.memory_mb} MB of memory per "
            "file (KNOWLEDGE_PARSE_MEMORY_MB), or crashed; split it into smaller files",
            field=field,
        )


def _join(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.process.join(5)


def _exchange(worker: _Worker, job: tuple[object, ...], data: bytes, timeout_s: float) -> tuple[object, ...]:
    """In a pool thread: hand one file to the worker and wait at most timeout_s for its answer."""
    conn = worker.conn
    try:
        if not worker.ready:  # a new worker says so once its imports are done
            if not conn.poll(_START_TIMEOUT_S) or conn.recv() != "ready":
                return ("unstarted",)
            worker.ready = True
        conn.send(job)
        conn.send_bytes(data)
        return conn.recv() if conn.poll(timeout_s) else ("timeout",)
    except (EOFError, OSError):  # the worker died, or was killed
        return ("died",) if worker.ready else ("unstarted",)


def _serve(conn: Connection, limits: ParseLimits) -> None:
    """A worker's life: cap its memory, then parse the files sent on `conn` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the service, which stops workers
    import pypdf  # noqa: F401  (imported by the first PDF otherwise, inside the memory budget)

    _cap_address_space(limits.memory_mb)
    conn.send("ready")
    while True:
        try:
            filename, content_type, field = conn.recv()
            data = conn.recv_bytes()
        except EOFError:
            return
        try:
            answer: tuple[object, ...] = (
                "ok",
                parse_file(filename, data, content_type, field=field, limits=limits),
            )
        except InvalidArgument as exc:
            answer = ("invalid", exc.message, exc.field)
        except MemoryError:
            answer = ("memory",)
        except Exception as exc:  # a bug, not the file's fault: the caller gets an internal error
            answer = ("error", f"{type(exc).__name__}: {exc}"[:1000])
        del data
        conn.send(answer)
        if answer[0] == "memory":  # start afresh rather than carry on in a fragmented heap
            return


def _cap_address_space(memory_mb: int) -> None:
    """Limit this process's address space to what it maps now plus memory_mb (Linux)."""
    try:
        with open("/proc/self/status") as status:
            mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration):  # no /proc: RLIMIT_AS is not enforced there anyway (macOS)
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
