"""BEIR datasets for evaluation: corpus, queries and qrels, read within bounds and confined to a root."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge_service.core.errors import InvalidArgument
from knowledge_service.schemas.evaluations import DATASETS_SETTING, MAX_EVAL_JUDGMENTS, MAX_EVAL_QUERIES

if TYPE_CHECKING:
    pass


MAX_EVAL_FILE_BYTES = 64 * 1024 * 1024  # each of queries.jsonl and qrels/<split>.tsv
MAX_LISTED_SPLITS = 20
SPLIT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
QRELS_FORMAT = "expected 'query-id<TAB>corpus-id<TAB>score'"
RECORD_FORMAT = "expected a JSON object with an '_id' (one BEIR record per line)"


@dataclass(frozen=True)
class BeirDataset:
    """One BEIR collection and split; ``queries`` holds only queries judged in that split.

    ``corpus`` is empty and ``fingerprint`` None when the corpus was not read.
    """

    name: str
    corpus: dict[str, tuple[str, str]] = field(repr=False)
    queries: dict[str, str] = field(repr=False)
    qrels: dict[str, dict[str, int]] = field(repr=False)
    fingerprint: str | None

    def texts(self) -> dict[str, str]:
        """Doc id -> "title. text" (the text alone when there is no title)."""
        return {d: f"{t}. {x}" if t else x for d, (t, x) in self.corpus.items()}


def load_beir(
    directory: Path | str, split: str, *, root: Path | None = None, with_corpus: bool = True
) -> BeirDataset:
    """Load ``qrels/<split>.tsv``, ``queries.jsonl`` and (``with_corpus``) ``corpus.jsonl``.

    With ``root`` (a dataset a caller names on the server), ``directory`` is a folder name
    relative to ``root`` or a path inside it. The folder and every file read must resolve
    (symlinks followed) inside ``root``, and the limits apply: at most MAX_EVAL_QUERIES judged
    queries and MAX_EVAL_JUDGMENTS judgments, and each file at most MAX_EVAL_FILE_BYTES, checked
    before it is read. Without ``root`` (the offline CLI, on the operator's own files) nothing is
    confined or bounded.

    Messages name the dataset (relative to ``root`` when given) and its files relative to the
    dataset folder, and never quote file contents: no line, no parser message, no id.

    Raises:
        InvalidArgument: the folder, a file or the split is missing or outside ``root``, a line
            is malformed, a judged query has no text, or a limit is exceeded.
    """
    source = _Folder(directory, root)
    corpus_path = source.file("corpus.jsonl") if with_corpus else None
    queries_path = source.file("queries.jsonl")
    qrels_rel = f"qrels/{_checked_split(split)}.tsv"
    qrels_dir = source.folder("qrels")
    if qrels_dir is None or not _is((qrels_dir / f"{split}.tsv").is_file):
        splits = source.splits()
        shown = ", ".join(splits[:MAX_LISTED_SPLITS]) + (", ..." if len(splits) > MAX_LISTED_SPLITS else "")
        raise source.fail(
            f"split {split!r} not found (no {qrels_rel}); available splits: {shown or 'none'}", "split"
        )
    qrels_path = source.file(qrels_rel, "split")
    qrels = source.read_qrels(qrels_path, qrels_rel)
    queries = {
        qid: str(row.get("text") or "")
        for qid, row in source.read_records(queries_path, "queries.jsonl")
        if qid in qrels
    }
    if len(queries) < len(qrels):
        raise source.fail(
            f"{len(qrels) - len(queries)} of the {len(qrels)} judged queries in {qrels_rel} have no text "
            "in queries.jsonl"
        )
    corpus: dict[str, tuple[str, str]] = {}
    fingerprint = None
    if corpus_path is not None:
        digest = hashlib.sha256()
        corpus = {
            doc_id: (str(row.get("title") or ""), str(row.get("text") or ""))
            for doc_id, row in source.read_records(corpus_path, "corpus.jsonl", digest)
        }
        fingerprint = digest.hexdigest()
    return BeirDataset(source.name, corpus, queries, qrels, fingerprint)


def _checked_split(split: str) -> str:
    if not SPLIT_PATTERN.fullmatch(split):
        raise InvalidArgument(
            "split: must name a qrels file such as 'test' or 'train' (letters, digits, '_', '-', '.')",
            field="split",
        )
    return split


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size % 2**20 else f"{size // 2**20} MiB"


# What the file system raises for a bad name (NUL byte, too long), a symlink loop or no access.
_FS_ERRORS = (OSError, RuntimeError, ValueError)


def _reason(exc: BaseException) -> str:
    """The OS's reason (e.g. "Permission denied"), never its text: that may hold a path."""
    strerror = getattr(exc, "strerror", None)
    return f" ({strerror})" if isinstance(strerror, str) and strerror else ""


def _is(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except _FS_ERRORS:
        return False


class _Folder:
    """A BEIR folder being read: where it is, how to name it in messages, what confines it."""

    def __init__(self, directory: Path | str, root: Path | None) -> None:
        self.root: Path | None = None
        if root is None:
            self.path = Path(directory)
            self.label = str(directory)
        else:
            self.root = Path(root).resolve()
            if not _is(self.root.is_dir):
                raise InvalidArgument(
                    f"dataset: the evaluation datasets folder ({DATASETS_SETTING}) does not exist on this "
                    "server; ask its operator to create it, or upload queries and qrels instead",
                    field="dataset",
                )
            refusal = InvalidArgument(
                "dataset: must name a folder inside the evaluation datasets folder "
                f"({DATASETS_SETTING}), e.g. 'scifact'; '..' and symbolic links may not lead out of it",
                field="dataset",
            )
            try:
                self.path = (self.root / directory).resolve()
            except _FS_ERRORS:
                raise refusal from None
            if not self.path.is_relative_to(self.root):
                raise refusal
            self.label = self.path.relative_to(self.root).as_posix()
        self.name = self.path.name
        if not _is(self.path.is_dir):
            raise self.fail("folder not found")

    def fail(self, message: str, field: str = "dataset") -> InvalidArgument:
        return InvalidArgument(f"dataset {self.label!r}: {message}", field=field)

    def _inside(self, rel: str) -> Path:
        path = self.path / rel
        if self.root is None:
            return path
        try:
            path = path.resolve()
        except _FS_ERRORS as exc:
            raise self.fail(f"{rel} cannot be read{_reason(exc)}") from None
        if not path.is_relative_to(self.root):
            raise self.fail(f"{rel} leads outside the evaluation datasets folder ({DATASETS_SETTING})")
        return path

    def folder(self, rel: str) -> Path | None:
        path = self._inside(rel)
        return path if _is(path.is_dir) else None

    def splits(self) -> list[str]:
        """The splits the dataset offers: the names of its qrels files."""
        qrels = self.folder("qrels")
        try:
            names = [p.stem for p in qrels.glob("*.tsv")] if qrels else []
        except _FS_ERRORS:
            return []
        return sorted(n for n in names if SPLIT_PATTERN.fullmatch(n))

    def file(self, rel: str, field: str = "dataset") -> Path:
        """The file's path, checked: inside the root, a regular file, and (bounded) not too large."""
        path = self._inside(rel)
        if not _is(path.is_file):
            raise self.fail(f"{rel} not found", field)
        if self.root is not None:
            try:
                size = path.stat().st_size
            except _FS_ERRORS as exc:
                raise self.fail(f"{rel} cannot be read{_reason(exc)}") from None
            self._check_size(size, rel)
        return path

    def _check_size(self, size: int, rel: str) -> None:
        if size > MAX_EVAL_FILE_BYTES:
            raise self.fail(
                f"{rel} is over {_mib(MAX_EVAL_FILE_BYTES)} (MAX_EVAL_FILE_BYTES); evaluate a smaller "
                "split or a sample of the queries, or upload queries and qrels"
            )

    def lines(self, path: Path, rel: str, digest: hashlib._Hash | None = None) -> Iterator[tuple[int, str]]:
        """(line number, text) of each line; bounded, a file that grows past the limit is refused."""
        limit = MAX_EVAL_FILE_BYTES if self.root is not None else None
        read = 0
        try:
            handle = path.open("rb")
        except _FS_ERRORS as exc:
            raise self.fail(f"{rel} cannot be read{_reason(exc)}") from None
        with handle:
            for number in itertools.count(1):
                try:
                    raw = handle.readline() if limit is None else handle.readline(limit + 1 - read)
                except OSError as exc:
                    raise self.fail(f"{rel} line {number} cannot be read{_reason(exc)}") from None
                if not raw:
                    return
                read += len(raw)
                if limit is not None:
                    self._check_size(read, rel)
                if digest is not None:
                    digest.update(raw)
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise self.fail(f"{rel} line {number}: not UTF-8 text") from None
                yield number, text

    def read_records(
        self, path: Path, rel: str, digest: hashlib._Hash | None = None
    ) -> Iterator[tuple[str, dict]]:
        for number, line in self.lines(path, rel, digest):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # the parser's message may quote the line
                raise self.fail(f"{rel} line {number}: not valid JSON; {RECORD_FORMAT}") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise self.fail(f"{rel} line {number}: {RECORD_FORMAT}")
            yield str(row["_id"]), row

    def read_qrels(self, path: Path, rel: str) -> dict[str, dict[str, int]]:
        bounded = self.root is not None
        qrels: dict[str, dict[str, int]] = {}
        judgments = 0
        reader = csv.reader((text for _, text in self.lines(path, rel)), delimiter="\t")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return qrels
            except csv.Error:
                raise self.fail(f"{rel} line {reader.line_num}: {QRELS_FORMAT}") from None
            if not row or (reader.line_num == 1 and row[:1] == ["query-id"]):
                continue
            try:
                qid, doc_id, score = row
                grade = int(score)
            except ValueError:
                raise self.fail(f"{rel} line {reader.line_num}: {QRELS_FORMAT}") from None
            judged = qrels.get(qid)
            if judged is None:
                if bounded and len(qrels) == MAX_EVAL_QUERIES:
                    raise self.fail(
                        f"{rel} judges more than {MAX_EVAL_QUERIES} queries (MAX_EVAL_QUERIES); evaluate a "
                        f"smaller split, or upload at most {MAX_EVAL_QUERIES} queries with their qrels"
                    )
                judged = qrels[qid] = {}
            judged[doc_id] = grade
            judgments += 1
            if bounded and judgments > MAX_EVAL_JUDGMENTS:
                raise self.fail(
                    f"{rel} holds more than {MAX_EVAL_JUDGMENTS} judgments (MAX_EVAL_JUDGMENTS); evaluate a "
                    "smaller split, or upload fewer queries with their qrels"
                )
