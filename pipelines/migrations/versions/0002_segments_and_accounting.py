"""The ledger as of December 2026, from the first release or any release in between (they had no migrations):

- per-file accounting (`import_files`; each old import becomes one counted row per distinct content), suppression
  and cooldown counts, the caller and agent an import used;
- calling hours and retries on chunks (`timezone`, `window`, `days`, `kind`, `not_before`; `retries`);
- the plan as columnar segments (`plan_segments`: the old `contacts`, `rejects` and `duplicates` rows converted, the
  old tables dropped) and recipients as one segment per provider batch (`recipient_segments`: the old
  `recipient_status` rows converted, the table dropped);
- the change log the incremental publish reads (`changes`), batch snapshots, the do-not-call list, campaign stops,
  the ledger's identity (`ledger_meta`).

Each table is created when missing, and each column added when missing (with the default old rows take), so that
a ledger stamped 0001 but made by any later release reaches the same schema.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False, primary: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, primary_key=primary)


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def _text(name: str, nullable: bool = False, default: str | None = None, primary: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable, primary_key=primary,
                     server_default=sa.text(f"'{default}'") if default is not None else None)  # fmt: skip


def _tables() -> dict[str, tuple[list[sa.Column], tuple[str, ...]]]:
    """The tables as this revision leaves them (fresh Column objects: a table takes its columns), each with the columns
    that have an ix_<table>_<column> index."""
    return {
        "imports": ([sa.Column("id", sa.Integer(), primary_key=True), _text("campaign"), _text("provider"), _text("content_hash"),
                     _text("files"), *map(_count, ("rows_read", "accepted", "duplicates", "rejected", "already_submitted",
                                                    "suppressed", "cooled_down", "planned")),
                     _text("caller_id", nullable=True), _text("agent_id", nullable=True), _time("started_at"),
                     _time("finished_at", True), _text("outcome", default="planned")], ("campaign", "content_hash")),
        "import_files": ([sa.Column("import_id", sa.Integer(), primary_key=True), _text("source_file", primary=True),
                          _text("campaign"), _text("sha256"), *map(_count, ("rows_read", "accepted", "duplicates", "rejected",
                                                                            "suppressed", "already_submitted", "cooled_down")),
                          sa.Column("counted", sa.Boolean(), nullable=False, server_default=sa.true())], ("campaign", "sha256")),
        "plan_segments": ([sa.Column("id", sa.Integer(), primary_key=True), _text("campaign"),
                           sa.Column("import_id", sa.Integer(), nullable=False), _text("kind"), _text("chunk_key", nullable=True),
                           sa.Column("rows", sa.Integer(), nullable=False), sa.Column("numbers", sa.LargeBinary()),
                           sa.Column("data", sa.LargeBinary(), nullable=False)], ("campaign", "import_id", "chunk_key")),
        "chunks": ([_text("key", primary=True), _text("campaign"), _text("provider"), _text("dialect"), _text("batch_name"),
                    sa.Column("size", sa.Integer(), nullable=False), _text("state", default="planned"),
                    _text("provider_batch_id", nullable=True), sa.Column("import_id", sa.Integer(), nullable=False),
                    _count("attempts"), _text("last_error", nullable=True), _time("created_at"), _time("updated_at"),
                    _time("intent_at", True), _time("started_at", True), _text("timezone", default="UTC"),
                    _text("window", default="08:00-21:00"), _text("days", default="mon-sun"), _text("kind", default="import"),
                    _time("not_before", True)], ("campaign", "state")),
        "provider_batches": ([_text("provider_batch_id", primary=True), _text("chunk_key"), _text("campaign"), _text("provider"),
                              _text("dialect"), _text("status"), *map(_count, ("total", "completed", "failed")),
                              _time("created_at", True), _time("completed_at", True), _time("synced_at")], ("chunk_key", "campaign")),
        "retries": ([_text("chunk_key", primary=True), _text("e164", primary=True), _text("campaign"),
                     sa.Column("attempt", sa.Integer(), nullable=False), sa.Column("position", sa.Integer(), nullable=False),
                     _text("reason"), _text("origin_chunk", nullable=True), _time("planned_at")], ("campaign",)),
        "recipient_segments": ([_text("provider_batch_id", primary=True), _text("campaign"),
                                sa.Column("change_seq", sa.Integer(), nullable=False), sa.Column("rows", sa.Integer(), nullable=False),
                                sa.Column("final", sa.Integer(), nullable=False), sa.Column("data", sa.LargeBinary(), nullable=False)],
                               ("campaign", "change_seq")),
        "locks": ([_text("campaign", primary=True), _text("owner"), _text("host"), sa.Column("pid", sa.Integer(), nullable=False),
                   _time("acquired_at"), _time("heartbeat_at")], ()),
        "batch_snapshots": ([_time("snapshot_at", primary=True), _text("provider_batch_id", primary=True), _text("campaign"), _text("chunk_key"),
                             _text("status"), *map(_count, ("total", "completed", "failed"))], ("campaign",)),
        "suppressions": ([_text("e164", primary=True), _text("source"), _time("added_at")], ()),
        "changes": ([sa.Column("seq", sa.Integer(), primary_key=True), _text("campaign"), _text("kind"), _text("ref"), _time("at")],
                    ("campaign",)),
        "ledger_meta": ([_text("key", primary=True), _text("value")], ()),
        "campaign_stops": ([_text("campaign", primary=True), _time("stopped_at")], ()),
    }


def upgrade() -> None:
    connection = op.get_bind()
    catalog = sa.inspect(connection)
    present = set(catalog.get_table_names())
    for name, (columns, indexed) in _tables().items():
        if name not in present:
            op.create_table(name, *columns)
        else:
            have = {column["name"] for column in catalog.get_columns(name)}
            for column in columns:
                if column.name not in have:
                    op.add_column(name, column)
        indexes = {index["name"] for index in catalog.get_indexes(name)} if name in present else set()
        for column in indexed:
            if f"ix_{name}_{column}" not in indexes:
                op.create_index(f"ix_{name}_{column}", name, [column])
    if "import_files" not in present:
        _account_old_imports(connection)
    _segment_old_plans(connection, present)
    _segment_old_recipients(connection, present)


def _account_old_imports(connection) -> None:
    """Each import made before per-file accounting becomes one counted row per distinct content."""
    seen: set[tuple[str, str]] = set()
    rows = connection.execute(sa.text("SELECT id, campaign, content_hash, rows_read, accepted, duplicates, rejected, suppressed, "
                                      "already_submitted, cooled_down FROM imports ORDER BY id")).mappings().all()  # fmt: skip
    files = sa.table("import_files", *(sa.column(name) for name in (
        "import_id", "source_file", "campaign", "sha256", "rows_read", "accepted", "duplicates", "rejected", "suppressed",
        "already_submitted", "cooled_down", "counted")))  # fmt: skip
    for row in rows:
        counted = (row["campaign"], row["content_hash"]) not in seen
        seen.add((row["campaign"], row["content_hash"]))
        connection.execute(files.insert().values(
            import_id=row["id"], source_file=f"(import {row['id']})", campaign=row["campaign"], sha256=row["content_hash"],
            rows_read=row["rows_read"], accepted=row["accepted"], duplicates=row["duplicates"], rejected=row["rejected"],
            suppressed=row["suppressed"], already_submitted=row["already_submitted"], cooled_down=row["cooled_down"],
            counted=counted,
        ))  # fmt: skip


def _segment_old_plans(connection, present: set[str]) -> None:
    """Contacts, rejects and duplicates kept row by row become segments (one per chunk, one per import's block of
    rejects or duplicates); retries learn their contacts' import chunks; the old tables go."""
    columns = {"contacts": "campaign, import_id, chunk_key, e164, name, variables, source_file, source_sheet, source_row",
               "rejects": "campaign, import_id, source_file, source_sheet, source_row, raw_value, reason",
               "duplicates": "campaign, import_id, source_file, source_sheet, source_row, e164, duplicate_of_file, duplicate_of_row"}
    order = {"contacts": "campaign, chunk_key, position", "rejects": "import_id, source_file, source_sheet, source_row",
             "duplicates": "import_id, source_file, source_sheet, source_row"}  # fmt: skip
    stored = sa.table("plan_segments", *(sa.column(name) for name in ("campaign", "import_id", "kind", "chunk_key", "rows",
                                                                      "numbers", "data")))  # fmt: skip
    for kind, names in columns.items():
        if kind not in present:
            continue
        if not connection.execute(sa.text(f"SELECT count(*) FROM {kind}")).scalar():  # noqa: S608 - our names
            op.drop_table(kind)  # empty (a ledger made by these migrations): nothing to convert
            continue
        import pandas as pd
        import pyarrow as pa

        from pipelines import segments

        frame = pd.read_sql(sa.text(f"SELECT {names} FROM {kind} ORDER BY {order[kind]}"), connection)  # noqa: S608 - our names
        group_by = ["campaign", "import_id"] + (["chunk_key"] if kind == "contacts" else [])
        rows = []
        for group, part in frame.groupby(group_by, sort=False):
            table = segments.conformed(kind, pa.Table.from_pandas(part.drop(columns=group_by), preserve_index=False))
            step = segments.BLOCK_ROWS if kind != "contacts" else table.num_rows
            for start in range(0, table.num_rows, step):
                block = table.slice(start, step)
                rows.append({"campaign": group[0], "import_id": int(group[1]), "kind": kind,
                             "chunk_key": group[2] if kind == "contacts" else None, "rows": block.num_rows,
                             "numbers": segments.numbers(segments.keys_of(block.column("e164").combine_chunks()))
                             if kind == "contacts" else None, "data": segments.encode(block)})  # fmt: skip
        if rows:
            connection.execute(stored.insert(), rows)
        if kind == "contacts":
            connection.execute(sa.text("UPDATE retries SET origin_chunk = (SELECT c.chunk_key FROM contacts c WHERE "
                                       "c.campaign = retries.campaign AND c.e164 = retries.e164) WHERE origin_chunk IS NULL"))
        op.drop_table(kind)


def _segment_old_recipients(connection, present: set[str]) -> None:
    """Recipients kept row by row become one segment per provider batch, numbered with the newest change (the next
    publish copies them once more); the old table goes."""
    if "recipient_status" not in present:
        return
    if not connection.execute(sa.text("SELECT count(*) FROM recipient_status")).scalar():
        op.drop_table("recipient_status")
        return
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipelines import segments
    from schemas.provider import FINAL_RECIPIENT

    head = connection.execute(sa.text("SELECT coalesce(max(seq), 0) FROM changes")).scalar_one()
    frame = pd.read_sql(sa.text("SELECT provider_batch_id, campaign, e164, status, call_record_id, attempted_at, completed_at, "
                                "error, synced_at FROM recipient_status ORDER BY provider_batch_id"), connection)  # fmt: skip
    for name in ("attempted_at", "completed_at", "synced_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    stored = sa.table("recipient_segments", *(sa.column(name) for name in ("provider_batch_id", "campaign", "change_seq", "rows",
                                                                           "final", "data")))  # fmt: skip
    rows = []
    for (batch_id, campaign), part in frame.groupby(["provider_batch_id", "campaign"], sort=False):
        table = pa.Table.from_pandas(part.drop(columns=["provider_batch_id", "campaign"]).assign(change_seq=head),
                                     preserve_index=False).cast(segments.RECIPIENTS)  # fmt: skip
        final = pc.sum(pc.is_in(table.column("status"), value_set=pa.array(sorted(FINAL_RECIPIENT)))).as_py() or 0
        rows.append({"provider_batch_id": batch_id, "campaign": campaign, "change_seq": head, "rows": table.num_rows,
                     "final": final, "data": segments.encode(table)})  # fmt: skip
    if rows:
        connection.execute(stored.insert(), rows)
    op.drop_table("recipient_status")
