"""Several importer hosts on one PostgreSQL ledger (issue 22): each "host" is a command with its own home folder,
all sharing one `--state` database and one provider (the sandbox over loopback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.conftest import ROOT, lock_held, wait_for_lock
from tests.submit_helpers import assert_exactly_once, contacts_file, provider_env, run


@pytest.fixture(scope="module")
def sandbox():
    with running(SandboxConfig(speed=200, seed=23)) as handle:
        yield handle


@pytest.fixture
def shared(sandbox, monkeypatch):
    """A fresh shared ledger (CAMPAIGNS_STATE for every command) and a clean sandbox; the provider's environment."""
    from tests.pg import cluster

    url = cluster().create_database()
    monkeypatch.setenv("CAMPAIGNS_STATE", url)
    httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": ""})
    httpx.post(sandbox.url + "/_sandbox/reset")
    return url, provider_env("batchcall", sandbox.url), sandbox.url


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines", *args]


def test_a_second_host_on_the_same_campaign_exits_6_at_once(tmp_path, shared):
    url, env, sandbox_url = shared
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source, numbers = contacts_file(tmp_path, count=12)
    shutil.copy(source, inbox / "a.csv")
    holder = subprocess.Popen(_command("watch", str(inbox), "--campaign", "shared", "--once", "--settle", "8", "--home",
                                       str(tmp_path / "host-a"), "--provider", "batchcall"),
                              env={**os.environ, **env}, stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        wait_for_lock(url, "shared", holder)
        other, _ = contacts_file(tmp_path, count=5, start=100, name="b.csv")
        second = run(_command("import", str(other), "--campaign", "shared", "--home", str(tmp_path / "host-b"),
                              "--provider", "batchcall"), env)  # fmt: skip
        assert second.returncode == 6 and "is busy" in second.stderr and holder.poll() is None, second.stderr
        assert holder.wait(timeout=60) == 0, holder.stderr.read()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert_exactly_once(sandbox_url, numbers)  # host B sent nothing


def test_different_campaigns_proceed_in_parallel_from_two_hosts(tmp_path, shared):
    _, env, sandbox_url = shared
    first, numbers_a = contacts_file(tmp_path, count=30, name="a.csv")
    second, numbers_b = contacts_file(tmp_path, count=30, start=200, name="b.csv")
    processes = [subprocess.Popen(_command("import", str(path), "--campaign", campaign, "--home", str(tmp_path / home),
                                           "--provider", "batchcall", "--batch-size", "5"),
                                  env={**os.environ, **env}, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                 for path, campaign, home in ((first, "east", "host-a"), (second, "west", "host-b"))]  # fmt: skip
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read()
    assert_exactly_once(sandbox_url, numbers_a + numbers_b)


def test_two_hosts_watching_one_inbox_import_each_file_once(tmp_path, shared):
    url, env, sandbox_url = shared
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    numbers = []
    for index in range(3):
        path, some = contacts_file(tmp_path, count=8, start=index * 10, name=f"f{index}.csv")
        shutil.copy(path, inbox / path.name)
        numbers += some
    watchers = [subprocess.Popen(_command("watch", str(inbox), "--campaign", "nightly", "--once", "--settle", "0.3", "--home",
                                          str(tmp_path / home), "--provider", "batchcall"),
                                 env={**os.environ, **env}, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                for home in ("host-a", "host-b")]  # fmt: skip
    codes = sorted(watcher.wait(timeout=120) for watcher in watchers)
    assert codes in ([0, 0], [0, 6]), [w.stderr.read() for w in watchers]  # the later one waits its turn or finds all done
    for _ in range(2):  # whatever the first cycle left, the next runs finish it, as cron would
        again = run(_command("watch", str(inbox), "--campaign", "nightly", "--once", "--settle", "0.3", "--home",
                             str(tmp_path / "host-b"), "--provider", "batchcall"), env)  # fmt: skip
        assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["f0.csv", "f1.csv", "f2.csv"]
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM imports WHERE campaign = 'nightly'")).scalar() == 3
    engine.dispose()
    assert_exactly_once(sandbox_url, numbers)


def test_a_host_killed_mid_submission_loses_its_lock_when_its_lease_lapses_and_another_resumes(tmp_path, shared):
    """Host A is SIGKILLed after creating its second batch; its lock stays, judged by its lease from host B (a pid
    means nothing across machines): held while the lease runs, taken over once it has lapsed; B then submits what
    A left, and nobody is called twice."""
    url, env, sandbox_url = shared
    path, numbers = contacts_file(tmp_path, count=30)
    a = {**env, "CAMPAIGNS_HOST": "host-a", "CAMPAIGNS_FAILPOINT": "after_create:2"}
    crashed = run(_command("import", str(path), "--campaign", "lease", "--home", str(tmp_path / "host-a"), "--provider",
                           "batchcall", "--batch-size", "7"), a)  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr
    assert lock_held(url, "lease")
    b = [*_command("import", str(path), "--campaign", "lease", "--home", str(tmp_path / "host-b"), "--provider", "batchcall",
                   "--batch-size", "7")]  # fmt: skip
    early = run(b, {**env, "CAMPAIGNS_HOST": "host-b", "CAMPAIGNS_LOCK_LEASE": "600"})
    assert early.returncode == 6 and "host-a" in early.stderr, early.stderr  # A's lease still runs
    time.sleep(1.5)
    later = run(b, {**env, "CAMPAIGNS_HOST": "host-b", "CAMPAIGNS_LOCK_LEASE": "1"})  # lapsed: B takes over and resumes
    assert later.returncode == 0, later.stderr
    assert not lock_held(url, "lease")
    assert_exactly_once(sandbox_url, numbers)


def test_a_run_longer_than_its_lease_keeps_its_lock_by_heartbeat(tmp_path, shared):
    url, env, sandbox_url = shared
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source, numbers = contacts_file(tmp_path, count=5)
    shutil.copy(source, inbox / "a.csv")
    lease = {"CAMPAIGNS_LOCK_LEASE": "2"}  # beats every 0.2 s
    holder = subprocess.Popen(_command("watch", str(inbox), "--campaign", "beat", "--once", "--settle", "6", "--home",
                                       str(tmp_path / "host-a"), "--provider", "batchcall"),
                              env={**os.environ, **env, **lease, "CAMPAIGNS_HOST": "host-a"}, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT)  # fmt: skip
    try:
        wait_for_lock(url, "beat", holder)
        time.sleep(3)  # longer than the lease: only the heartbeat keeps it
        other = run(_command("watch", str(inbox), "--campaign", "beat", "--once", "--home", str(tmp_path / "host-b"),
                             "--provider", "batchcall"), {**env, **lease, "CAMPAIGNS_HOST": "host-b"})  # fmt: skip
        assert other.returncode == 6 or holder.poll() is not None, other.stderr  # (unless A is already done: then 0)
        assert holder.wait(timeout=60) == 0, holder.stderr.read()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert_exactly_once(sandbox_url, numbers)


def test_ledger_urls_that_cannot_work_are_one_line_and_exit_2(tmp_path):
    """A URL of another spelling, a port that is no number, a server that is not there: one line, exit 2, the password
    masked; `report` still shows the DuckDB file it has."""
    for url, said in (("postgres://user:s3cret@localhost/db", "postgresql+psycopg://"),
                      ("postgresql+psycopg://user:s3cret@localhost:notaport/db", "postgresql+psycopg://"),
                      ("postgresql+psycopg://user:s3cret@127.0.0.1:1/db", "connection")):  # fmt: skip
        result = run(_command("sync", "--state", url, "--home", str(tmp_path / "home")), {})
        assert result.returncode == 2 and said in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "s3cret" not in result.stderr
