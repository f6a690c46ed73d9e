"""The analysts' DuckDB file: table and view definitions (documented in the README)."""

from __future__ import annotations

DIAL_COST_USD = 0.005  # magpipe's documented price per dial, before per-minute charges

TABLES = {
    "imports": """
        CREATE TABLE IF NOT EXISTS imports (
            import_id BIGINT PRIMARY KEY, campaign VARCHAR, provider VARCHAR, content_hash VARCHAR, files JSON,
            rows_read BIGINT, accepted BIGINT, duplicates BIGINT, rejected BIGINT, already_submitted BIGINT,
            suppressed BIGINT, cooled_down BIGINT, state_capped BIGINT, planned BIGINT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, outcome VARCHAR,
            caller_id VARCHAR, agent_id VARCHAR)""",
    "import_files": """
        CREATE TABLE IF NOT EXISTS import_files (
            import_id BIGINT, source_file VARCHAR, campaign VARCHAR, sha256 VARCHAR, rows_read BIGINT, accepted BIGINT,
            duplicates BIGINT, rejected BIGINT, suppressed BIGINT, already_submitted BIGINT, cooled_down BIGINT, state_capped BIGINT,
            counted BOOLEAN,
            PRIMARY KEY (import_id, source_file))""",
    "contacts": """
        CREATE TABLE IF NOT EXISTS contacts (
            campaign VARCHAR, e164 VARCHAR, name VARCHAR, variables JSON, source_file VARCHAR, source_sheet VARCHAR,
            source_row BIGINT, import_id BIGINT, chunk_key VARCHAR)""",
    "rejects": """
        CREATE TABLE IF NOT EXISTS rejects (
            import_id BIGINT, campaign VARCHAR, source_file VARCHAR, source_sheet VARCHAR, source_row BIGINT,
            raw_value VARCHAR, reason VARCHAR, detail VARCHAR)""",
    "duplicates": """
        CREATE TABLE IF NOT EXISTS duplicates (
            import_id BIGINT, campaign VARCHAR, source_file VARCHAR, source_sheet VARCHAR, source_row BIGINT,
            e164 VARCHAR, duplicate_of_file VARCHAR, duplicate_of_row BIGINT)""",
    "batches": """
        CREATE TABLE IF NOT EXISTS batches (
            chunk_key VARCHAR PRIMARY KEY, campaign VARCHAR, provider VARCHAR, dialect VARCHAR, provider_batch_id VARCHAR,
            batch_name VARCHAR, state VARCHAR, status VARCHAR, size BIGINT, total BIGINT, completed BIGINT, failed BIGINT,
            created_at TIMESTAMPTZ, started_at TIMESTAMPTZ, completed_at TIMESTAMPTZ, synced_at TIMESTAMPTZ, last_error VARCHAR,
            timezone VARCHAR, calling_window VARCHAR, calling_days VARCHAR, kind VARCHAR, not_before TIMESTAMPTZ, us_state VARCHAR,
            calling_holidays VARCHAR)""",
    "recipient_rows": """
        CREATE TABLE IF NOT EXISTS recipient_rows (
            provider_batch_id VARCHAR, e164 VARCHAR, campaign VARCHAR, status VARCHAR, call_record_id VARCHAR,
            attempted_at TIMESTAMPTZ, completed_at TIMESTAMPTZ, error VARCHAR, synced_at TIMESTAMPTZ)""",
    "publish_state": """
        CREATE TABLE IF NOT EXISTS publish_state (ledger_id VARCHAR, change_seq BIGINT, published_at TIMESTAMPTZ)""",
    "batch_snapshots": """
        CREATE TABLE IF NOT EXISTS batch_snapshots (
            snapshot_at TIMESTAMPTZ, provider_batch_id VARCHAR, campaign VARCHAR, chunk_key VARCHAR, status VARCHAR,
            total BIGINT, completed BIGINT, failed BIGINT, PRIMARY KEY (snapshot_at, provider_batch_id))""",
}

PUBLISH_STATE = "publish_state"  # one row: the ledger this file came from and the last change it holds

# a recipient whose call is over or never will be: schemas.provider.FINAL_RECIPIENT (a test holds them equal; not
# imported, so that `campaigns report` starts without pydantic)
FINAL_STATUSES = ("busy", "completed", "failed", "no_answer", "skipped")
_FINAL = ", ".join(f"'{status}'" for status in FINAL_STATUSES)
# a person's attempts, latest first: recipient_outcomes shows the first, campaign_summary counts it
_LATEST_FIRST = "PARTITION BY campaign, e164 ORDER BY attempted_at DESC NULLS LAST, synced_at DESC"

VIEWS = {
    # every attempt: one row per (provider batch, number), with where and when it was on the recipient's clock
    "recipients": """
        CREATE OR REPLACE VIEW recipients AS
        SELECT r.provider_batch_id, r.e164, r.campaign, r.status, r.call_record_id, r.attempted_at, r.completed_at, r.error,
               r.synced_at, b.timezone, b.us_state AS state,
               -- the wall-clock time of the attempt in the recipient's zone (the first of the batch's zone set: they
               -- share their rules for the hours planned)
               timezone(split_part(b.timezone, '|', 1), r.attempted_at) AS attempted_local,
               CASE WHEN r.completed_at >= r.attempted_at THEN epoch(r.completed_at - r.attempted_at) END AS duration_seconds,
               row_number() OVER (PARTITION BY r.campaign, r.e164
                                  ORDER BY r.attempted_at NULLS LAST, r.synced_at, r.provider_batch_id) AS attempt,
               b.chunk_key, b.kind AS batch_kind
        FROM recipient_rows r LEFT JOIN batches b ON b.provider_batch_id = r.provider_batch_id""",
    "recipient_outcomes": f"""
        CREATE OR REPLACE VIEW recipient_outcomes AS
        WITH ranked AS (
            SELECT r.*, row_number() OVER ({_LATEST_FIRST}) AS latest
            FROM recipients r),
        tries AS (
            SELECT campaign, e164, count(*) FILTER (WHERE attempted_at IS NOT NULL) AS attempts
            FROM recipient_rows GROUP BY ALL)
        SELECT c.campaign, c.e164, c.name,
               -- a batch stopped before it dialled: whoever it had not called (read as pending before the stop) never will be
               CASE WHEN b.state = 'cancelled' AND (r.status IS NULL OR r.status NOT IN ({_FINAL})) THEN 'cancelled'
                    ELSE coalesce(r.status, CASE WHEN b.state IN ('started', 'finished') THEN 'pending' ELSE 'not_submitted' END)
               END AS status,
               coalesce(t.attempts, 0) AS attempts, r.call_record_id, r.attempted_at, r.completed_at, r.error,
               coalesce(r.timezone, b.timezone) AS timezone, coalesce(r.state, b.us_state) AS state, r.attempted_local,
               r.duration_seconds,
               c.chunk_key, coalesce(r.provider_batch_id, b.provider_batch_id) AS provider_batch_id, c.variables,
               c.source_file, c.source_sheet, c.source_row
        FROM contacts c
        LEFT JOIN ranked r ON r.campaign = c.campaign AND r.e164 = c.e164 AND r.latest = 1
        LEFT JOIN tries t ON t.campaign = c.campaign AND t.e164 = c.e164
        LEFT JOIN batches b ON b.chunk_key = c.chunk_key""",
    "campaign_summary": f"""
        CREATE OR REPLACE VIEW campaign_summary AS
        WITH imp AS (SELECT campaign, count(*) AS imports FROM imports GROUP BY campaign),
        -- each distinct file content once (its first reading): importing a file again counts none of its rows twice
        rows AS (
            SELECT campaign, sum(rows_read)::BIGINT AS rows_read, sum(duplicates)::BIGINT AS duplicates,
                   sum(already_submitted)::BIGINT AS already_submitted, sum(rejected)::BIGINT AS rejected,
                   sum(suppressed)::BIGINT AS suppressed, sum(cooled_down)::BIGINT AS cooled_down,
                   sum(coalesce(state_capped, 0))::BIGINT AS state_capped
            FROM import_files WHERE counted GROUP BY campaign),
        acc AS (SELECT campaign, count(*) AS accepted FROM contacts GROUP BY campaign),
        sub AS (
            SELECT campaign,
                   coalesce(sum(size) FILTER (WHERE state IN ('started', 'finished') AND coalesce(kind, 'import') = 'import'), 0)::BIGINT AS submitted,
                   coalesce(sum(size) FILTER (WHERE state NOT IN ('started', 'finished', 'cancelled')), 0)::BIGINT AS awaiting_submission,
                   coalesce(sum(size) FILTER (WHERE state = 'cancelled'), 0)::BIGINT AS cancelled,
                   coalesce(sum(size) FILTER (WHERE kind = 'retry' AND state IN ('started', 'finished')), 0)::BIGINT AS retried,
                   count(*) AS batches
            FROM batches GROUP BY campaign),
        -- each contact's latest status, as recipient_outcomes ranks them; the statuses counted are final, which a
        -- cancelled batch never overrides, so the outcomes' other joins are not needed for them
        latest AS (
            SELECT campaign, e164, status FROM (
                SELECT campaign, e164, status, row_number() OVER ({_LATEST_FIRST}) AS latest
                FROM recipient_rows)
            WHERE latest = 1),
        out AS (
            SELECT campaign, count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status IN ('busy', 'no_answer', 'failed')) AS failed,
                   count(*) FILTER (WHERE status = 'skipped') AS skipped
            FROM contacts JOIN latest USING (campaign, e164) GROUP BY campaign),
        dials AS (SELECT campaign, count(*) FILTER (WHERE attempted_at IS NOT NULL) AS dials FROM recipient_rows GROUP BY campaign)
        SELECT imp.campaign, imp.imports, coalesce(rows.rows_read, 0) AS rows_read, coalesce(acc.accepted, 0) AS accepted,
               coalesce(rows.duplicates, 0) AS duplicates, coalesce(rows.already_submitted, 0) AS already_submitted,
               coalesce(rows.cooled_down, 0) AS cooled_down, coalesce(rows.state_capped, 0) AS state_capped,
               coalesce(rows.rejected, 0) AS rejected,
               coalesce(rows.suppressed, 0) AS suppressed, coalesce(sub.batches, 0) AS batches,
               coalesce(sub.submitted, 0) AS submitted, coalesce(sub.awaiting_submission, 0) AS awaiting_submission,
               coalesce(sub.cancelled, 0) AS cancelled, coalesce(sub.retried, 0) AS retried,
               coalesce(out.completed, 0) AS completed, coalesce(out.failed, 0) AS failed, coalesce(out.skipped, 0) AS skipped,
               coalesce(sub.submitted, 0) - coalesce(out.completed, 0) - coalesce(out.failed, 0) - coalesce(out.skipped, 0) AS pending,
               coalesce(out.completed, 0) / nullif(coalesce(sub.submitted, 0), 0) AS completion_rate,
               coalesce(dials.dials, 0) AS dials,
               round(coalesce(dials.dials, 0) * {DIAL_COST_USD}, 3) AS estimated_dial_cost
        FROM imp
        LEFT JOIN rows USING (campaign) LEFT JOIN acc USING (campaign) LEFT JOIN sub USING (campaign) LEFT JOIN out USING (campaign)
        LEFT JOIN dials USING (campaign)
        ORDER BY imp.campaign""",
}


# Columns added after a table's first version: a file made by an older version gains them on its next publish.
# An import's contacts, rejects and duplicates are replaced whole (deleted by import, then inserted): no index to keep
# up, so ten million rows load in seconds. Each of them is unique by (campaign, e164) — a campaign takes a number once —
# or by (import_id, source_file, source_sheet, source_row).
BY_IMPORT = ("contacts", "rejects", "duplicates")
# Recipients (the table recipient_rows, seen through the view `recipients`) likewise carry no index: a publish replaces
# a campaign's whole, or the rows a sync changed by this key
# (unique: one row per number per provider batch). 835k rows load in under a second, against two with the key.
RECIPIENT_KEY = ("provider_batch_id", "e164")
UNKEYED = (*BY_IMPORT, "recipient_rows")
RENAMED = {"recipients": "recipient_rows"}  # tables a file made by an earlier version has under an old name: rebuilt

ADDED_COLUMNS = {
    "rejects": [("detail", "VARCHAR")],
    "imports": [("caller_id", "VARCHAR"), ("agent_id", "VARCHAR"), ("state_capped", "BIGINT")],
    "import_files": [("state_capped", "BIGINT")],
    "batches": [("timezone", "VARCHAR"), ("calling_window", "VARCHAR"), ("calling_days", "VARCHAR"), ("kind", "VARCHAR"),
                ("not_before", "TIMESTAMPTZ"), ("us_state", "VARCHAR"), ("calling_holidays", "VARCHAR")],
}
