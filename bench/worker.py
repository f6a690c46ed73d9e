"""One side of the ingest benchmark, in its own process so its peak RSS is its own.

python -m bench.worker naive|ours FILE OUT_DIR  → prints {"seconds", "peak_rss_mb", "rows"} as JSON,
and leaves per-row decisions in OUT_DIR for the comparison.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def naive_side(path: str, out: Path) -> dict:
    from bench.naive import naive

    started = time.perf_counter()
    frame = naive(path)
    seconds = time.perf_counter() - started
    pd.DataFrame({"row": np.arange(2, len(frame) + 2), "e164": frame["e164"], "keep": frame["keep"]}).to_parquet(out / "naive.parquet")
    return {"seconds": seconds, "rows": len(frame)}


def ours_side(path: str, out: Path) -> dict:
    """Exactly what `campaigns import --dry-run --out` runs: the one pipeline with the output-files sink."""
    from pipelines.ingest.options import IngestOptions
    from pipelines.ingest.pipeline import run
    from pipelines.ingest.sinks import CsvFiles
    from pipelines.runtime import tune

    tune()  # as the CLI does

    started = time.perf_counter()
    summary = run([path], IngestOptions("bench"), [CsvFiles(out / "ours")])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": summary.rows_read, "accepted": summary.accepted, "duplicates": summary.duplicates,
            "rejected": summary.rejected, "reject_reasons": summary.reject_reasons}  # fmt: skip


if __name__ == "__main__":
    side, file, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    folder.mkdir(parents=True, exist_ok=True)
    figures = naive_side(file, folder) if side == "naive" else ours_side(file, folder)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures))
