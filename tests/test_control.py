"""cancel, reschedule and retry against the sandbox over loopback HTTP, the CLI as a subprocess."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import duckdb
import httpx
import pytest

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.sandbox_helpers import advance_clock
from tests.submit_helpers import contacts_file, import_cmd, provider_env, run

# The tests of what cancel and retry leave in the ledger run on SQLite and on PostgreSQL (`store`); those of what
# they say run on SQLite.


def recipients(url: str) -> list[dict]:
    return httpx.get(url + "/_sandbox/recipients", timeout=10).json()


def cli(dialect: str, home, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines", *args, "--home", str(home), "--provider", dialect]


def plain(home, *args: str) -> list[str]:
    """A follow-up command as a user types it: no --provider (the ledger knows it)."""
    return [sys.executable, "-m", "pipelines", *args, "--home", str(home)]


def wait_until(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
@pytest.mark.parametrize("dialect", ["magpipe", "batchcall"])
def test_retry_calls_exactly_the_people_whose_call_did_not_connect(tmp_path, dialect):
    path, numbers = contacts_file(tmp_path, count=24)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=400, seed=11)) as sandbox:
        env = provider_env(dialect, sandbox.url)
        assert run(import_cmd(dialect, path, home, campaign="r", batch_size=12), env).returncode == 0
        assert run(cli(dialect, home, "sync", "--campaign", "r", "--wait", "60"), env).returncode == 0
        first = {r["phone_number"]: r["status"] for r in recipients(sandbox.url)}
        connected = {n for n, s in first.items() if s == "completed"}
        unconnected = {n for n, s in first.items() if s in ("busy", "no_answer", "failed")}
        assert connected and unconnected and connected | unconnected == set(numbers)

        dry = run(cli(dialect, home, "retry", "--campaign", "r", "--min-gap", "0", "--dry-run", "--json"), env)
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["retried_contacts"] == len(unconnected)
        assert len(recipients(sandbox.url)) == len(numbers)  # a dry run sends nothing

        result = run(cli(dialect, home, "retry", "--campaign", "r", "--min-gap", "0", "--json"), env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["retried_contacts"] == len(unconnected)
        assert run(cli(dialect, home, "sync", "--campaign", "r", "--wait", "60"), env).returncode == 0
        rows = recipients(sandbox.url)
        batches_per_number = Counter(r["phone_number"] for r in rows if r["batch_status"] != "draft")
        assert {n for n, c in batches_per_number.items() if c == 2} == unconnected  # exactly the failed ones, once more
        assert all(batches_per_number[n] == 1 for n in connected)  # completed calls are never repeated
        assert all(r["dials"] <= 1 and r["runs"] <= 1 for r in rows)

        # a second retry only calls people whose retry failed too; with --max-attempts 2 nobody
        capped = run(cli(dialect, home, "retry", "--campaign", "r", "--min-gap", "0", "--max-attempts", "2", "--json"), env)
        assert capped.returncode == 0 and json.loads(capped.stdout)["retried_contacts"] == 0
        assert json.loads(capped.stdout)["not_retried"].get("max_attempts", 0) > 0
        # the gap: nobody is due again within 5 hours of their last call
        early = run(cli(dialect, home, "retry", "--campaign", "r", "--min-gap", "5", "--json"), env)
        assert json.loads(early.stdout)["retried_contacts"] == 0
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        attempts = dict(db.sql("SELECT e164, attempts FROM recipient_outcomes WHERE campaign = 'r'").fetchall())
        (summary,) = db.sql("SELECT submitted, retried FROM campaign_summary WHERE campaign = 'r'").fetchall()
        # the summary counts each person's latest outcome, as recipient_outcomes shows it (two attempts for some)
        counted = db.execute("SELECT completed, failed, skipped FROM campaign_summary WHERE campaign = 'r'").fetchone()
        outcomes = db.execute("""SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status IN ('busy', 'no_answer',
                             'failed')), count(*) FILTER (WHERE status = 'skipped') FROM recipient_outcomes WHERE campaign = 'r'""").fetchone()  # fmt: skip
    assert {n for n, a in attempts.items() if a == 2} == unconnected and all(attempts[n] == 1 for n in connected)
    assert summary == (24, len(unconnected))
    assert counted == outcomes and sum(counted) == len(numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_a_retry_killed_mid_submission_and_rerun_calls_nobody_a_third_time(tmp_path):
    dialect = "magpipe"
    path, numbers = contacts_file(tmp_path, count=40)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=400, seed=5)) as sandbox:
        env = provider_env(dialect, sandbox.url)
        assert run(import_cmd(dialect, path, home, campaign="k", batch_size=5), env).returncode == 0
        assert run(cli(dialect, home, "sync", "--campaign", "k", "--wait", "60"), env).returncode == 0
        unconnected = {r["phone_number"] for r in recipients(sandbox.url) if r["status"] != "completed"}
        assert len(unconnected) >= 8  # at least four retry batches of two: one per kill and some left
        retry = cli(dialect, home, "retry", "--campaign", "k", "--min-gap", "0", "--batch-size", "2")
        for failpoint in ("after_create", "after_mark_starting", "after_start"):
            killed = run(retry, {**env, "CAMPAIGNS_FAILPOINT": failpoint})
            assert killed.returncode == -9, (failpoint, killed.stderr)
        final = run([*retry, "--json"], env)
        assert final.returncode == 0, final.stderr
        assert run(cli(dialect, home, "sync", "--campaign", "k", "--wait", "60"), env).returncode == 0
        rows = recipients(sandbox.url)
    started = Counter(r["phone_number"] for r in rows if r["batch_status"] != "draft")
    assert {n for n, c in started.items() if c == 2} == unconnected and max(started.values()) == 2
    assert all(r["dials"] <= 1 and r["runs"] <= 1 for r in rows)
    assert len([r for r in rows if r["batch_status"] == "draft"]) == 0


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_cancel_mid_dial_skips_the_pending_and_restarts_nothing(tmp_path):
    dialect = "magpipe"
    path, numbers = contacts_file(tmp_path, count=30)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=1, seed=2)) as sandbox:  # slow enough to stop mid-dial on a loaded machine
        env = provider_env(dialect, sandbox.url)
        assert run(import_cmd(dialect, path, home, campaign="c", batch_size=30), env).returncode == 0
        wait_until(lambda: any(r["dials"] for r in recipients(sandbox.url)))
        killed = run(cli(dialect, home, "cancel", "--campaign", "c"), {**env, "CAMPAIGNS_FAILPOINT": "after_cancel_request"})
        assert killed.returncode == -9
        result = run(cli(dialect, home, "cancel", "--campaign", "c", "--json"), env)
        assert result.returncode == 0, result.stderr
        (over,) = json.loads(result.stdout)["already_over"]
        assert over["state"] == "cancelled" and json.loads(result.stdout)["done"] == []
        rows = recipients(sandbox.url)
        assert {r["batch_status"] for r in rows} == {"cancelled"}
        skipped = [r for r in rows if r["status"] == "skipped"]
        assert skipped and all(r["dials"] == 0 for r in skipped)
        assert all(r["runs"] == 1 and r["dials"] <= 1 for r in rows)  # nothing was started again
        # a cancelled campaign takes nothing new until it is resumed; once resumed, an import of the same people does
        # not bring them back, and sync finishes the batch (no --provider: the ledger knows it)
        refused = run(import_cmd(dialect, path, home, campaign="c", batch_size=30), env)
        assert refused.returncode == 2 and "was cancelled" in refused.stderr
        assert run(plain(home, "resume", "--campaign", "c"), env).returncode == 0
        assert run(import_cmd(dialect, path, home, campaign="c", batch_size=30), env).returncode == 0
        advance_clock(sandbox.url, 3600)  # the calls left going end, without a wait
        assert run(plain(home, "sync", "--campaign", "c", "--wait", "30"), env).returncode == 0
        assert all(r["runs"] == 1 for r in recipients(sandbox.url)) and len(recipients(sandbox.url)) == 30
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        statuses = dict(db.sql("SELECT status, count(*) FROM recipient_outcomes GROUP BY ALL").fetchall())
    assert statuses.get("skipped", 0) == len(skipped)


@pytest.mark.parametrize("dialect", ["magpipe", "batchcall"])
def test_reschedule_a_draft_then_cancel_it(tmp_path, dialect):
    path, numbers = contacts_file(tmp_path, count=6)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=100)) as sandbox:
        env = provider_env(dialect, sandbox.url)
        killed = run(import_cmd(dialect, path, home, campaign="m", batch_size=6), {**env, "CAMPAIGNS_FAILPOINT": "after_record_draft"})
        assert killed.returncode == -9
        at = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
        bad = run(cli(dialect, home, "reschedule", "--campaign", "m", "--at", "2026-11-25T09:00"), env)
        assert bad.returncode == 2 and "offset" in bad.stderr
        moved = run(cli(dialect, home, "reschedule", "--campaign", "m", "--at", at.isoformat(), "--json"), env)
        assert moved.returncode == 0, moved.stderr
        assert len(json.loads(moved.stdout)["submitted"]) == 1
        batch = _only_batch(sandbox.url, dialect)
        assert batch["status"] == "scheduled"
        scheduled = (datetime.fromisoformat(batch["scheduled_at"].replace("Z", "+00:00")) if dialect == "magpipe"
                     else datetime.fromtimestamp(batch["scheduled_timestamp"] / 1000, UTC))  # fmt: skip
        assert abs((scheduled - at).total_seconds()) < 1
        assert all(r["dials"] == 0 for r in recipients(sandbox.url))

        stop = run(cli(dialect, home, "cancel", "--campaign", "m", "--json"), env)
        assert stop.returncode == 0, stop.stderr
        assert _only_batch(sandbox.url, dialect)["status"] in ("cancelled", "draft")
        again = run(cli(dialect, home, "cancel", "--campaign", "m", "--json"), env)  # idempotent
        assert again.returncode == 0 and not json.loads(again.stdout)["not_done"] and not json.loads(again.stdout)["done"]
        assert [row["state"] for row in json.loads(again.stdout)["already_over"]] == ["cancelled"]
        assert run(plain(home, "resume", "--campaign", "m"), env).returncode == 0
        resumed = run(import_cmd(dialect, path, home, campaign="m", batch_size=6), env)  # a cancelled batch is never resumed
        assert resumed.returncode == 0 and all(r["dials"] == 0 for r in recipients(sandbox.url))


def test_a_batchcall_batch_that_is_dialling_is_reported_not_silently_ignored(tmp_path):
    dialect = "batchcall"
    path, numbers = contacts_file(tmp_path, count=20)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=5)) as sandbox:
        env = provider_env(dialect, sandbox.url)
        assert run(import_cmd(dialect, path, home, campaign="b", batch_size=20), env).returncode == 0
        wait_until(lambda: any(r["dials"] for r in recipients(sandbox.url)))
        result = run(cli(dialect, home, "cancel", "--campaign", "b", "--json"), env)
    assert result.returncode == 4
    (row,) = json.loads(result.stdout)["not_done"]
    assert "no way to stop" in row["reason"]


def _only_batch(url: str, dialect: str) -> dict:
    if dialect == "magpipe":
        (batch,) = httpx.post(url + "/functions/v1/batch-calls", json={"action": "list"}, headers={"Authorization": "Bearer sandbox-key"}).json()["batches"]
        return batch
    (batch,) = httpx.get(url + "/batch-call", headers={"X-API-KEY": "sandbox-key", "X-API-SECRET": "sandbox-secret"}).json()["data"]
    return batch


def test_an_unknown_campaign_is_refused_in_one_line(tmp_path):
    path, _ = contacts_file(tmp_path, count=2)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=100)) as sandbox:
        env = provider_env("magpipe", sandbox.url)
        assert run(import_cmd("magpipe", path, home, campaign="real"), env).returncode == 0
        for command in (["cancel"], ["reschedule", "--at", "2099-01-01T09:00Z"], ["retry"]):
            result = run(cli("magpipe", home, *command, "--campaign", "typo"), env)
            assert result.returncode == 2 and "'typo'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        near = run(plain(home, "cancel", "--campaign", "reel"), env)
        assert near.returncode == 2 and near.stderr.strip().endswith("did you mean 'real'?"), near.stderr


def test_calls_in_progress_when_a_batch_is_cancelled_are_synced_to_their_end(tmp_path):
    dialect = "magpipe"
    path, numbers = contacts_file(tmp_path, count=12)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=1, seed=4)) as sandbox:  # calls last long enough to be caught ringing
        env = provider_env(dialect, sandbox.url)
        assert run(import_cmd(dialect, path, home, campaign="live", batch_size=12), env).returncode == 0
        wait_until(lambda: any(r["status"] in ("ringing", "in_progress") for r in recipients(sandbox.url)))
        assert run(plain(home, "cancel", "--campaign", "live"), env).returncode == 0
        in_flight = [r for r in recipients(sandbox.url) if r["status"] not in ("completed", "busy", "no_answer", "failed", "skipped")]
        assert in_flight  # the stop left calls going
        first = run(plain(home, "sync", "--campaign", "live", "--json"), env)  # the provider already says "cancelled"
        assert first.returncode == 0 and json.loads(first.stdout)["finished"] == 0  # …but calls are still going
        advance_clock(sandbox.url, 3600)  # …until they end
        done = run(plain(home, "sync", "--campaign", "live", "--wait", "120", "--json"), env)
        assert done.returncode == 0 and json.loads(done.stdout)["finished"] == 1, done.stderr
        truth = {r["phone_number"]: r["status"] for r in recipients(sandbox.url)}
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        seen = dict(db.sql("SELECT e164, status FROM recipient_outcomes WHERE campaign = 'live'").fetchall())
    assert seen == truth and "skipped" in truth.values()


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_the_people_of_a_batch_stopped_before_it_dialled_are_cancelled_and_retry_skipped_calls_them(tmp_path):
    """Synced while scheduled (its recipients read as pending), then cancelled: the view says cancelled, not pending,
    and `retry --statuses skipped` (what `resume` suggests) calls them."""
    from tests.submit_helpers import closed_new_york_window

    path, numbers = contacts_file(tmp_path, count=5)
    home = tmp_path / "home"
    start, _ = closed_new_york_window()
    with running(SandboxConfig(speed=100)) as sandbox:
        env = provider_env("batchcall", sandbox.url)
        planned = run(import_cmd("batchcall", path, home, campaign="s") + ["--window", f"{start:02d}:00-{start + 2:02d}:00"], env)
        assert planned.returncode == 0, planned.stderr
        waited = run(plain(home, "sync", "--campaign", "s", "--wait", "1"), env)  # read while scheduled: pending
        assert waited.returncode == 0 and "Stopped waiting after 1 s: 1 batch is not finished yet (1 scheduled" in waited.stdout
        stopped = run(plain(home, "cancel", "--campaign", "s"), env)
        assert stopped.returncode == 0 and "campaign s is stopped" in stopped.stdout, stopped.stdout
        with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
            statuses = Counter(s for (s,) in db.sql("SELECT status FROM recipient_outcomes WHERE campaign = 's'").fetchall())
        assert statuses == {"cancelled": len(numbers)}
        resumed = run(plain(home, "resume", "--campaign", "s"), env)
        assert "--statuses skipped" in resumed.stdout
        dry = run(plain(home, "retry", "--campaign", "s", "--statuses", "skipped", "--dry-run", "--json"), env)
        assert dry.returncode == 0 and json.loads(dry.stdout)["retried_contacts"] == len(numbers), dry.stdout


def test_reschedule_reports_batches_already_over_and_a_dry_run_never_ends_in_an_error(tmp_path):
    path, numbers = contacts_file(tmp_path, count=6)
    home = tmp_path / "home"
    with running(SandboxConfig(speed=100)) as sandbox:
        env = provider_env("batchcall", sandbox.url)
        assert run(import_cmd("batchcall", path, home, campaign="o", batch_size=3), env).returncode == 0
        advance_clock(sandbox.url, 86400)  # every call over at the provider; not synced yet
        at = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        dry = run(plain(home, "reschedule", "--campaign", "o", "--at", at, "--dry-run"), env)
        assert dry.returncode == 0 and "error" not in dry.stderr, dry.stderr
        assert "2 batches already over (completed 2)" in dry.stdout, dry.stdout
        moved = run(plain(home, "reschedule", "--campaign", "o", "--at", at, "--json"), env)
        assert moved.returncode == 0 and len(json.loads(moved.stdout)["already_over"]) == 2
        waited = run(plain(home, "sync", "--campaign", "typo"), env)
        assert waited.returncode == 2 and "campaigns here: o" in waited.stderr
