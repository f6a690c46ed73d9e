"""Do-not-call suppression and the cooldown: files, the ledger's list, accounting, outputs, reports."""

from __future__ import annotations

import csv
import json

import duckdb
import httpx
import pytest

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.conftest import run_cli, write_delimited
from tests.submit_helpers import contacts_file, import_cmd, last_json, provider_env, run


@pytest.fixture(scope="module")
def sandbox():
    with running(SandboxConfig(speed=300)) as handle:
        yield handle


def test_suppress_file_in_any_format_removes_rows_and_keeps_the_accounting(tmp_path):
    sheet = write_delimited(tmp_path / "c.csv", [["Phone", "Name"], ["(212) 555-0100", "a"], ["212.555.0101", "b"], ["+1 212 555 0100", "c"], ["n/a", "d"]])
    dnc = tmp_path / "dnc.csv"
    dnc.write_text("2125550100\nnot a number\n")  # a bare list: no header, first line is a number
    result = run_cli("import", str(sheet), "--campaign", "c", "--dry-run", "--json", "--suppress", str(dnc), "--out", str(tmp_path / "out"))
    summary = last_json(result)
    assert (summary["rows_read"], summary["accepted"], summary["duplicates"], summary["rejected"], summary["suppressed"]) == (4, 1, 0, 1, 2)
    assert summary["rows_read"] == summary["accepted"] + summary["duplicates"] + summary["rejected"] + summary["suppressed"]
    rows = list(csv.DictReader((tmp_path / "out" / "suppressed.csv").open()))
    assert [(r["source_row"], r["e164"]) for r in rows] == [("2", "+12125550100"), ("4", "+12125550100")]


def test_the_ledger_list_is_managed_from_the_cli_and_applies_to_every_campaign(tmp_path, sandbox):
    home = tmp_path / "home"
    xlsx_free_list = tmp_path / "list.csv"
    xlsx_free_list.write_text("Phone\n+1 212 555 0003\n")
    assert run_cli("suppress", "add", "(212) 555-0001", "212-555-0002", "--home", str(home)).stdout.startswith("2 numbers added")
    assert "1 number added" in run_cli("suppress", "add", str(xlsx_free_list), "--home", str(home)).stdout
    bad = run_cli("suppress", "add", "hello", "--home", str(home))
    assert bad.returncode == 2 and "not valid phone numbers: hello" in bad.stderr
    listed = json.loads(run_cli("suppress", "list", "--json", "--home", str(home)).stdout)
    assert [(r["e164"], r["source"]) for r in listed] == [("+12125550001", "cli"), ("+12125550002", "cli"), ("+12125550003", "list.csv")]
    assert "1 number removed" in run_cli("suppress", "remove", "+12125550002", "--home", str(home)).stdout

    path, numbers = contacts_file(tmp_path, count=6)  # +12125550000 … +12125550005
    env = provider_env("batchcall", sandbox.url)
    result = run(import_cmd("batchcall", path, home, campaign="any") + ["--out", str(tmp_path / "out")], env)
    summary = last_json(result)
    assert summary["suppressed"] == 2 and sum(b["size"] for b in summary["batches"]) == 4
    called = {r["phone_number"] for r in httpx.get(sandbox.url + "/_sandbox/recipients").json()}
    assert called.isdisjoint({"+12125550001", "+12125550003"}) and "+12125550002" in called
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        row = db.execute("SELECT rows_read, accepted, suppressed FROM campaign_summary WHERE campaign = 'any'").fetchone()
    assert row == (6, 4, 2)


def test_cooldown_skips_numbers_any_campaign_called_recently(tmp_path, sandbox):
    home = tmp_path / "home"
    env = provider_env("batchcall", sandbox.url)
    first, _ = contacts_file(tmp_path, count=5, start=500, name="first.csv")
    assert run(import_cmd("batchcall", first, home, campaign="spring"), env).returncode == 0
    overlap, _ = contacts_file(tmp_path, count=5, start=503, name="second.csv")  # 503, 504 were just called
    without = last_json(run(import_cmd("batchcall", overlap, home, campaign="summer") + ["--dry-run"], env))
    assert without["cooled_down"] == 0 and sum(b["size"] for b in without["batches"]) == 5
    cooled = last_json(run(import_cmd("batchcall", overlap, home, campaign="summer") + ["--cooldown", "7"], env))
    assert cooled["cooled_down"] == 2 and sum(b["size"] for b in cooled["batches"]) == 3
    assert cooled["rows_read"] == cooled["accepted"] + cooled["duplicates"] + cooled["rejected"] + cooled["suppressed"]
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        assert db.execute("SELECT cooled_down, accepted FROM campaign_summary WHERE campaign = 'summer'").fetchone() == (2, 3)


# Numbers as a CRM exports them: national spellings with a country column, two phone columns.
NATIONAL = [
    ["Name", "Mobile Phone", "Work Phone", "Country"],
    ["Ana", "(21) 98765-4321", "(21) 2345-6789", "BR"],
    ["Ben", "07911 123456", "020 7946 0958", "GB"],
    ["Cal", "", "(212) 555-0150", "US"],
]
NATIONAL_E164 = ["+5521987654321", "+552123456789", "+447911123456", "+442079460958", "+12125550150"]


def test_a_dnc_file_is_read_like_a_contact_file_so_nobody_on_it_is_planned(tmp_path):
    contacts = write_delimited(tmp_path / "crm.csv", [["Name", "Phone", "Country"], ["Ana", "(21) 2345-6789", "BR"],
                                                     ["Ben", "020 7946 0958", "GB"], ["Cal", "(212) 555-0150", "US"],
                                                     ["Dee", "(21) 98765-4321", "BR"], ["Eve", "(212) 555-0199", "US"]])  # fmt: skip
    national = write_delimited(tmp_path / "dnc-national.csv", NATIONAL)
    e164 = write_delimited(tmp_path / "dnc-e164.csv", [["Phone"], *[[n] for n in NATIONAL_E164]])
    for dnc in (national, e164):
        summary = last_json(run_cli("import", str(contacts), "--campaign", "c", "--dry-run", "--json", "--suppress", str(dnc)))
        assert summary["suppressed"] == 4 and summary["accepted"] == 1, summary  # only Eve is left to call
    home = tmp_path / "home"
    added = json.loads(run_cli("suppress", "add", str(national), "--home", str(home), "--json").stdout)
    assert added["added"] == 5 and added["files"][0]["rows_read"] == 3 and added["files"][0]["skipped"] == {}
    listed = {r["e164"] for r in json.loads(run_cli("suppress", "list", "--json", "--home", str(home)).stdout)}
    assert listed == set(NATIONAL_E164)  # every phone column, each number in its own country
    planned = last_json(run_cli("import", str(contacts), "--campaign", "c", "--home", str(home), "--json"))
    assert planned["suppressed"] == 4 and sum(b["size"] for b in planned["batches"]) == 1
    removed = json.loads(run_cli("suppress", "remove", str(e164), "--home", str(home), "--json").stdout)
    assert removed["removed"] == 5 and json.loads(run_cli("suppress", "list", "--json", "--home", str(home)).stdout) == []


def test_campaign_summary_counts_each_file_content_once_however_often_it_is_imported(tmp_path, sandbox):
    home = tmp_path / "home"
    env = provider_env("batchcall", sandbox.url)
    rows = [["Phone", "Name"], ["(212) 555-0700", "a"], ["212-555-0701", "b"], ["n/a", "c"], ["212 555 0700", "d"], ["212-555-0702", "e"]]
    sheet = write_delimited(tmp_path / "list.csv", rows)  # 5 rows: 3 numbers, 1 reject, 1 duplicate
    assert run_cli("suppress", "add", "212-555-0702", "--home", str(home)).returncode == 0
    assert run(import_cmd("batchcall", sheet, home, campaign="again"), env).returncode == 0
    assert run(import_cmd("batchcall", sheet, home, campaign="again"), env).returncode == 0  # the same file, again
    assert run_cli("suppress", "remove", "212-555-0702", "--home", str(home)).returncode == 0
    third = last_json(run(import_cmd("batchcall", sheet, home, campaign="again"), env))  # now its last number is callable
    assert sum(b["size"] for b in third["batches"]) == 1
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        summary = db.execute("SELECT * FROM campaign_summary WHERE campaign = 'again'").df().iloc[0]
        readings = db.execute("SELECT count(*), count(*) FILTER (WHERE counted) FROM import_files").fetchone()
    assert (summary.imports, summary.rows_read, summary.accepted, summary.duplicates, summary.rejected, summary.suppressed,
            summary.already_submitted) == (3, 5, 3, 1, 1, 0, 0)  # fmt: skip
    assert readings == (3, 1)
    assert summary.rows_read == (summary.accepted + summary.duplicates + summary.already_submitted + summary.cooled_down
                                 + summary.rejected + summary.suppressed)  # fmt: skip
