"""Scaling: the project's dry run on 10,000,000 rows against 1,000,000 (target ≤ 12× the time, peak RSS < 3 GB)."""

from __future__ import annotations

from bench.generate import write
from bench.ingest import OUT, timed


def run(rows: int = 10_000_000, base: int = 1_000_000, repeat: int = 2) -> dict:
    figures = {}
    for count in (base, rows):
        path = write(OUT / f"messy_{count}.csv", count)
        figures[str(count)] = timed("ours", path, OUT / f"run_{count}", repeat)
    big, small = figures[str(rows)], figures[str(base)]
    return {"rows": rows, "seconds": round(big["seconds"], 2), "peak_rss_mb": big["peak_rss_mb"],
            "base_rows": base, "base_seconds": round(small["seconds"], 3), "times_base": round(big["seconds"] / small["seconds"], 1),
            "rows_per_second": big["rows_per_second"]}  # fmt: skip
