"""Optimising an Edge shard without pausing the service: on a copy, in a child process, swapped in.

Edge's ``optimize()`` holds the GIL for as long as it runs (minutes at 100k points), so run in the
serving process it stops every request, health checks included. Instead (``LiveShard.optimise``):

1. with writes held back, the live shard's directory is copied (about 0.6 s at 100k points;
   searches go on, writes wait);
2. a child process, at a lower CPU priority, loads the copy, optimises it and closes it, while the
   live shard goes on serving and taking writes, each of which is also kept in a journal;
3. the optimised copy is loaded here and the journal replayed onto it (most of it while writes go
   on, the rest with writes held back); it is flushed, the pointer file is switched to it in one
   atomic rename, calls move to it, and the old shard closes when its last call ends.

A crash at any step leaves the pointer on a shard that holds every acknowledged write: before the
switch the old one (its WAL), after it the new one (flushed with the journal replayed). The copies
a crash leaves behind are deleted when the store opens.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import qdrant_edge as qe

from knowledge_service.storage.shards import DiskRoom, ShardHome, Swappable

log = logging.getLogger(__name__)
CHILD_NICENESS = 10
PR_SET_PDEATHSIG = 1
JOURNAL_POINTS = 50_000  # writes kept while a copy is optimised (about 3 kB each); beyond: retry later
CATCH_UP_OPS = 32  # journal replayed with writes held back: at most about this many operations


class LiveShard:
    """The store's open shard: calls borrow it (``use``), writes pass through ``update`` one at a
    time, and ``optimise`` replaces it by an optimised copy without stopping either."""

    def __init__(self, home: ShardHome, shard: qe.EdgeShard, room: DiskRoom) -> None:
        self.home, self._room = home, room
        self.path = path = home.current()
        self._shard = Swappable(shard, lambda old: _retire(old, path))
        self._writes = threading.Lock()
        self._journal: list[qe.UpdateOperation] | None = None  # while a copy is optimised
        self._journal_points = 0
        self._optimising = threading.Lock()
        self._child = OptimiseChild()
        home.sweep()  # copies a crash left behind (only once this process owns the store)

    @property
    def current(self) -> qe.EdgeShard:
        return self._shard.current

    @contextlib.contextmanager
    def use(self) -> Iterator[qe.EdgeShard]:
        with self._shard.use() as shard:
            yield shard

    def update(self, op: qe.UpdateOperation, points: int) -> None:
        with self._writes, self._shard.use() as shard:
            shard.update(op)
            if self._journal is not None:
                self._journal.append(op)
                self._journal_points += max(points, 1)
                if self._journal_points > JOURNAL_POINTS:
                    log.warning("writes outran the optimisation of a copy; it is dropped, to retry later")
                    self._journal = None

    def optimise(self) -> bool:
        """Optimise a copy and swap it in; False if it was given up (closing, writes outran it)."""
        with self._optimising:
            if not self._room.fits(self.path):
                log.warning("not optimising the index: a copy of it would leave too little disk free")
                return False
            started = time.monotonic()
            copy = self.home.fresh()
            log.info("edge index: optimising a copy at %s", copy)
            try:
                with self._writes:  # a consistent copy: no write lands while its files are read
                    shutil.copytree(self.path, copy)
                    self._journal, self._journal_points = [], 0
                if not self._child.run(copy):
                    return False  # the store is closing
                optimised = time.monotonic()
                fresh = qe.EdgeShard.load(str(copy))
                try:
                    replayed = self._switch(fresh, copy)
                except BaseException:
                    fresh.close()
                    raise
                if replayed is None:
                    fresh.close()
                    return False
            finally:
                with self._writes:
                    self._journal = None
                if copy != self.path:
                    shutil.rmtree(copy, ignore_errors=True)
        log.info(
            "edge index optimised on a copy in %.1fs, swapped in %.2fs later (%d writes replayed)",
            optimised - started,
            time.monotonic() - optimised,
            replayed,
        )
        return True

    def _switch(self, fresh: qe.EdgeShard, copy: Path) -> int | None:
        """Replay the journal onto the optimised copy and make it the live shard; returns how many
        writes were replayed, or None if writes outran it."""
        done = 0
        while True:  # catch up while writes go on, until little is left
            with self._writes:
                if self._journal is None:
                    return None
                pending = self._journal[done:]
            if len(pending) <= CATCH_UP_OPS:
                break
            for op in pending:
                fresh.update(op)
            done += len(pending)
        with self._writes:
            if self._journal is None:
                return None
            for op in self._journal[done:]:
                fresh.update(op)
            fresh.flush()
            self.home.switch(copy)
            self.path = copy
            self._shard.swap(fresh, lambda old: _retire(old, copy))
            return len(self._journal)

    def close(self) -> None:
        self._child.stop()
        with self._optimising:  # a running optimisation ends (its child is gone) and cleans up
            shard = self._shard.current
            shard.flush()
            shard.close()


def _retire(shard: qe.EdgeShard, path: Path) -> None:
    """Close a shard that has been replaced and delete its directory."""
    shard.close()
    shutil.rmtree(path, ignore_errors=True)


class OptimiseChild:
    """``python -m knowledge_service.storage.shadow PATH``: optimises the shard copy at PATH."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False

    def run(self, path: Path) -> bool:
        """Optimise ``path`` in a child; True if it finished, False if stopped. Raises if it failed."""
        with self._lock:
            if self._stopped:
                return False
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(path), str(os.getpid())],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        _, err = self._proc.communicate()
        with self._lock:
            code, self._proc = self._proc.returncode, None
            if self._stopped:
                return False
        if code != 0:
            raise RuntimeError(f"optimising {path} failed ({code}): {err.decode(errors='replace')[-2000:]}")
        return True

    def stop(self) -> None:
        """End a running child and refuse new ones (the store is closing)."""
        with self._lock:
            self._stopped = True
            if self._proc is not None:
                self._proc.kill()


def _die_with_parent(parent: int) -> None:
    """Linux: end this process when the service that started it ends, even by ``kill -9`` (the
    signal comes when the thread that started it ends: a store thread, which lives as long as the
    store, and the store's close ends the child first anyway)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the request took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    _die_with_parent(int(argv[1]))
    os.nice(CHILD_NICENESS)  # serving comes first; the copy is only worth having later
    shard = qe.EdgeShard.load(argv[0])
    shard.optimize()
    shard.flush()
    shard.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
