"""Sync into the ledger, configuration precedence, locks, and secrets that never leave the environment."""

from __future__ import annotations

import sqlite3
import sys
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
    """Rows of a query on the ledger file in `home`, read with sqlite3 directly."""
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
    rows = sorted((r.e164, r.status, r.call_record_id) for r in Ledger(f"sqlite:///{home / 'ledger.sqlite'}").recipient_statuses("s"))
    assert [r[0] for r in rows] == sorted(numbers)
    assert {r[1] for r in rows} <= {"completed", "busy", "no_answer", "failed"} and all(r[2] for r in rows)
    assert ledger_rows(home, "SELECT DISTINCT state FROM chunks") == [("finished",)]
    again = run_cli("sync", "--home", str(home), "--provider", "batchcall", "--json", env=env)
    assert last_json(again)["batches"] == []  # finished batches are not read again
    assert len(Ledger(f"sqlite:///{home / 'ledger.sqlite'}").recipient_statuses()) == 9  # and no row was added twice


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
    said = run_cli("sync", "--home", str(tmp_path / "home"), "--state", f"sqlite:///{ledger_file}")  # a follow-up says it too
    assert said.returncode == 0 and "No real calls are placed" in said.stderr, said.stderr


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


def _race_for_lock(url: str, barrier, results) -> None:
    ledger = Ledger(url)
    barrier.wait()
    try:
        token = ledger.acquire("c")
        results.put(("won", token))
    except LockHeld:
        results.put(("lost", None))
    barrier.wait()  # a winner keeps the lock until every racer has tried


def test_many_runs_racing_for_a_stale_lock_leave_exactly_one_holder(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    ledger = Ledger(url)
    racers = 6
    for round_ in range(20):
        ledger.acquire("c")
        with sqlite3.connect(tmp_path / "ledger.sqlite") as db:  # its holder was killed
            db.execute("UPDATE locks SET pid = 2147483646")
        barrier, results = context.Barrier(racers), context.Queue()
        processes = [context.Process(target=_race_for_lock, args=(url, barrier, results)) for _ in range(racers)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        winners = [token for verdict, token in outcomes if verdict == "won"]
        assert len(winners) == 1, (round_, outcomes)
        assert ledger_rows(tmp_path, "SELECT owner FROM locks") == [(winners[0],)]
        ledger.release("c", winners[0])
        assert ledger_rows(tmp_path, "SELECT owner FROM locks") == []


def test_two_first_runs_on_a_fresh_home_create_the_ledger_once(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        url = f"sqlite:///{tmp_path / str(round_) / 'ledger.sqlite'}"
        processes = [context.Process(target=Ledger, args=(url,)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]


@pytest.mark.parametrize("dialect", ["batchcall", "magpipe"])
def test_secrets_pasted_with_line_endings_or_wrong_never_leak(tmp_path, guarded, dialect):
    """Keys from a Windows file end in CR LF: they are used stripped; a wrong one is refused; neither is ever printed or stored."""
    home, out = tmp_path / "home", tmp_path / "out"
    pasted = provider_env(dialect, guarded.url, key=KEY + "\r\n", secret=SECRET + "\n")
    wrong_key = "wrong-" + KEY + "\r"
    wrong = provider_env(dialect, guarded.url, key=wrong_key, secret=SECRET + "\r")
    path, _ = contacts_file(tmp_path, count=4)
    path2, _ = contacts_file(tmp_path, count=2, start=50, name="more.csv")
    sync = [sys.executable, "-m", "pipelines", "sync", "--home", str(home), "--provider", dialect, "--wait", "10"]
    outputs = [
        run(import_cmd(dialect, path, home, campaign="paste") + ["--out", str(out)], pasted),
        run(sync, pasted),
        run(import_cmd(dialect, path2, home, campaign="paste"), wrong),
        run(import_cmd(dialect, path2, home, campaign="paste"), {**wrong, "CAMPAIGNS_DEBUG": "1"}),
    ]
    assert [o.returncode for o in outputs] == [0, 0, 5, 5], [o.stderr for o in outputs]
    assert "refused the credentials" in outputs[2].stderr
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    printed = "".join(o.stdout + o.stderr for o in outputs)
    for secret in (KEY, SECRET, wrong_key.strip()):
        assert secret.encode() not in written and secret not in printed


@pytest.mark.parametrize("variable", ["MAGPIPE_API_KEY", "BATCHCALL_API_SECRET"])
def test_a_secret_that_cannot_be_sent_is_refused_by_name_not_by_value(tmp_path, guarded, variable):
    dialect = "magpipe" if variable.startswith("MAGPIPE") else "batchcall"
    env = provider_env(dialect, guarded.url, key=KEY, secret=SECRET) | {variable: "kéy-ünicode-93x"}
    path, _ = contacts_file(tmp_path, count=2)
    result = run(import_cmd(dialect, path, tmp_path / "home"), env)
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr and "HTTP header" in result.stderr
    assert "kéy" not in result.stderr + result.stdout and "internal error" not in result.stderr
