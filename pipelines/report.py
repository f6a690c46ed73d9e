"""Report stage: campaign_summary and recipient_outcomes from the DuckDB file, as DataFrames."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipelines.publish import reader


def staleness(ledger_url: str | None, db: Path) -> str | None:
    """A warning when the DuckDB file lags the ledger (a publish failed or was killed), else None."""
    if ledger_url is None or not db.exists():
        return None
    from pipelines.errors import CampaignError
    from pipelines.ledger import Ledger
    from pipelines.publish import lag

    try:
        with Ledger(ledger_url, read_only=True) as ledger:
            behind = lag(ledger, db)
    except CampaignError:  # an unreadable ledger is not the report's business: it reads DuckDB
        return None
    if not behind:
        return None
    return (f"{db} is behind the ledger by {behind} change(s) (a publish failed or was interrupted); "
            "`campaigns publish` brings it up to date, as does the next import or sync")  # fmt: skip


def summary(db: Path, campaign: str | None = None) -> pd.DataFrame:
    """campaign_summary: one row per campaign."""
    with reader(db) as connection:
        query = "SELECT * FROM campaign_summary" + (" WHERE campaign = $campaign" if campaign else "")
        return connection.sql(query, params={"campaign": campaign} if campaign else None).to_arrow_table().to_pandas()


def outcomes(db: Path, campaign: str | None = None, *, expand_variables: bool = True) -> pd.DataFrame:
    """recipient_outcomes: each contact's latest status; variables as `var_<key>` columns to group by."""
    with reader(db) as connection:
        query = "SELECT * FROM recipient_outcomes" + (" WHERE campaign = $campaign" if campaign else "") + " ORDER BY campaign, e164"
        frame = connection.sql(query, params={"campaign": campaign} if campaign else None).to_arrow_table().to_pandas()
    frame["variables"] = frame["variables"].map(lambda text: json.loads(text) if isinstance(text, str) else {})
    if expand_variables and len(frame):
        wide = pd.json_normalize(frame["variables"].tolist()).add_prefix("var_")
        wide.index = frame.index
        frame = pd.concat([frame, wide], axis=1)
    return frame
