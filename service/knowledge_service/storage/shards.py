"""Where an Edge store's shard lives on disk, how much disk it may still use, and a live shard
that calls borrow while it can be replaced (by an optimised copy, see ``shadow``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from knowledge_service.core.errors import Unavailable

T = TypeVar("T")
MB = 1 << 20


class DiskRoom:
    """The disk under a store, kept from running out: Edge maps its files into memory, and a write
    into a mapped page that the disk cannot back ends the process (SIGBUS), so writes stop while
    less than ``reserve_mb`` is free (the largest single write seen here grew the store 1.4 MB)."""

    def __init__(self, path: Path, reserve_mb: int) -> None:
        self.path, self.reserve = path, reserve_mb * MB

    def free(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def check(self) -> None:
        """Raise Unavailable, saying what to do, when the reserve is reached."""
        if self.reserve and (free := self.free()) < self.reserve:
            raise Unavailable(
                f"the embedded store's disk ({self.path}) has {free // MB} MB free, less than "
                f"KNOWLEDGE_MIN_FREE_DISK_MB={self.reserve // MB}: free space or grow the disk; "
                "searches and deletes go on, new documents are refused until then"
            )

    def fits(self, directory: Path) -> bool:
        """Whether a copy of ``directory`` leaves the reserve free."""
        size = sum(f.stat().st_blocks * 512 for f in directory.rglob("*") if f.is_file())
        return not self.reserve or self.free() - size >= self.reserve


class ShardHome:
    """Where a store's shard lives: ``<root>/<name>``, or the copy ``<root>/<name>@<n>`` that the
    pointer file ``<root>/<name>.current`` names once an optimised copy has been switched in."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root, name
        self.pointer = root / f"{name}.current"

    def current(self) -> Path:
        try:
            return self.root / self.pointer.read_text().strip()
        except FileNotFoundError:
            return self.root / self.name

    def fresh(self) -> Path:
        """A directory name for a new copy (not existing yet)."""
        taken = [int(p.name.rpartition("@")[2]) for p in self._copies()]
        return self.root / f"{self.name}@{max(taken, default=0) + 1}"

    def switch(self, path: Path) -> None:
        """Make ``path`` the current shard, atomically and durably."""
        staged = self.root / f"{self.name}.current.tmp"
        with staged.open("w") as f:
            f.write(path.name)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staged, self.pointer)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut
        finally:
            os.close(fd)

    def sweep(self) -> None:
        """Delete every shard directory of this store but the current one."""
        current = self.current()
        for path in [self.root / self.name, *self._copies()]:
            if path != current and path.exists():
                shutil.rmtree(path, ignore_errors=True)

    def _copies(self) -> list[Path]:
        return [p for p in self.root.glob(f"{self.name}@*") if p.name.rpartition("@")[2].isdigit()]


@dataclass
class _Held(Generic[T]):
    value: T
    retire: Callable[[T], None]
    users: int = 0
    retired: bool = False


class Swappable(Generic[T]):
    """A resource that calls borrow (``with s.use() as shard``) and that can be replaced while they
    run: the replaced one is retired (``retire``, given with it) when its last borrower returns it."""

    def __init__(self, value: T, retire: Callable[[T], None]) -> None:
        self._lock = threading.Lock()
        self._held = _Held(value, retire)

    @property
    def current(self) -> T:
        return self._held.value

    @contextlib.contextmanager
    def use(self) -> Iterator[T]:
        with self._lock:
            held = self._held
            held.users += 1
        try:
            yield held.value
        finally:
            with self._lock:
                held.users -= 1
                done = held.retired and held.users == 0
            if done:
                held.retire(held.value)

    def swap(self, value: T, retire: Callable[[T], None]) -> None:
        """Calls from now on get ``value``; the old one is retired (here, or by its last user)."""
        with self._lock:
            old, self._held = self._held, _Held(value, retire)
            old.retired = True
            done = old.users == 0
        if done:
            old.retire(old.value)
