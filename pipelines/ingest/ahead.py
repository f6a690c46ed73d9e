"""What an import starts before its first stage: the files' hashes, the first file's read and the prefix tables of
its region.

All run on the worker threads (hashlib, Arrow's reader and RE2 release the GIL), so whatever
the calling thread does meanwhile overlaps them. `pipeline.run` starts the read and the tables
itself, as its first step; the command line starts them as soon as an import's options are
known, so that they run while the interpreter loads the rest of the pipeline's modules (pandas
alone ~0.3 s here) and, for a real import, opens the ledger — work that would otherwise use one
core and leave the other idle. A real import hashes each file before it is read (pipelines.run
compares the hashes after the read, so that a file changed meanwhile is never planned): started
with `hashed=True`, the first file's read waits for every hash.

This module loads only the reader and the phone tables, not the stages.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import InputError

from pipelines.ingest.fastphone import TABLE_MIN_ROWS, prepare_tables
from pipelines.ingest.options import IngestOptions
from pipelines.ingest.read import CSV_SUFFIXES, TSV_SUFFIXES, RawSheet, delimited_batches
from pipelines.ingest.threads import pool

PREPARE_FROM_BYTES = TABLE_MIN_ROWS * 50  # inputs this large (~50 bytes a row) will likely validate by prefix table


@dataclass
class Ahead:
    """The started work: `first` is the first file's batches (delimited_batches' result, None when the streaming reader
    declines it), or None when that file is not for the streaming reader."""

    path: Path | None
    first: Future[Iterator[RawSheet] | None] | None
    digests: Future[list[str]] | None = None  # every file's SHA-256, taken before any was read (hashed=True)
    stop: threading.Event = field(default_factory=threading.Event)

    def hashes(self, paths: Sequence[str | Path]) -> list[str]:
        """Each file's SHA-256 before it was read: the ones taken ahead, else taken now."""
        if self.digests is not None:
            return self.digests.result()
        return [hash_input(path, before=True) for path in paths]

    def batches(self, path: Path, options: IngestOptions) -> Iterator[RawSheet] | None:
        """The streaming reader's batches of `path` (None: read_sheet must read it): the read started ahead, the first
        time that file is asked for; else a read started now."""
        if self.first is not None and path == self.path:
            first, self.first = self.first, None
            return first.result()
        return delimited_batches(path, options.header) if streamable(path, options) else None

    def cancel(self) -> None:
        """Drop what has not been done yet (the command failed before it needed it): hashing stops at its next
        megabyte, a read not yet begun is not begun, so the process leaves without waiting for them."""
        self.stop.set()


def start(paths: Sequence[str | Path], options: IngestOptions, *, hashed: bool = False) -> Ahead:
    """Start reading the first file and building the region's prefix tables (for inputs large enough to use them);
    `hashed`: hash every file first, in the same task, so that a file is read only once every file is hashed."""
    files = [Path(path) for path in paths]
    if sum(path.stat().st_size for path in files if path.is_file()) >= PREPARE_FROM_BYTES:
        pool().submit(prepare_tables, options.region)
    first = files[0] if files and streamable(files[0], options) else None
    if not hashed:
        return Ahead(first, pool().submit(delimited_batches, first, options.header) if first else None)
    ahead = Ahead(first, None, Future())
    read = pool().submit(_hash_then_read, files, first, options.header, ahead)
    ahead.first = read if first else None
    return ahead


def _hash_then_read(files: list[Path], first: Path | None, header: int | None, ahead: Ahead) -> Iterator[RawSheet] | None:
    """One task (a task of the pool never waits for another): every file's hash, then the first file's read."""
    try:
        ahead.digests.set_result([hash_input(path, before=True, stop=ahead.stop) for path in files])
    except BaseException as exc:
        ahead.digests.set_exception(exc)
        raise
    return delimited_batches(first, header) if first is not None and not ahead.stop.is_set() else None


def streamable(path: Path, options: IngestOptions) -> bool:
    """Whether the streaming reader may take the file: UTF-8 (or no encoding given) delimited text."""
    utf8 = options.encoding is None or options.encoding.replace("_", "-").lower() in ("utf-8", "utf8")
    return utf8 and path.suffix.lower() in CSV_SUFFIXES | TSV_SUFFIXES and path.is_file()


def file_sha256(path: str | Path, stop: threading.Event | None = None) -> str:
    """A file's SHA-256 (CancelledError once `stop` is set)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            if stop is not None and stop.is_set():
                raise CancelledError
            digest.update(block)
    return digest.hexdigest()


def hash_input(path: str | Path, *, before: bool = False, stop: threading.Event | None = None) -> str:
    """A file's SHA-256, before it is read or after (a file gone after reading was moved while it was imported)."""
    try:
        return file_sha256(path, stop)
    except FileNotFoundError:
        if before:
            raise InputError("file not found", path=str(path), code="not_found") from None
        raise InputError("file not found (it was moved or deleted while it was imported)", path=str(path),
                         code="changed_while_reading") from None  # fmt: skip
    except IsADirectoryError:
        raise InputError("is a folder, not a spreadsheet", path=str(path), code="not_a_file") from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=str(path), code="unreadable") from None
