"""Alembic's entry: migrations run on the connection the ledger hands over (pipelines.migrations.upgrade)."""

from alembic import context


def run() -> None:
    context.configure(connection=context.config.attributes["connection"])
    with context.begin_transaction():  # inside the ledger's own transaction, which holds the writer lock
        context.run_migrations()


if hasattr(context, "config"):  # loaded by Alembic (importing the package's modules elsewhere runs nothing)
    run()
