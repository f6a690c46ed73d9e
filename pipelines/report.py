"""Report stage: what the analysts' DuckDB file holds, read without writing, quickly.

`campaigns report` loads only DuckDB's engine (no pandas, no SQLAlchemy, not even the `duckdb` package's Python
relation layer, whose import alone costs ~0.13 s here): it starts in a fraction of a second. The engine is the C
extension `_duckdb` that `duckdb.connect` and `duckdb.Error` are re-exported from; a report needs only its
execute/fetch. Code that hands a connection to users, or uses `.sql`, imports `duckdb` first, which attaches the
relation methods to every connection. The notebook API (pipelines.api) turns the same reads into DataFrames.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import _duckdb as duckdb  # the engine alone (see above); the same connect and Error as the duckdb package's
except ImportError:  # pragma: no cover - a duckdb build without the split extension
    import duckdb

if TYPE_CHECKING:
    import pandas as pd

# campaign_summary's columns that hold money or rates: DuckDB DECIMALs, handed over as floats
FLOAT_COLUMNS = ("completion_rate", "estimated_dial_cost")


@dataclass(frozen=True)
class Published:
    """What a DuckDB file holds: the ledger it came from and the last change it received."""

    ledger_id: str
    change_seq: int


def connect_read_only(db: Path):
    """A read-only connection to the newest published file (never a stale in-process cached one).

    The file is ATTACHed to an in-memory database, its path passed as a parameter: a
    path is never pasted into SQL.
    """
    if not db.exists():
        from pipelines.errors import UsageError

        raise UsageError(f"no report database at {db} yet: run `campaigns import` (and `campaigns sync`) first")
    connection = duckdb.connect()
    try:
        connection.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(db)])
        connection.execute("USE warehouse")
    except duckdb.Error as exc:
        connection.close()
        from pipelines.errors import UsageError

        raise UsageError(f"{db} cannot be read as the report database ({str(exc).splitlines()[0]}); check --db (if it "
                         "is the report file and damaged, delete it: `campaigns publish` rebuilds it)") from exc  # fmt: skip
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def reader(db: Path):
    """`with reader(db) as connection:` — connect_read_only, closed at the end of the block."""
    connection = connect_read_only(db)
    try:
        yield connection
    finally:
        connection.close()


def published_state(db: Path, connection=None) -> Published | None:
    """The ledger and watermark a DuckDB file was published from (None: missing, or made before watermarks)."""
    if connection is None:
        if not db.exists():
            return None
        with reader(db) as connection:
            return published_state(db, connection)
    try:
        row = connection.execute("SELECT ledger_id, change_seq FROM publish_state").fetchone()
    except duckdb.Error:
        return None
    return Published(row[0], int(row[1])) if row else None


def ledger_head(ledger_url: str) -> Published | None:
    """The ledger's identity and newest change, read without writing (None when it cannot be read).

    SQLite is read with the standard library (a report need not load SQLAlchemy), opened
    read-only; other databases through the Ledger.
    """
    if ledger_url.startswith("sqlite:///"):
        path = ledger_url.removeprefix("sqlite:///")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
                (ledger_id,) = connection.execute("SELECT value FROM ledger_meta WHERE key = 'ledger_id'").fetchone() or ("",)
                (head,) = connection.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
            return Published(ledger_id, int(head))
        except sqlite3.Error:
            return None
    from pipelines.errors import CampaignError
    from pipelines.ledger import Ledger

    from sqlalchemy.exc import SQLAlchemyError

    try:
        with Ledger(ledger_url, read_only=True) as ledger:
            return Published(ledger.ledger_id, ledger.change_head())
    except (CampaignError, SQLAlchemyError):  # unreachable, or nothing in it yet: the report is the file's, unchecked
        return None


def lag(ledger_url: str, db: Path, state: Published | None = None) -> int:
    """How many ledger changes the DuckDB file (whose `state` is known, or read) does not hold yet (0 when up to
    date, or when the ledger cannot be read)."""
    head = ledger_head(ledger_url)
    if head is None:
        return 0
    state = state or published_state(db)
    if state is None or state.ledger_id != head.ledger_id:
        return head.change_seq
    return max(0, head.change_seq - state.change_seq)


def staleness(ledger_url: str | None, db: Path, state: Published | None = None) -> str | None:
    """A warning when the DuckDB file lags the ledger (another host wrote to a shared ledger, or a publish failed or
    was killed), else None."""
    if ledger_url is None or not db.exists():
        return None
    behind = lag(ledger_url, db, state)
    if not behind:
        return None
    return (f"{db} is behind the ledger by {behind} change(s) (made by another host sharing the ledger, or a publish "
            "that failed or was interrupted); `campaigns publish` brings it up to date, as does the next import or sync")  # fmt: skip


def _summary_query(campaign: str | None) -> tuple[str, dict | None]:
    """campaign_summary with its rates and money as DOUBLE (DuckDB's DECIMALs would reach Python as Decimal)."""
    casts = ", ".join(f"{column}::DOUBLE AS {column}" for column in FLOAT_COLUMNS)
    query = f"SELECT * REPLACE ({casts}) FROM campaign_summary" + (" WHERE campaign = $campaign" if campaign else "")  # noqa: S608
    return query, ({"campaign": campaign} if campaign else None)


def summary_rows(db: Path, campaign: str | None = None) -> tuple[list[dict], Published | None]:
    """campaign_summary, one dict per campaign (counts as int, rates and money as float), and the file's watermark."""
    query, params = _summary_query(campaign)
    with reader(db) as connection:
        cursor = connection.execute(query, params or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()], published_state(db, connection)


def summary(db: Path, campaign: str | None = None) -> pd.DataFrame:
    """campaign_summary as a DataFrame: one row per campaign; text as pandas' string dtype, counts int64, rates and
    money float64 — the same dtypes with no rows."""
    import duckdb as relations  # noqa: F401 - attaches .sql to connections

    query, params = _summary_query(campaign)
    with reader(db) as connection:
        return connection.sql(query, params=params).to_arrow_table().to_pandas()


def outcomes(db: Path, campaign: str | None = None, *, expand_variables: bool = True) -> pd.DataFrame:
    """recipient_outcomes: each contact's latest status; variables as `var_<key>` columns to group by."""
    import duckdb as relations  # noqa: F401 - attaches .sql to connections
    import pandas as pd

    with reader(db) as connection:
        query = "SELECT * FROM recipient_outcomes" + (" WHERE campaign = $campaign" if campaign else "") + " ORDER BY campaign, e164"
        frame = connection.sql(query, params={"campaign": campaign} if campaign else None).to_arrow_table().to_pandas()
    frame["variables"] = pd.Series([json.loads(text) if isinstance(text, str) else {} for text in frame["variables"]],
                                   index=frame.index, dtype=object)  # fmt: skip
    if expand_variables and len(frame):
        wide = pd.json_normalize(frame["variables"].tolist()).add_prefix("var_")
        wide.index = frame.index
        frame = pd.concat([frame, wide], axis=1)
    return frame


SUMMARY_COLUMNS = ["campaign", "rows_read", "accepted", "duplicates", "already_submitted", "cooled_down", "state_capped", "rejected", "suppressed",
                   "submitted", "awaiting_submission", "cancelled", "completed", "failed", "skipped", "pending", "completion_rate",
                   "estimated_dial_cost"]  # fmt: skip


def summary_lines(rows: list[dict], width: int | None = None) -> list[str]:
    """campaign_summary as plain text: one aligned line per campaign under a header; on a terminal narrower than
    that (`width`), one block per campaign instead. Never wrapped, nothing cut."""
    from pipelines.text import aligned, blocks

    def cell(row: dict, column: str) -> str:
        value = row.get(column)
        if column == "completion_rate":
            return "" if value is None or value != value else f"{value:.1%}"
        if column == "estimated_dial_cost":
            return f"${value:,.3f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    header = [column.replace("_", " ") for column in SUMMARY_COLUMNS]
    table = [[cell(row, column) for column in SUMMARY_COLUMNS] for row in rows]
    lines = aligned(header, table)
    if width is not None and max(map(len, lines)) > width:
        return blocks(header, table)
    return lines
