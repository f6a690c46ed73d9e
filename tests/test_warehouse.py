"""The DuckDB file: documented tables and views, upserts without duplicates, no lock fights with readers."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import duckdb
import pytest

from pipelines import api
from tests.conftest import ROOT, run_cli
from tests.submit_helpers import contacts_file

SAMPLES = [str(ROOT / "data" / "sample_contacts.csv"), str(ROOT / "data" / "sample_contacts.xlsx")]


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    """The samples imported, submitted to the embedded sandbox and synced to the end."""
    home = tmp_path_factory.mktemp("demo") / "home"
    assert run_cli("import", *SAMPLES, "--campaign", "demo", "--home", str(home)).returncode == 0
    assert run_cli("sync", "--home", str(home), "--wait", "60").returncode == 0
    return home


def test_tables_and_views_are_documented_shapes(demo_home):
    with duckdb.connect(str(demo_home / "campaigns.duckdb"), read_only=True) as db:
        names = {row[0] for row in db.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"imports", "contacts", "rejects", "duplicates", "batches", "recipients", "batch_snapshots",
                "campaign_summary", "recipient_outcomes"} <= names  # fmt: skip
        summary = db.execute("SELECT * FROM campaign_summary").df().iloc[0]
        reasons = dict(db.execute("SELECT reason, count(*) FROM rejects GROUP BY reason").fetchall())
        contact = db.execute("SELECT name, variables->>'clinic', source_file, source_row FROM contacts WHERE e164 = '+14155550132'").fetchone()
        recipients = db.execute("SELECT count(*), count(call_record_id) FROM recipients").fetchone()
    assert (summary.rows_read, summary.accepted, summary.duplicates, summary.rejected) == (42, 27, 6, 9)
    assert (summary.submitted, summary.pending, summary.completed + summary.failed) == (27, 0, 27)
    assert summary.completion_rate == pytest.approx(summary.completed / 27, abs=1e-4)
    assert summary.estimated_dial_cost == pytest.approx(27 * 0.005)
    assert reasons["precision_lost"] == 1 and sum(reasons.values()) == 9
    assert contact[:2] == ("Ava Martinez", "Mission") and contact[2].endswith("sample_contacts.csv") and contact[3] == 2
    assert recipients == (27, 27)


def test_outcomes_group_by_any_spreadsheet_column(demo_home):
    frame = api.outcomes("demo", home=demo_home)
    assert len(frame) == 27 and frame["e164"].is_unique
    assert set(frame["status"]) <= {"completed", "busy", "no_answer", "failed"}
    by_clinic = frame.groupby("var_clinic")["status"].count()
    assert by_clinic["Mission"] >= 3 and by_clinic.sum() == 27
    assert (frame["attempts"] == 1).all()
    summary = api.summary(home=demo_home)
    assert list(summary["campaign"]) == ["demo"]


def test_report_formats(demo_home):
    table = run_cli("report", "--home", str(demo_home))
    assert table.returncode == 0 and "completion rate" in table.stdout and "demo" in table.stdout
    csv_out = run_cli("report", "--home", str(demo_home), "--format", "csv", "--campaign", "demo")
    assert csv_out.stdout.splitlines()[0].startswith("campaign,imports,rows_read,accepted,duplicates")
    rows = json.loads(run_cli("report", "--home", str(demo_home), "--format", "json").stdout)
    assert rows[0]["campaign"] == "demo" and rows[0]["accepted"] == 27
    missing = run_cli("report", "--home", str(demo_home), "--campaign", "nope")
    assert missing.returncode == 2 and "no campaign named 'nope'" in missing.stderr


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_report_before_any_import_is_one_line(tmp_path):
    result = run_cli("report", "--home", str(tmp_path / "empty"))
    assert result.returncode == 2 and "run `campaigns import`" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_a_held_reader_never_blocks_import_or_sync_and_never_sees_half_a_sync(tmp_path):
    home = tmp_path / "home"
    env = {"CAMPAIGNS_SANDBOX_SPEED": "15"}  # slow enough that several syncs catch batches mid-way
    first, _ = contacts_file(tmp_path, count=24, name="first.csv")
    second, _ = contacts_file(tmp_path, count=24, start=100, name="second.csv")
    assert run_cli("import", str(first), "--campaign", "live", "--home", str(home), "--batch-size", "6", env=env).returncode == 0
    db = home / "campaigns.duckdb"
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(ROOT / "tests" / "reader_process.py"), str(db), str(stop)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "stop.ready").exists():  # however slow the machine: the reader has looked once
            assert time.monotonic() < deadline and reader.poll() is None, "the reader never started"
            time.sleep(0.05)
        results = [run_cli("import", str(second), "--campaign", "live", "--home", str(home), "--batch-size", "6", env=env)]
        for _ in range(4):
            results.append(run_cli("sync", "--home", str(home), "--json", env=env))
        results.append(run_cli("sync", "--home", str(home), "--wait", "60", "--json", env=env))
    finally:
        stop.touch()
        report = json.loads(reader.communicate(timeout=60)[0])
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    assert report["errors"] == [] and report["queries"] > 5
    assert all(not any(obs["violations"].values()) for obs in report["fresh"]), report["fresh"]
    progress = [obs["completed"] for obs in report["fresh"]]
    assert progress == sorted(progress)  # a fresh reader never sees the file go back
    syncs_that_read = sum(1 for r in results[1:] if json.loads(r.stdout.strip().splitlines()[-1])["batches"])
    with duckdb.connect(str(db), read_only=True) as final:
        assert final.execute("SELECT rows_read, completed + failed FROM campaign_summary").fetchone() == (48, 48)
        # re-syncing added no duplicate rows, only snapshots
        assert final.execute("SELECT count(*), count(DISTINCT (provider_batch_id, e164)) FROM recipients").fetchone() == (48, 48)
        # every sync that read batches appended one snapshot of them
        assert final.execute("SELECT count(DISTINCT snapshot_at) FROM batch_snapshots").fetchone()[0] >= syncs_that_read >= 1


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_quotes_semicolons_and_sql_in_paths_and_names_are_data_never_code(tmp_path):
    home = tmp_path / "o'brien; COPY (SELECT 42) TO 'pwned.csv'; --"
    db = tmp_path / "re'port; DROP TABLE contacts; --.duckdb"
    campaign = '=HYPERLINK("http://evil.example","x")\'; DROP TABLE contacts; --'
    path, numbers = contacts_file(tmp_path, count=3)
    assert run_cli("import", str(path), "--campaign", campaign, "--home", str(home), "--db", str(db), cwd=tmp_path).returncode == 0
    table = run_cli("report", "--home", str(home), "--db", str(db), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    csv_out = run_cli("report", "--home", str(home), "--db", str(db), "--format", "csv", cwd=tmp_path)
    assert csv_out.returncode == 0, csv_out.stderr
    assert "\n'=HYPERLINK" in csv_out.stdout or "\n\"'=HYPERLINK" in csv_out.stdout  # a formula is text in Excel
    assert api.summary(campaign, home=home, db=db)["accepted"].tolist() == [3]
    with api.connect(db=db) as connection:
        assert connection.execute("SELECT count(*) FROM contacts").fetchone() == (3,)
    # a --db crafted to close the quote and run a statement is only ever a (missing) file name
    crafted = str(tmp_path / "x.duckdb' AS w (READ_ONLY); COPY (SELECT 42) TO 'pwned.csv'; --")
    refused = run_cli("report", "--db", crafted, cwd=tmp_path)
    assert refused.returncode == 2 and "no report database" in refused.stderr
    assert not list(tmp_path.rglob("pwned.csv")) and not (ROOT / "pwned.csv").exists()


def _summary(db_path) -> dict:
    with duckdb.connect(str(db_path), read_only=True) as db:
        return db.execute("SELECT * FROM campaign_summary").df().iloc[0].to_dict()


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_a_publish_that_failed_or_was_killed_is_caught_up_by_the_next_command(tmp_path):
    home = tmp_path / "home"
    db = home / "campaigns.duckdb"
    first, _ = contacts_file(tmp_path, count=6, name="first.csv")
    second, _ = contacts_file(tmp_path, count=6, start=50, name="second.csv")
    db.mkdir(parents=True)  # the report file cannot be written: the import itself goes through
    failed = run_cli("import", str(first), "--campaign", "c", "--home", str(home), "--json")
    assert failed.returncode == 7, failed.stderr
    assert json.loads(failed.stdout)["accepted"] == 6  # the summary is still printed
    assert "was not updated" in failed.stderr and "Traceback" not in failed.stderr
    db.rmdir()
    assert run_cli("import", str(second), "--campaign", "c", "--home", str(home)).returncode == 0
    summary = _summary(db)
    assert (summary["imports"], summary["rows_read"], summary["accepted"]) == (2, 12, 12)  # the failed publish is caught up

    killed = run_cli("sync", "--home", str(home), "--wait", "60", env={"CAMPAIGNS_FAILPOINT": "after_sync_commit"})
    assert killed.returncode == -9  # the ledger has the outcomes, the file does not
    (db.parent / f".{db.name}.4242.tmp").write_bytes(b"left by a killed publish")
    (db.parent / f".{db.name}.4243.tmp.spill").mkdir()  # and a spill of what it applied
    (db.parent / f".{db.name}.4243.tmp.spill" / "recipients.arrow").write_bytes(b"half written")
    stale = run_cli("report", "--home", str(home))
    assert stale.returncode == 0 and "behind the ledger" in stale.stderr
    with pytest.warns(UserWarning, match="behind the ledger"):
        api.summary(home=home)
    assert run_cli("sync", "--home", str(home), "--wait", "60").returncode == 0
    assert _summary(db)["completed"] + _summary(db)["failed"] == 12
    assert "behind the ledger" not in run_cli("report", "--home", str(home)).stderr
    assert not list(db.parent.glob(".*.tmp*"))  # the next publish swept what the killed one left


def test_every_column_of_every_table_and_view_can_be_fetched_in_a_fresh_process(demo_home):
    """A notebook's first query must not fail for a missing module (DuckDB needs pytz for TIMESTAMPTZ)."""
    script = (
        "import sys, duckdb\n"
        "from pipelines import api\n"
        "with duckdb.connect(sys.argv[1], read_only=True) as db:\n"
        "    names = [r[0] for r in db.execute('SELECT table_name FROM information_schema.tables').fetchall()]\n"
        "    for name in names:\n"
        "        db.execute(f'SELECT * FROM \"{name}\"').fetchall()\n"
        "with api.connect(db=sys.argv[1]) as con:\n"
        "    rows = con.execute('SELECT completed_at, attempted_at FROM recipients').fetchall()\n"
        "print(len(names), len(rows))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(demo_home / "campaigns.duckdb")], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    tables, rows = map(int, result.stdout.split())
    assert tables >= 9 and rows == 27


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_an_import_s_rows_are_replaced_whole_and_a_file_with_the_old_keys_is_rebuilt(tmp_path):
    home = tmp_path / "home"
    db = home / "campaigns.duckdb"
    first, _ = contacts_file(tmp_path, count=8, name="first.csv")
    assert run_cli("import", str(first), "--campaign", "c", "--home", str(home), "--hold").returncode == 0

    def counts():
        with duckdb.connect(str(db), read_only=True) as connection:
            return connection.execute("SELECT (SELECT count(*) FROM contacts), (SELECT count(DISTINCT e164) FROM contacts), "
                                      "(SELECT count(*) FROM duplicates), (SELECT count(*) FROM rejects)").fetchone()  # fmt: skip

    before = counts()
    assert before[0] == before[1] == 8
    for _ in range(2):  # a campaign re-written twice: its rows replaced, never doubled
        assert run_cli("publish", "--campaign", "c", "--home", str(home)).returncode == 0
        assert counts() == before

    with duckdb.connect(str(db)) as connection:  # the layout of earlier versions: contacts keyed by (campaign, e164)
        connection.execute("CREATE TABLE old AS SELECT * FROM contacts")
        connection.execute("DROP VIEW IF EXISTS recipient_outcomes")
        views = [name for (name,) in connection.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        for name in views:
            connection.execute(f"DROP VIEW {name}")
        connection.execute("DROP TABLE contacts")
        connection.execute("CREATE TABLE contacts AS SELECT * FROM old WHERE false")
        connection.execute("ALTER TABLE contacts ADD PRIMARY KEY (campaign, e164)")
        connection.execute("INSERT INTO contacts SELECT * FROM old")
        connection.execute("DROP TABLE old")
    second, _ = contacts_file(tmp_path, count=5, start=50, name="second.csv")
    assert run_cli("import", str(second), "--campaign", "c", "--home", str(home)).returncode == 0
    with duckdb.connect(str(db), read_only=True) as connection:
        keys = connection.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'contacts' "
                                  "AND constraint_type = 'PRIMARY KEY'").fetchone()[0]  # fmt: skip
        assert keys == 0  # rebuilt from the ledger in today's layout
        assert connection.execute("SELECT count(*), count(DISTINCT e164) FROM contacts").fetchone() == (13, 13)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_a_many_batch_import_leaves_the_file_complete(tmp_path):
    """An import of EARLY_PUBLISH_BATCHES batches or more publishes its plan beside the submission, then the
    submission's own changes: the file ends with every contact once and every batch as the ledger has it."""
    from pipelines.run import EARLY_PUBLISH_BATCHES

    count = EARLY_PUBLISH_BATCHES * 2 + 1
    path, numbers = contacts_file(tmp_path, count=count)
    home = tmp_path / "home"
    result = run_cli("import", str(path), "--campaign", "many", "--home", str(home), "--batch-size", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["batches"]) == EARLY_PUBLISH_BATCHES + 1
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        contacts = db.execute("SELECT count(*), count(DISTINCT e164) FROM contacts").fetchone()
        states = db.execute("SELECT state, count(*) FROM batches GROUP BY state").fetchall()
        outcome = db.execute("SELECT outcome FROM imports").fetchall()
    assert contacts == (count, count) and states == [("started", EARLY_PUBLISH_BATCHES + 1)] and outcome == [("submitted",)]


def test_the_notebook_readers_find_the_home_as_the_cli_does(demo_home, monkeypatch, tmp_path):
    """No home given: CAMPAIGNS_HOME, as for every command; an argument still beats it."""
    monkeypatch.setenv("CAMPAIGNS_HOME", str(demo_home))
    monkeypatch.chdir(tmp_path)  # no ./.campaigns here
    assert list(api.summary()["campaign"]) == ["demo"] and len(api.outcomes("demo")) == 27
    with pytest.raises(Exception, match="no report database"):
        api.summary(home=tmp_path / "elsewhere")


def test_the_statuses_campaign_summary_counts_are_final():
    # campaign_summary counts them from each person's latest recipient row alone: a cancelled batch, the one thing the
    # outcomes view lets override a status, never overrides a final one
    from schemas.warehouse import FINAL_STATUSES

    assert {"completed", "busy", "no_answer", "failed", "skipped"} <= set(FINAL_STATUSES)

