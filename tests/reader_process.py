"""Run as a separate process: an analyst holding the DuckDB file open read-only while the tool writes.

Prints one JSON object: how many queries ran, every error, and what fresh readers saw.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

CHECKS = {
    # every row read is accounted for
    "accounting": "SELECT count(*) FROM campaign_summary WHERE rows_read <> accepted + duplicates + already_submitted + cooled_down + rejected + suppressed",
    # outcomes add up to what was submitted
    "outcomes": "SELECT count(*) FROM campaign_summary WHERE completed + failed + skipped + pending <> submitted",
    # a synced batch's recipients were written with it: never half a sync
    "whole_sync": """SELECT count(*) FROM batches b WHERE b.synced_at IS NOT NULL AND (
        b.total <> (SELECT count(*) FROM recipients r WHERE r.provider_batch_id = b.provider_batch_id) OR
        b.completed <> (SELECT count(*) FROM recipients r WHERE r.provider_batch_id = b.provider_batch_id AND r.status = 'completed'))""",
}


def check(connection) -> dict:
    violations = {name: connection.execute(sql).fetchone()[0] for name, sql in CHECKS.items()}
    completed = connection.execute("SELECT coalesce(sum(completed), 0) FROM campaign_summary").fetchone()[0]
    rows = connection.execute("SELECT coalesce(sum(rows_read), 0) FROM campaign_summary").fetchone()[0]
    return {"violations": violations, "completed": int(completed), "rows_read": int(rows)}


def main(path: str, stop_file: str) -> None:
    held = duckdb.connect(path, read_only=True)  # what a notebook does, and keeps open
    queries, errors, fresh = 0, [], []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            check(held)
            queries += 1
            if queries % 5 == 0:  # a new reader sees the newest complete file
                connection = duckdb.connect()
                connection.execute(f"ATTACH '{path}' AS w (READ_ONLY)")
                connection.execute("USE w")
                fresh.append(check(connection))
                connection.close()
                Path(stop_file + ".ready").touch()  # the test waits for a first fresh look before it writes more
        except Exception as exc:  # noqa: BLE001 - every failure is what this process reports
            errors.append(f"{type(exc).__name__}: {exc}")
        try:
            open(stop_file).close()
            break
        except FileNotFoundError:
            time.sleep(0.03)
    held.close()
    print(json.dumps({"queries": queries, "errors": errors, "fresh": fresh}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
