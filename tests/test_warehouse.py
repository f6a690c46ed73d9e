"""The DuckDB file: documented tables and views, upserts without duplicates, no lock fights with readers."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_report_before_any_import_is_one_line(tmp_path):
    result = run_cli("report", "--home", str(tmp_path / "empty"))
    assert result.returncode == 2 and "run `campaigns import`" in result.stderr and "Traceback" not in result.stderr


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
        results = [run_cli("import", str(second), "--campaign", "live", "--home", str(home), "--batch-size", "6", env=env)]
        for _ in range(4):
            results.append(run_cli("sync", "--home", str(home), env=env))
        results.append(run_cli("sync", "--home", str(home), "--wait", "60", env=env))
    finally:
        stop.touch()
        report = json.loads(reader.communicate(timeout=60)[0])
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    assert report["errors"] == [] and report["queries"] > 20
    assert all(not any(obs["violations"].values()) for obs in report["fresh"]), report["fresh"]
    progress = [obs["completed"] for obs in report["fresh"]]
    assert progress == sorted(progress) and progress[-1] > progress[0]  # fresh readers saw syncs land
    with duckdb.connect(str(db), read_only=True) as final:
        assert final.execute("SELECT rows_read, completed + failed FROM campaign_summary").fetchone() == (48, 48)
        # re-syncing added no duplicate rows, only snapshots
        assert final.execute("SELECT count(*), count(DISTINCT (provider_batch_id, e164)) FROM recipients").fetchone() == (48, 48)
        assert final.execute("SELECT count(DISTINCT snapshot_at) FROM batch_snapshots").fetchone()[0] >= 3
