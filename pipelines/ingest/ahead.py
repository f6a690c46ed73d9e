"""What an import starts before its first stage: the first file's read and the prefix tables of its region.

Both run on the worker threads (Arrow's reader and RE2 release the GIL), so whatever the
calling thread does meanwhile overlaps them. `pipeline.run` starts them itself, as its first
step; a dry run from the command line starts them as soon as its options are known, so that
they run while the interpreter loads the rest of the pipeline's modules (pandas alone
~0.3 s here), which would otherwise use one core and leave the other idle. A real import
does not: it hashes each file before reading it (pipelines.run), so its read starts after that.

This module loads only the reader and the phone tables, not the stages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

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

    def batches(self, path: Path, options: IngestOptions) -> Iterator[RawSheet] | None:
        """The streaming reader's batches of `path` (None: read_sheet must read it): the read started ahead, the first
        time that file is asked for; else a read started now."""
        if self.first is not None and path == self.path:
            first, self.first = self.first, None
            return first.result()
        return delimited_batches(path, options.header) if streamable(path, options) else None


def start(paths: Sequence[str | Path], options: IngestOptions) -> Ahead:
    """Start reading the first file and building the region's prefix tables (for inputs large enough to use them)."""
    files = [Path(path) for path in paths]
    if sum(path.stat().st_size for path in files if path.is_file()) >= PREPARE_FROM_BYTES:
        pool().submit(prepare_tables, options.region)
    if not files or not streamable(files[0], options):
        return Ahead(None, None)
    return Ahead(files[0], pool().submit(delimited_batches, files[0], options.header))


def streamable(path: Path, options: IngestOptions) -> bool:
    """Whether the streaming reader may take the file: UTF-8 (or no encoding given) delimited text."""
    utf8 = options.encoding is None or options.encoding.replace("_", "-").lower() in ("utf-8", "utf8")
    return utf8 and path.suffix.lower() in CSV_SUFFIXES | TSV_SUFFIXES and path.is_file()
