"""Sync into the ledger, configuration precedence, locks, and secrets that never leave the environment."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipelines.errors import LockHeld
from pipelines.ledger import Ledger
from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.conftest import run_cli
from tests.submit_helpers import contacts_file, import_cmd, last_json, provider_env, run

KEY, SECRET = "bc-key-7f3a9c", "bc-secret-Q8z1x"


@pytest.fixture(scope="module")
def guarded():
    """A sandbox with credentials nobody would guess, to look for them afterwards."""
    with running(SandboxConfig(speed=300, api_key=KEY, api_secret=SECRET)) as handle:
        yield handle


def ledger_rows(home: Path, query: str):
    with sqlite3.connect(home / "ledger.sqlite") as db:
        return db.execute(query).fetchall()


def test_sync_records_recipients_and_finishes_batches(tmp_path, guarded):
    path, numbers = contacts_file(tmp_path, count=9)
    home = tmp_path / "home"
    env = provider_env("batchcall", guarded.url, key=KEY, secret=SECRET)
    assert run(import_cmd("batchcall", path, home, campaign="s", batch_size=4), env).returncode == 0
    result = run_cli("sync", "--campaign", "s", "--home", str(home), "--provider", "batchcall", "--wait", "20", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = last_json(result)
    assert report["finished"] == 3 and report["recipients"] == 9
    assert {b["status"] for b in report["batches"]} == {"completed"}
    rows = ledger_rows(home, "SELECT e164, status, call_record_id FROM recipient_status ORDER BY e164")
    assert [r[0] for r in rows] == sorted(numbers)
    assert {r[1] for r in rows} <= {"completed", "busy", "no_answer", "failed"} and all(r[2] for r in rows)
    assert ledger_rows(home, "SELECT DISTINCT state FROM chunks") == [("finished",)]
    again = run_cli("sync", "--home", str(home), "--provider", "batchcall", "--json", env=env)
    assert last_json(again)["batches"] == []  # finished batches are not read again
    assert len(ledger_rows(home, "SELECT * FROM recipient_status")) == 9  # and no row was added twice


def test_secrets_never_leave_the_environment(tmp_path, guarded):
    path, _ = contacts_file(tmp_path, count=5)
    home, out = tmp_path / "home", tmp_path / "out"
    env = provider_env("batchcall", guarded.url, key=KEY, secret=SECRET)
    outputs = [run(import_cmd("batchcall", path, home, campaign="secret") + ["--out", str(out)], env)]
    outputs.append(run_cli("sync", "--home", str(home), "--provider", "batchcall", "--wait", "10", env=env))
    # a refused secret must not be echoed either
    wrong = provider_env("batchcall", guarded.url, key=KEY, secret=SECRET + "-WRONG")
    path2, _ = contacts_file(tmp_path, count=2, start=100, name="more.csv")
    outputs.append(run(import_cmd("batchcall", path2, home, campaign="secret"), wrong))
    assert outputs[0].returncode == 0 and outputs[1].returncode == 0 and outputs[2].returncode == 5
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    printed = "".join(o.stdout + o.stderr for o in outputs)
    for secret in (KEY, SECRET):
        assert secret.encode() not in written and secret not in printed


def test_campaigns_toml_sets_defaults_but_may_not_hold_secrets(tmp_path):
    path, _ = contacts_file(tmp_path, count=3)
    (tmp_path / "campaigns.toml").write_text('provider = "magpipe"\nbatch_size = 2\n')
    result = run_cli("import", str(path), "--campaign", "c", "--dry-run", "--json", "--config", str(tmp_path / "campaigns.toml"))
    assert result.returncode == 0 and [b["size"] for b in last_json(result)["batches"]] == [2, 1]
    (tmp_path / "bad.toml").write_text('magpipe_api_key = "sk-live-123"\n')
    refused = run_cli("import", str(path), "--campaign", "c", "--dry-run", "--config", str(tmp_path / "bad.toml"))
    assert refused.returncode == 2 and "secrets belong in the environment" in refused.stderr and "sk-live-123" not in refused.stderr


def test_state_url_puts_the_ledger_anywhere(tmp_path):
    path, _ = contacts_file(tmp_path, count=4)
    ledger_file = tmp_path / "elsewhere" / "ledger.db"
    result = run_cli("import", str(path), "--campaign", "c", "--home", str(tmp_path / "home"), "--state", f"sqlite:///{ledger_file}", "--json")
    assert result.returncode == 0, result.stderr
    assert ledger_file.exists() and not (tmp_path / "home" / "ledger.sqlite").exists()
    assert "embedded sandbox" in result.stderr and "No real calls are placed" in result.stderr


def test_campaign_lock_is_exclusive_and_recovered_from_a_dead_holder(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    token = ledger.acquire("c")
    with pytest.raises(LockHeld, match="is busy"):
        ledger.acquire("c")
    ledger.release("c", token)
    ledger.acquire("c")
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:  # as if held by a process that was killed
        db.execute("UPDATE locks SET pid = 2147483646")
    assert ledger.acquire("c")
