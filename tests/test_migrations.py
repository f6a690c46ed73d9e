"""The ledger's schema is Alembic's (pipelines/migrations): a ledger made by the first release upgrades cleanly and
works, a fresh one is made by the migrations alone, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from sqlalchemy import create_engine, inspect, text

from pipelines import migrations
from pipelines.ledger import Ledger
from tests.conftest import ROOT, run_cli

# Made by the first release (commit 295bb2b) as a user would: `campaigns import data/sample_contacts.csv --campaign
# first` (21 contacts in one batch, started) and `campaigns sync`, into a fresh home.
FIRST_RELEASE = ROOT / "tests" / "data" / "first_release_ledger.sqlite"


def _schema(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        catalog = inspect(engine)
        return {table: {column["name"] for column in catalog.get_columns(table)} for table in catalog.get_table_names()}
    finally:
        engine.dispose()


def test_a_ledger_made_by_the_first_release_upgrades_and_keeps_its_campaign(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(FIRST_RELEASE, home / "ledger.sqlite")
    with sqlite3.connect(home / "ledger.sqlite") as db:
        assert "alembic_version" not in {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    publish = run_cli("publish", "--home", str(home))  # the first writer upgrades it
    assert publish.returncode == 0, publish.stderr
    report = run_cli("report", "--campaign", "first", "--home", str(home), "--format", "json")
    assert report.returncode == 0, report.stderr
    [summary] = json.loads(report.stdout)
    assert (summary["rows_read"], summary["accepted"], summary["rejected"], summary["submitted"]) == (30, 21, 6, 21), summary
    assert summary["completed"] + summary["failed"] + summary["pending"] == 21  # its recipients, read back from segments
    fresh = tmp_path / "fresh.sqlite"
    Ledger(f"sqlite:///{fresh}").close()
    assert _schema(f"sqlite:///{home / 'ledger.sqlite'}") == _schema(f"sqlite:///{fresh}")  # the same tables and columns
    with sqlite3.connect(home / "ledger.sqlite") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.HEAD,)]
        assert db.execute("SELECT sum(rows) FROM plan_segments WHERE kind = 'contacts'").fetchone() == (21,)
        assert db.execute("SELECT counted, rows_read FROM import_files").fetchall() == [(1, 30)]
    # its contacts count as submitted: importing the same file again plans nobody
    again = run_cli("import", str(ROOT / "data" / "sample_contacts.csv"), "--campaign", "first", "--home", str(home), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_submitted"] == 21 and json.loads(again.stdout)["batches"] == []


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_ledger_at_the_first_revision_upgrades_on_either_store(tmp_path, store):
    """The same path on PostgreSQL: an empty database migrated to the first revision only (the first release's
    tables), a few rows in it, is brought to HEAD by the first command that writes."""
    from tests.pg import cluster

    url = cluster().create_database(empty=True) if store == "postgresql" else f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    from alembic import command

    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrations.alembic_config(connection), migrations.FIRST)
        connection.execute(text("INSERT INTO imports (id, campaign, provider, content_hash, files, rows_read, accepted, duplicates, "
                                "rejected, already_submitted, planned, started_at, outcome) VALUES (1, 'old', 'sandbox', 'h', "
                                "'[]', 2, 2, 0, 0, 0, 2, '2026-01-01 00:00:00+00', 'submitted')"))  # fmt: skip
        connection.execute(text("INSERT INTO contacts VALUES ('old', '+14155550101', 'Ann', '{}', 'a.csv', NULL, 2, 1, 'ck1', 0), "
                                "('old', '+14155550102', 'Bo', '{}', 'a.csv', NULL, 3, 1, 'ck1', 1)"))  # fmt: skip
    engine.dispose()
    ledger = Ledger(url)
    try:
        assert ledger.campaigns() == ["old"] and ledger.submitted_keys("old").tolist() == [14155550101, 14155550102]
    finally:
        ledger.close()
    fresh = tmp_path / "fresh.sqlite"
    Ledger(f"sqlite:///{fresh}").close()
    assert _schema(url) == _schema(f"sqlite:///{fresh}")
