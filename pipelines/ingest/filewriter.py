"""Output files written in order by a writer thread, around the page cache where the system allows it.

A dry run writes a few hundred MB of CSV. Through the page cache every page costs the
writing process a kernel copy, and on virtual machines where fresh guest memory is
expensive that copy costs more than rendering the CSV did (measured on this project's VM:
about 0.5 s of system CPU per 240 MB, against under 0.1 s with O_DIRECT). So a FileWriter
opens its file with O_DIRECT where it can: bytes are staged in a page-aligned buffer and
the device reads them from there, in whole 4 KiB blocks; the last partial block is written
normally when the file is closed. Where O_DIRECT is refused (tmpfs, other systems) it is an
ordinary buffered file. Either way a single writer thread does the writing, so the caller
goes on computing while the disk works.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ALIGN = 4096  # a multiple of the logical block size of the devices in use
STAGE_BYTES = 8 << 20
MAX_QUEUED = 4  # writes handed over but not yet done (each up to a rendered piece); the caller waits beyond this


class FileWriter:
    """An append-only file: `write` bytes in order, then `close` (or `abandon`, which removes it)."""

    def __init__(self, path: str | Path, *, direct: bool = True, stage_bytes: int = STAGE_BYTES):
        if stage_bytes % ALIGN:
            raise ValueError(f"stage_bytes must be a multiple of {ALIGN}")
        self.path = Path(path)
        self._fd = _open_direct(self.path) if direct else None
        self._file = open(self.path, "wb") if self._fd is None else None  # noqa: SIM115 - closed by close/abandon
        self._stage = mmap.mmap(-1, stage_bytes) if self._fd is not None else None
        self._fill = 0  # bytes staged, not yet written
        self._offset = 0  # bytes written through O_DIRECT (always whole blocks)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="writer")
        self._queued: deque[Future] = deque()

    @property
    def direct(self) -> bool:
        return self._fd is not None

    def write(self, data) -> None:
        """Append a bytes-like object (kept alive until it is written); errors surface on a later call."""
        self._queue(self._append, memoryview(data).cast("B"))

    def write_when_ready(self, pieces: Future) -> None:
        """Append the buffers a future will give (in order, after what is already queued), without waiting for it here."""
        self._queue(self._append_all, pieces)

    def _queue(self, work, argument) -> None:
        while len(self._queued) >= MAX_QUEUED:
            self._queued.popleft().result()
        self._queued.append(self._thread.submit(work, argument))

    def close(self) -> None:
        """Write everything still queued or staged and close the file."""
        try:
            while self._queued:
                self._queued.popleft().result()
            self._thread.submit(self._finish).result()
        finally:
            self._thread.shutdown()

    def abandon(self) -> None:
        """Stop writing and remove the file."""
        for future in self._queued:
            future.cancel()
        self._thread.shutdown(wait=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            self._file.close()
        self.path.unlink(missing_ok=True)

    # ---------------------------------------------------------------- on the writer thread

    def _append_all(self, pieces: Future) -> None:
        for piece in pieces.result():
            self._append(memoryview(piece).cast("B"))

    def _append(self, view: memoryview) -> None:
        if self._fd is None:
            self._file.write(view)
            return
        at = 0
        while at < len(view):
            count = min(len(view) - at, len(self._stage) - self._fill)
            self._stage[self._fill : self._fill + count] = view[at : at + count]
            self._fill += count
            at += count
            if self._fill == len(self._stage):
                self._write_staged(self._fill)

    def _write_staged(self, count: int) -> None:
        """Write the first `count` staged bytes (a multiple of ALIGN) and keep the rest staged."""
        written = 0
        view = memoryview(self._stage)
        while written < count:
            written += os.write(self._fd, view[written:count])
        view.release()
        self._offset += count
        rest = self._fill - count
        self._stage[:rest] = self._stage[count : self._fill]
        self._fill = rest

    def _finish(self) -> None:
        if self._fd is None:
            self._file.close()
            return
        whole = self._fill // ALIGN * ALIGN
        if whole:
            self._write_staged(whole)
        os.close(self._fd)
        self._fd = None
        if self._fill:  # the last partial block, through the page cache
            with open(self.path, "r+b") as tail:
                tail.seek(self._offset)
                tail.write(self._stage[: self._fill])
        self._stage.close()


def _open_direct(path: Path) -> int | None:
    """A descriptor opened with O_DIRECT that has accepted an aligned write, or None where that is not possible."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flag, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
            return None
        raise
    probe = mmap.mmap(-1, ALIGN)
    try:
        os.write(fd, probe)  # some filesystems open with O_DIRECT but refuse the write
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
            return None
        raise
    finally:
        probe.close()
    return fd
