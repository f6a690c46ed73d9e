"""The ledger as the first release made it (commit 295bb2b): imports, their contacts, chunks, provider batches,
recipients row by row, and campaign locks. (Its times are declared with a time zone, as the models always stored
them: the same DATETIME on SQLite; on PostgreSQL, where no ledger of that release ever ran, TIMESTAMPTZ.)

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign", sa.String(), nullable=False, index=True),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False, index=True),
        sa.Column("files", sa.String(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in ("rows_read", "accepted", "duplicates", "rejected",
                                                                      "already_submitted", "planned")),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(), nullable=False),
    )
    op.create_table(
        "contacts",
        sa.Column("campaign", sa.String(), primary_key=True),
        sa.Column("e164", sa.String(), primary_key=True),
        sa.Column("name", sa.String()),
        sa.Column("variables", sa.String(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_sheet", sa.String()),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False, index=True),
        sa.Column("chunk_key", sa.String(), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_table(
        "chunks",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("campaign", sa.String(), nullable=False, index=True),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("dialect", sa.String(), nullable=False),
        sa.Column("batch_name", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False, index=True),
        sa.Column("provider_batch_id", sa.String()),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("intent_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "provider_batches",
        sa.Column("provider_batch_id", sa.String(), primary_key=True),
        sa.Column("chunk_key", sa.String(), nullable=False, index=True),
        sa.Column("campaign", sa.String(), nullable=False, index=True),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("dialect", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in ("total", "completed", "failed")),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "recipient_status",
        sa.Column("provider_batch_id", sa.String(), primary_key=True),
        sa.Column("e164", sa.String(), primary_key=True),
        sa.Column("campaign", sa.String(), nullable=False, index=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("call_record_id", sa.String()),
        sa.Column("attempted_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.String()),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("campaign", sa.String(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
