"""Exactly once, proven through real seams: the CLI as a subprocess, SIGKILLed at every step and at
random moments, against the sandbox over loopback HTTP, with and without injected faults."""

from __future__ import annotations

import random
import subprocess
import time

import httpx
import pytest

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.submit_helpers import (
    assert_exactly_once,
    contacts_file,
    import_cmd,
    last_json,
    provider_env,
    run,
    run_until_done,
)

DIALECTS = ["batchcall", "magpipe"]
STEPS = ["after_mark_creating", "after_create", "after_record_draft", "after_mark_starting", "after_start", "after_record_started"]


@pytest.fixture(scope="module")
def sandbox():
    # x200: a chunk's calls finish within about a second, so a wrongly repeated `start`
    # on a finished magpipe batch would really dial everyone again, and be caught.
    with running(SandboxConfig(speed=200, seed=11)) as handle:
        yield handle


@pytest.fixture
def url(sandbox):
    httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": ""})
    httpx.post(sandbox.url + "/_sandbox/reset")
    return sandbox.url


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_then_rerun(tmp_path, url, dialect, step):
    path, numbers = contacts_file(tmp_path, count=30)
    env = provider_env(dialect, url)
    cmd = import_cmd(dialect, path, tmp_path / "home")
    crashed = run(cmd, {**env, "CAMPAIGNS_FAILPOINT": f"{step}:2"})  # the second chunk, after one went through
    assert crashed.returncode == -9, crashed.stderr
    time.sleep(0.3)  # let the first batch's calls finish: a repeated start would now re-dial
    run_until_done(cmd, env)
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
@pytest.mark.parametrize("dialect", DIALECTS)
def test_sigkill_at_random_moments(tmp_path, url, dialect):
    path, numbers = contacts_file(tmp_path, count=60)
    env = provider_env(dialect, url)
    cmd = import_cmd(dialect, path, tmp_path / "home", batch_size=5)
    rng = random.Random(f"kill-{dialect}")
    import os

    for _ in range(4):
        process = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.6, 1.6))  # the CLI needs ~0.8 s to start; kills land across submission
        process.kill()
        process.wait()
    run_until_done(cmd, env)
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
@pytest.mark.parametrize("dialect", DIALECTS)
def test_injected_faults_at_twenty_percent_each(tmp_path, url, dialect):
    httpx.post(url + "/_sandbox/faults", json={"spec": "429=0.2,500=0.2,reset=0.2,retry_after=0"})
    path, numbers = contacts_file(tmp_path, count=40)
    env = provider_env(dialect, url)
    cmd = import_cmd(dialect, path, tmp_path / "home", batch_size=5)
    run_until_done(cmd, env)
    stats = httpx.get(url + "/_sandbox/stats").json()["injected"]
    assert stats["429"] and stats["500"] and stats["reset"], stats  # the faults really happened
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
@pytest.mark.parametrize("dialect", DIALECTS)
def test_second_import_of_the_same_file_places_no_new_calls(tmp_path, url, dialect):
    path, numbers = contacts_file(tmp_path, count=12)
    env = provider_env(dialect, url)
    cmd = import_cmd(dialect, path, tmp_path / "home")
    first = run(cmd, env)
    assert first.returncode == 0, first.stderr
    assert sum(b["size"] for b in last_json(first)["batches"]) == 12
    before = httpx.get(url + "/_sandbox/recipients").json()
    second = run(cmd, env)
    assert second.returncode == 0, second.stderr
    summary = last_json(second)
    assert (summary["already_submitted"], summary["batches"]) == (12, [])
    assert httpx.get(url + "/_sandbox/recipients").json() == before or len(httpx.get(url + "/_sandbox/recipients").json()) == len(before)
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_overlapping_file_submits_only_the_new_contacts(tmp_path, url):
    first_path, first = contacts_file(tmp_path, count=10, name="a.csv")
    second_path, second = contacts_file(tmp_path, count=10, start=5, name="b.csv")
    env = provider_env("batchcall", url)
    assert run(import_cmd("batchcall", first_path, tmp_path / "home"), env).returncode == 0
    result = run(import_cmd("batchcall", second_path, tmp_path / "home"), env)
    summary = last_json(result)
    assert summary["already_submitted"] == 5 and sum(b["size"] for b in summary["batches"]) == 5
    assert_exactly_once(url, sorted(set(first) | set(second)))


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_unreachable_provider_exits_5_and_the_next_run_resumes(tmp_path, url):
    path, numbers = contacts_file(tmp_path, count=8)
    home = tmp_path / "home"
    dead = provider_env("batchcall", "http://127.0.0.1:9") | {"CAMPAIGNS_RETRY_ATTEMPTS": "2"}
    result = run(import_cmd("batchcall", path, home), dead)
    assert result.returncode == 5 and "cannot reach batchcall" in result.stderr and "pending" in result.stderr
    errors = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning: ")]  # the suite's any-hour
    assert len(errors) == 1
    resumed = run(import_cmd("batchcall", path, home), provider_env("batchcall", url))
    assert resumed.returncode == 0, resumed.stderr
    summary = last_json(resumed)
    assert summary["already_submitted"] == 8 and {b["status"] for b in summary["batches"]} == {"started"}
    assert_exactly_once(url, numbers)


def test_refused_credentials_exit_5_without_the_secret(tmp_path, url):
    path, _ = contacts_file(tmp_path, count=3)
    env = provider_env("magpipe", url, key="wrong-key-0f9e8d")
    result = run(import_cmd("magpipe", path, tmp_path / "home"), env)
    assert result.returncode == 5 and "refused the credentials" in result.stderr
    assert "wrong-key-0f9e8d" not in result.stderr + result.stdout


def test_missing_credentials_are_a_usage_error(tmp_path):
    path, _ = contacts_file(tmp_path, count=3)
    result = run(import_cmd("magpipe", path, tmp_path / "home"), {"MAGPIPE_API_KEY": ""})
    assert result.returncode == 2 and "needs MAGPIPE_API_KEY" in result.stderr


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
@pytest.mark.parametrize("failpoint", ["during_planning:2", "after_planning"])
def test_an_import_killed_while_planning_leaves_nothing_or_the_whole_plan(tmp_path, url, failpoint):
    """The plan goes into the ledger in one transaction: killed half way through it, the ledger holds nothing of
    the import; killed right after, it holds all of it and the next run submits it. Either way, once each."""
    from sqlalchemy import create_engine, text

    from tests.conftest import state_url, write_delimited

    numbers = [f"+1212555{n:04d}" for n in range(40)]
    rows = [["Phone", "Name"]] + [[n, f"p{i}"] for i, n in enumerate(numbers)] + [[numbers[0], "again"], ["not a phone", "x"]]
    path = write_delimited(tmp_path / "contacts.csv", rows)
    home = tmp_path / "home"
    cmd = import_cmd("batchcall", path, home)
    env = provider_env("batchcall", url)

    crashed = run(cmd, {**env, "CAMPAIGNS_FAILPOINT": failpoint})
    assert crashed.returncode == -9, crashed.stderr
    engine = create_engine(state_url(home))
    with engine.connect() as db:
        counts = [db.execute(text(f"SELECT count(*) FROM {table}")).scalar() for table in ("imports", "import_files", "chunks")]
        counts += [db.execute(text("SELECT coalesce(sum(rows), 0) FROM plan_segments WHERE kind = :kind"), {"kind": kind}).scalar()
                   for kind in ("contacts", "rejects", "duplicates")]  # fmt: skip
    engine.dispose()
    whole = [1, 1, 6, 40, 1, 1]  # 40 contacts in batches of 7, one reject, one duplicate
    assert counts == ([0] * 6 if failpoint.startswith("during") else whole), counts
    assert httpx.get(url + "/_sandbox/recipients").json() == []  # nothing was sent before the plan was whole
    assert list(home.glob(".planning-*")) != [] or failpoint == "after_planning"  # the killed run's spill

    result = run(cmd, env)
    assert result.returncode == 0, result.stderr
    summary = last_json(result)
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (40, 1, 1) or failpoint == "after_planning"
    assert list(home.glob(".planning-*")) == []  # the dead run's spill was swept
    assert_exactly_once(url, numbers)
