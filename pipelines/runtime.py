"""Process tuning, applied explicitly by the CLI entry point and the bench — never by importing a module.

A notebook that imports pipelines.api keeps its own allocator, malloc settings and garbage
collector; `campaigns` and `python -m bench` call `tune()` once, before any work.

- pyarrow's allocator: glibc's (`system`) instead of the wheels' mimalloc, unless
  ARROW_DEFAULT_MEMORY_POOL names one. mimalloc gave freed memory back to the kernel and
  took it again as fresh pages; zeroing them was 28% of a profiled 1M-row dry run's CPU
  samples, 8% with glibc's (bench/RESULTS.md).
- glibc malloc: one arena for all threads, freed memory kept for reuse: ~15% fewer page
  faults, peak RSS 0.80 → 0.65 GB on 1M rows. Not glibc (macOS, musl): nothing to do.
- the cycle collector: paused while a tuned process runs the pipeline (`gc_paused`). The run
  makes few Python objects and no cycles, but each full collection it would trigger walks
  every object the imports made: ~40 ms on the main thread per million rows.
- worker threads: os.cpu_count(), at most MAX_WORKERS.
- leaving: `leave()` ends the process the way the interpreter's exit starts (non-daemon threads
  joined, atexit handlers run, standard streams flushed) and then skips the teardown of every
  module and object, which took ~0.1 s after a 1M-row import (bench/RESULTS.md). The tests'
  fork server ends each command with it too.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

MAX_WORKERS = 8
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h

applied = False


def workers() -> int:
    """How many worker threads the columnar stages use: the machine's cores, capped."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def tune(arrow_memory_pool: str | None = None) -> None:
    """Apply the process tuning once (idempotent). `arrow_memory_pool`: the user's ARROW_DEFAULT_MEMORY_POOL, if any."""
    global applied
    if applied:
        return
    applied = True
    _tune_glibc_malloc()
    if not arrow_memory_pool:
        if "pyarrow" in sys.modules:
            sys.modules["pyarrow"].set_memory_pool(sys.modules["pyarrow"].system_memory_pool())
        else:  # read by Arrow when pyarrow first allocates: a command that never imports it does not pay for it
            os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"



def _tune_glibc_malloc() -> None:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    for option, value in ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30)):
        mallopt(ctypes.c_int(option), ctypes.c_int(value))


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cycle collector off for the block, back on after — only in a tuned process (a notebook's stays as it is)."""
    enabled = applied and gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def leave(code: object) -> NoReturn:
    """Exit with `code` (as sys.exit takes it) without the interpreter's teardown; for the CLI's own process only.

    Python does not promise to finalise the objects alive at exit anyway; what it does promise
    (threads, atexit, flushed streams) is done here, in its order.
    """
    threading._shutdown()  # joins non-daemon threads and shuts idle executors down, as Py_Finalize does first
    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nobody is reading what is left
            pass
    os._exit(code or 0)
