"""The ledger's schema, as Alembic migrations (versions/), for SQLite and PostgreSQL alike.

Every command that opens the ledger for writing brings it to HEAD first (pipelines.ledger.Ledger), under the
ledger's writer lock: SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock. A ledger already at HEAD costs one
catalog query and one read of `alembic_version`; Alembic itself is imported only when there is something to do.

A ledger made before the migrations existed (no `alembic_version` table, but the first release's tables) is
stamped with the first revision and upgraded from there; the second revision is written so that it also brings
any release in between to the current schema.

A schema change is a new file in versions/ (`alembic revision` with script_location = pipelines:migrations, or by
hand) and HEAD below set to its revision.
"""

from __future__ import annotations

from sqlalchemy import inspect, text

HEAD = "0003"
FIRST = "0001"


def upgrade(connection) -> None:
    """Bring the ledger `connection` is open on to HEAD (the caller holds the writer lock and commits)."""
    catalog = inspect(connection)
    if catalog.has_table("alembic_version"):
        if connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD:
            return
        first_release = False
    else:
        first_release = catalog.has_table("chunks")  # tables from before the migrations: the first release or later
    from alembic import command

    config = alembic_config(connection)
    if first_release:
        command.stamp(config, FIRST)
    command.upgrade(config, "head")


def alembic_config(connection):
    """Alembic's configuration for running these migrations on `connection` (command.upgrade, stamp, …)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "pipelines:migrations")
    config.attributes["connection"] = connection
    return config
