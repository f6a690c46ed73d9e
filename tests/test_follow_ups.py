"""Follow-up commands as a user types them: the ledger knows each batch's provider and caller number."""

from __future__ import annotations

import json
import os
import sys

import httpx
import pytest

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.sandbox_helpers import BC_HEADERS, BEARER, MAGPIPE
from tests.submit_helpers import contacts_file, import_cmd, provider_env, run

# Follow-ups that take their provider and caller from the ledger run on SQLite and on PostgreSQL (`store`).


def plain(home, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines", *args, "--home", str(home)]


def caller_ids(url: str, dialect: str) -> set[str]:
    if dialect == "magpipe":
        batches = httpx.post(url + MAGPIPE, json={"action": "list"}, headers=BEARER, timeout=10).json()["batches"]
        return {b["caller_id"] for b in batches}
    return {b["from_number"] for b in httpx.get(url + "/batch-call", headers=BC_HEADERS, timeout=10).json()["data"]}


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
@pytest.mark.parametrize("dialect", ["magpipe", "batchcall"])
def test_sync_retry_cancel_and_report_need_neither_provider_nor_caller_id(tmp_path, dialect):
    path, numbers = contacts_file(tmp_path, count=16)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=400, seed=7)) as sandbox:
        env = provider_env(dialect, sandbox.url)
        assert run(import_cmd(dialect, path, home, campaign="f", batch_size=8), env).returncode == 0
        follow = {k: v for k, v in env.items() if k != "CAMPAIGNS_CALLER_ID"}  # only the credentials stay in the environment
        assert "CAMPAIGNS_CALLER_ID" not in os.environ

        blind = run(plain(home, "sync", "--campaign", "f"), {})  # the credentials forgotten: said, and not "nothing to sync"
        assert blind.returncode == 2 and "not read" in blind.stderr and "no started batch" not in blind.stdout, blind.stdout
        synced = run(plain(home, "sync", "--campaign", "f", "--wait", "60", "--json"), follow)
        assert synced.returncode == 0, synced.stderr
        report = json.loads(synced.stdout)
        assert report["finished"] == 2 and report["recipients"] == report["recipients_final"] == 16
        failed = {r["phone_number"] for r in httpx.get(sandbox.url + "/_sandbox/recipients").json() if r["status"] != "completed"}
        assert failed

        retried = run(plain(home, "retry", "--campaign", "f", "--min-gap", "0", "--json"), follow)
        assert retried.returncode == 0, retried.stderr
        assert json.loads(retried.stdout)["retried_contacts"] == len(failed)
        assert caller_ids(sandbox.url, dialect) == {env["CAMPAIGNS_CALLER_ID"]}  # the retry batch calls from the same number

        assert run(plain(home, "sync", "--campaign", "f", "--wait", "60"), follow).returncode == 0
        cancelled = run(plain(home, "cancel", "--campaign", "f", "--json"), follow)
        assert cancelled.returncode == 0, cancelled.stderr
        assert run(plain(home, "report", "--campaign", "f"), follow).returncode == 0
        rows = httpx.get(sandbox.url + "/_sandbox/recipients").json()
    assert sorted(r["phone_number"] for r in rows) == sorted(numbers + list(failed))  # each failed number once more, nobody else
    assert all(r["dials"] <= 1 and r["runs"] <= 1 for r in rows)


def test_a_follow_up_without_the_credentials_of_the_campaigns_provider_says_which(tmp_path):
    path, _ = contacts_file(tmp_path, count=3)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=400)) as sandbox:
        env = provider_env("batchcall", sandbox.url)
        assert run(import_cmd("batchcall", path, home, campaign="k"), env).returncode == 0
    result = run(plain(home, "sync", "--campaign", "k"), {})
    assert result.returncode == 2 and "provider batchcall needs BATCHCALL_API_KEY" in result.stderr


def test_sync_wait_reports_each_poll_and_totals_over_the_whole_wait(tmp_path):
    """Off a terminal (cron mail, a pipe): one plain line per poll on stderr, then totals over every poll."""
    path, _ = contacts_file(tmp_path, count=12)
    home = tmp_path / "home"
    env = {"CAMPAIGNS_SANDBOX_SPEED": "40"}  # calls take a few seconds: the wait needs several polls
    assert run([sys.executable, "-m", "pipelines", "import", str(path), "--campaign", "p", "--home", str(home),
                "--batch-size", "4"], env).returncode == 0  # fmt: skip
    result = run(plain(home, "sync", "--wait", "120"), env)
    assert result.returncode == 0, result.stderr
    polls = [line for line in result.stderr.splitlines() if line.startswith("poll ")]
    assert polls and polls[-1].endswith("3 of 3 batches finished, 12 of 12 calls over")
    assert "Synced 3 batches (3 finished)" in result.stdout and "12 of 12 calls over" in result.stdout


def test_the_notebook_api_leaves_empty_cells_out_of_the_variables_as_the_cli_does(tmp_path):
    from pipelines.api import load_contacts
    from tests.conftest import write_delimited

    sheet = write_delimited(tmp_path / "v.csv", [["Phone", "First Name", "Note"], ["+12125550100", "Ann", ""], ["+12125550101", "", "hi"]])
    assert load_contacts(sheet).accepted["dynamic_variables"].tolist() == [{"first_name": "Ann"}, {"note": "hi"}]
