"""The README's example SQL, run against a campaign imported, synced, retried and synced again on the embedded
sandbox, exactly as the README prints it; and the attempt columns and join keys it documents."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli
from tests.test_warehouse import SAMPLES

README = Path(__file__).resolve().parent.parent / "README.md"


def _queries() -> dict[str, str]:
    section = README.read_text(encoding="utf-8").split("### Example queries", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    return {block.splitlines()[0].removeprefix("-- "): block for block in blocks}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("queries") / "home"
    assert run_cli("import", *SAMPLES, "--campaign", "demo", "--home", str(home)).returncode == 0
    assert run_cli("sync", "--home", str(home), "--wait", "60").returncode == 0
    retried = run_cli("retry", "--campaign", "demo", "--min-gap", "0", "--home", str(home))
    assert retried.returncode == 0, retried.stderr
    assert run_cli("sync", "--home", str(home), "--wait", "60").returncode == 0
    return home


@pytest.fixture(scope="module")
def db(home):
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as connection:
        yield connection


def test_the_readme_shows_the_five_queries():
    assert set(_queries()) == {
        "completion by the recipient's local day", "completion by time zone",
        "completion by a spreadsheet column (its variable: the header in snake_case)",
        "cost per campaign: dials at the documented price, and the minutes the calls lasted",
        "retry yield: how many calls each attempt placed, and how many of them completed",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(_queries()))
def test_each_readme_query_runs_and_answers(db, name):
    rows = db.execute(_queries()[name]).fetchall()
    assert rows, name
    if name.startswith("retry yield"):
        attempts = {attempt: calls for attempt, calls, _ in rows}
        assert attempts[1] == 27 and attempts.get(2, 0) > 0  # every contact called once; the retried ones twice
    if name.startswith("completion by time zone"):
        assert sum(contacts for _, contacts, _, _ in rows) == 27 and all(zone for zone, *_ in rows)


def test_attempts_join_to_their_own_batch_and_to_their_contact(db):
    orphans = db.execute("""
        SELECT count(*) FILTER (WHERE b.provider_batch_id IS NULL), count(*) FILTER (WHERE c.e164 IS NULL),
               count(*) FILTER (WHERE r.attempt > 1 AND b.kind <> 'retry'), count(*) FILTER (WHERE r.attempt > 1)
        FROM recipients r LEFT JOIN batches b ON b.provider_batch_id = r.provider_batch_id
        LEFT JOIN contacts c ON c.campaign = r.campaign AND c.e164 = r.e164""").fetchone()
    assert orphans[:3] == (0, 0, 0) and orphans[3] > 0
    local = db.execute("""
        SELECT count(*) FROM recipients
        WHERE attempted_at IS NOT NULL AND attempted_local <> timezone(split_part(timezone, '|', 1), attempted_at)""").fetchone()
    assert local == (0,)
    assert db.execute("SELECT count(*) FROM recipients WHERE completed_at IS NOT NULL AND duration_seconds IS NULL").fetchone() == (0,)


def test_notebook_frames_have_the_documented_dtypes_with_rows_or_without(home):
    import json

    import pandas as pd

    from pipelines import api

    for frame in (api.summary(home=home), api.summary("no-such-campaign", home=home)):
        assert all(pd.api.types.is_string_dtype(frame[c]) for c in ("campaign",))
        assert all(frame[c].dtype == "int64" for c in ("rows_read", "accepted", "completed", "dials"))
        assert frame["completion_rate"].dtype == frame["estimated_dial_cost"].dtype == "float64"
    full, empty = (api.outcomes(c, home=home, expand_variables=False) for c in ("demo", "no-such-campaign"))
    assert len(full) == 27 and not len(empty) and full.dtypes.equals(empty.dtypes)
    assert str(full["attempted_at"].dtype) == "datetime64[us, Etc/UTC]" and full["attempts"].dtype == "int64"
    assert full["duration_seconds"].dtype == "float64" and pd.api.types.is_string_dtype(full["status"])
    assert isinstance(full["variables"].iloc[0], dict)
    as_json = json.loads(run_cli("report", "--home", str(home), "--format", "json").stdout)[0]
    assert isinstance(as_json["estimated_dial_cost"], float) and isinstance(as_json["completion_rate"], float)
    assert isinstance(as_json["accepted"], int)


def test_export_writes_one_row_per_contact_with_every_spreadsheet_column(home, tmp_path):
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    made = run_cli("export", "--campaign", "demo", "--home", str(home), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip())
    assert path == tmp_path / "demo-outcomes.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 27 and len({row["e164"] for row in rows}) == 27
    ava = next(row for row in rows if row["e164"] == "+14155550132")
    assert (ava["clinic"], ava["first_name"], ava["source_row"]) == ("Mission", "Ava", "2")
    assert {row["attempts"] for row in rows} == {"1", "2"}  # the retried contacts were called twice
    assert ava["timezone"] == "America/Los_Angeles" and ava["status"]
    parquet = run_cli("export", "--campaign", "demo", "--format", "parquet", "--out", str(tmp_path / "o.parquet"), "--home", str(home))
    table = pq.read_table(tmp_path / "o.parquet")
    assert parquet.returncode == 0 and table.num_rows == 27
    assert pa.types.is_timestamp(table.schema.field("attempted_at").type) and table.schema.field("attempts").type == pa.int64()
    unknown = run_cli("export", "--campaign", "nope", "--home", str(home))
    assert unknown.returncode == 2 and "campaigns here: demo" in unknown.stderr


def test_report_and_export_mistakes_are_one_line_with_their_exit_code(home, tmp_path):
    unwritable = run_cli("export", "--campaign", "demo", "--home", str(home), "--out", "/proc/outcomes.csv")
    assert unwritable.returncode == 7 and unwritable.stderr.count("\n") == 1 and "cannot write /proc/outcomes.csv" in unwritable.stderr
    device = run_cli("report", "--home", str(home), "--html", "/dev/null")
    assert device.returncode == 2 and "not a regular file" in device.stderr
    not_duckdb = run_cli("report", "--db", str(Path(__file__)))
    assert not_duckdb.returncode == 2 and "cannot be read as the report database" in not_duckdb.stderr
    assert "internal error" not in unwritable.stderr + device.stderr + not_duckdb.stderr
    unknown = run_cli("report", "--home", str(home), "--campaign", "nope")
    assert unknown.returncode == 2 and "campaigns here: demo" in unknown.stderr
    mixed = run_cli("export", "--campaign", "demo", "--home", str(home), "--format", "parquet", "--out", str(tmp_path / "x.csv"))
    assert mixed.returncode == 0 and "warning: writing parquet into x.csv" in mixed.stderr


def test_export_keeps_the_spreadsheet_s_column_order(home, tmp_path):
    made = run_cli("export", "--campaign", "demo", "--home", str(home), "--out", str(tmp_path / "o.csv"))
    header = (tmp_path / "o.csv").read_text(encoding="utf-8").splitlines()[0].replace('"', "").split(",")
    assert made.returncode == 0
    assert header[header.index("provider_batch_id") + 1:][:5] == ["first_name", "last_name", "appointment_time", "account_id", "clinic"]
