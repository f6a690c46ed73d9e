"""The worker threads the columnar stages share.

Arrow compute, numpy, DuckDB and the Arrow CSV writer release the GIL while they work, so
halves of a column on two threads take about half the time on this machine kind's two
cores. One pool serves every stage; a task in it must never wait for another task in it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from pipelines.runtime import workers


@lru_cache(maxsize=1)
def pool() -> ThreadPoolExecutor:
    """The worker threads (as many as the machine has cores, capped: pipelines.runtime.workers)."""
    return ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="columns")
