"""How fast the publish stage loads recipient status rows into DuckDB.

Builds a ledger holding N recipient rows (1000 batches of N/1000), then times:
- upsert: INSERT OR REPLACE of N rows from a DataFrame into the recipients table (the load);
- re-upsert: the same N rows again (a re-sync: no duplicates, same row count);
- publish: the whole stage, ledger read + copy + upsert + checkpoint + atomic rename.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sqlalchemy import insert

from pipelines.ledger import Ledger
from pipelines.publish import publish
from schemas.ledger import RecipientRecord
from schemas.warehouse import TABLES


def recipient_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per_batch = 1000
    stamp = datetime(2026, 11, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "provider_batch_id": np.repeat([f"batch_call_{i:08d}" for i in range(rows // per_batch + 1)], per_batch)[:rows],
            "e164": [f"+1212{n:07d}" for n in range(rows)],
            "campaign": "bench",
            "status": rng.choice(["completed", "busy", "no_answer", "failed"], rows, p=[0.6, 0.2, 0.1, 0.1]),
            "call_record_id": [f"call-{n}" for n in range(rows)],
            "attempted_at": pd.Timestamp(stamp),
            "completed_at": pd.Timestamp(stamp),
            "error": None,
            "synced_at": pd.Timestamp(stamp),
        }
    )


def run(rows: int) -> dict:
    """Time the DuckDB load for `rows` recipient rows; returns the figures."""
    frame = recipient_frame(rows)
    folder = Path(tempfile.mkdtemp(prefix="bench-duckdb-"))
    try:
        db = duckdb.connect(str(folder / "load.duckdb"))
        db.execute(TABLES["recipients"])
        db.register("incoming", frame)
        started = time.perf_counter()
        db.execute("INSERT OR REPLACE INTO recipients SELECT * FROM incoming")
        upsert = time.perf_counter() - started
        started = time.perf_counter()
        db.execute("INSERT OR REPLACE INTO recipients SELECT * FROM incoming")
        again = time.perf_counter() - started
        count = db.execute("SELECT count(*) FROM recipients").fetchone()[0]
        db.close()

        ledger = Ledger(f"sqlite:///{folder / 'ledger.sqlite'}")
        with ledger.engine.begin() as connection:
            connection.execute(insert(RecipientRecord), frame.to_dict("records"))
        started = time.perf_counter()
        publish(ledger, folder / "campaigns.duckdb", ["bench"])
        whole = time.perf_counter() - started
        ledger.close()
        return {"rows": rows, "upsert_seconds": round(upsert, 3), "reupsert_seconds": round(again, 3),
                "rows_after_reupsert": int(count), "publish_seconds": round(whole, 3),
                "upsert_rows_per_second": int(rows / upsert)}  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
