"""`campaigns watch` as cron runs it: a subprocess, an inbox on disk, the sandbox over loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import httpx
import pytest

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.conftest import ROOT, state_url, wait_for_lock
from tests.submit_helpers import assert_exactly_once, contacts_file, provider_env, run



@pytest.fixture(scope="module")
def sandbox():
    with running(SandboxConfig(speed=200, seed=5)) as handle:
        yield handle


@pytest.fixture
def setup(tmp_path, sandbox):
    httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": ""})
    httpx.post(sandbox.url + "/_sandbox/reset")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return inbox, tmp_path / "home", provider_env("batchcall", sandbox.url), sandbox.url


def watch(inbox, home, env, *extra, settle="0.3"):
    cmd = [sys.executable, "-m", "pipelines", "watch", str(inbox), "--campaign", "nightly", "--once", "--settle", settle,
           "--home", str(home), "--provider", "batchcall", "--batch-size", "10", *extra]  # fmt: skip
    return run(cmd, env)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_same_file_twice_and_a_renamed_copy_are_imported_once(tmp_path, setup):
    inbox, home, env, url = setup
    source, numbers = contacts_file(tmp_path, count=15)
    shutil.copy(source, inbox / "export.csv")
    first = watch(inbox, home, env)
    assert first.returncode == 0, first.stderr
    assert (inbox / "processed" / "export.csv").exists() and not (inbox / "export.csv").exists()
    calls = httpx.get(url + "/_sandbox/recipients").json()
    shutil.copy(source, inbox / "export.csv")  # dropped again, same name
    shutil.copy(source, inbox / "export (1).csv")  # and renamed
    again = watch(inbox, home, env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("file_already_imported") == 2 and "file_imported" not in again.stderr
    assert sorted(p.name for p in (inbox / "processed").iterdir())[0].startswith("export")
    assert len(list((inbox / "processed").iterdir())) == 3 and not list(inbox.glob("*.csv"))
    assert httpx.get(url + "/_sandbox/recipients").json() == calls or len(httpx.get(url + "/_sandbox/recipients").json()) == len(calls)
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_a_garbage_file_fails_alone_with_a_sidecar(tmp_path, setup):
    inbox, home, env, url = setup
    (inbox / "broken.csv").write_bytes(bytes(range(256)) * 4)
    (inbox / "no-phone.csv").write_text("Name,Email\nann,a@x\n")
    source, numbers = contacts_file(tmp_path, count=5)
    shutil.copy(source, inbox / "good.csv")
    result = watch(inbox, home, env)
    assert result.returncode == 3
    assert (inbox / "processed" / "good.csv").exists()
    assert "binary content" in (inbox / "failed" / "broken.csv.why.txt").read_text()
    assert "no phone column" in (inbox / "failed" / "no-phone.csv.why.txt").read_text()
    assert "Traceback" not in result.stderr
    assert_exactly_once(url, numbers)


# on SQLite; on PostgreSQL, with a home per host, in tests/test_several_hosts.py
def test_overlapping_runs_exit_6_at_once(tmp_path, setup):
    inbox, home, env, url = setup
    source, numbers = contacts_file(tmp_path, count=5)
    shutil.copy(source, inbox / "a.csv")
    cmd = [sys.executable, "-m", "pipelines", "watch", str(inbox), "--campaign", "nightly", "--once", "--settle", "8",
           "--home", str(home), "--provider", "batchcall"]  # fmt: skip
    holder = subprocess.Popen(cmd, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_for_lock(state_url(home), "nightly", holder)
        second = watch(inbox, home, env)
        # at once: it ended while the first run still held the lock (waiting out its 8 s settle), not after it
        assert second.returncode == 6 and "is busy" in second.stderr and holder.poll() is None
        assert holder.wait(timeout=60) == 0, holder.stderr.read()
    finally:  # a failed assertion must not leave the first run submitting into the next test's sandbox
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_a_file_still_being_written_waits_for_the_next_run(tmp_path, setup):
    inbox, home, env, url = setup
    target = inbox / "growing.csv"
    numbers: list[str] = []
    target.write_text("Phone,Name\n")
    done = threading.Event()

    def writer():  # keeps appending until the first watch run is over, however long that takes
        while not done.is_set() and len(numbers) < 5000:
            number = f"+1212555{len(numbers):04d}"
            with target.open("a") as handle:
                handle.write(f"{number},p{len(numbers)}\n")
            numbers.append(number)
            time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.3)
    during = watch(inbox, home, env, settle="0.5")
    done.set()
    thread.join()
    assert during.returncode == 0 and "file_still_changing" in during.stderr and target.exists()
    after = watch(inbox, home, env, "--log-format", "json", settle="0.5")
    assert after.returncode == 0, after.stderr
    events = [json.loads(line) for line in after.stderr.splitlines()]
    imported = next(e for e in events if e["event"] == "file_imported")
    assert {"time", "level", "event", "campaign", "file", "counts"} <= imported.keys()
    assert imported["counts"]["rows_read"] == len(numbers) and imported["counts"]["accepted"] == len(numbers)
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_killed_run_leaves_a_lock_that_is_recovered_and_pending_batches_resume(tmp_path, setup):
    inbox, home, env, url = setup
    source, numbers = contacts_file(tmp_path, count=30)
    shutil.copy(source, inbox / "a.csv")
    killed = watch(inbox, home, {**env, "CAMPAIGNS_FAILPOINT": "after_create:2"})
    assert killed.returncode == -9
    assert (inbox / "a.csv").exists()  # killed before the file was moved: its contents are in the ledger
    rerun = watch(inbox, home, env)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed" in rerun.stderr and "file_already_imported" in rerun.stderr
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_unreachable_provider_exits_5_and_the_next_cycle_resumes(tmp_path, setup):
    inbox, home, env, url = setup
    source, numbers = contacts_file(tmp_path, count=12)
    shutil.copy(source, inbox / "a.csv")
    dead = provider_env("batchcall", "http://127.0.0.1:9") | {"CAMPAIGNS_RETRY_ATTEMPTS": "2"}
    down = watch(inbox, home, dead)
    assert down.returncode == 5 and (inbox / "processed" / "a.csv").exists()
    up = watch(inbox, home, env)
    assert up.returncode == 0 and "resumed" in up.stderr
    assert_exactly_once(url, numbers)


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_campaigns_toml_maps_inboxes_to_campaigns(tmp_path, setup):
    _, home, env, url = setup
    uk, us = tmp_path / "uk", tmp_path / "us"
    uk.mkdir(), us.mkdir()
    (uk / "uk-leads.csv").write_text("Mobile\n07911 123456\n07911 123457\n")
    (uk / "ignored.csv").write_text("Mobile\n07911 123458\n")
    source, _ = contacts_file(tmp_path, count=3)
    shutil.copy(source, us / "us.csv")
    (tmp_path / "campaigns.toml").write_text(
        f'[[watch]]\ninbox = "{uk}"\ncampaign = "uk"\npattern = "uk-*.csv"\nregion = "GB"\n\n'
        f'[[watch]]\ninbox = "{us}"\ncampaign = "us"\n'
    )
    cmd = [sys.executable, "-m", "pipelines", "watch", "--once", "--settle", "0.2", "--home", str(home), "--provider", "batchcall",
           "--config", str(tmp_path / "campaigns.toml")]  # fmt: skip
    result = run(cmd, env)
    assert result.returncode == 0, result.stderr
    assert (uk / "ignored.csv").exists() and (uk / "processed" / "uk-leads.csv").exists() and (us / "processed" / "us.csv").exists()
    dialled = {r["phone_number"] for r in httpx.get(url + "/_sandbox/recipients").json()}
    assert {"+447911123456", "+447911123457"} <= dialled and "+447911123458" not in dialled


def _corrupt_workbook(path, tmp_path):
    """A real workbook whose sheet XML is cut short: the zip opens, the sheet does not parse."""
    import zipfile

    from openpyxl import Workbook

    good = tmp_path / "good.xlsx"
    workbook = Workbook()
    workbook.active.append(["Phone"])
    workbook.active.append(["+12125550100"])
    workbook.save(good)
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, data[: len(data) // 2] if item.filename.endswith("sheet1.xml") else data)
    return path


def _zip_bomb(path, expanded_mb: int):
    """A workbook-shaped zip whose sheet XML inflates to `expanded_mb` MB from a few kB."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as target:
        target.writestr("[Content_Types].xml", "<Types/>")
        target.writestr("xl/workbook.xml", "<workbook/>")
        target.writestr("xl/worksheets/sheet1.xml", "<sheetData>" + " " * (expanded_mb << 20) + "</sheetData>")
    return path


@pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL
def test_bad_workbooks_links_and_empty_files_fail_alone_and_quote_nothing(tmp_path, setup):
    inbox, home, env, url = setup
    secret_text = "TOP-SECRET-LINE do not print"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secrets.txt").write_text(secret_text + "\n")
    linked_csv, linked_numbers = contacts_file(outside, count=3, start=900, name="linked.csv")
    os.symlink(outside / "secrets.txt", inbox / "notes.csv")
    os.symlink(linked_csv, inbox / "linked.csv")
    _corrupt_workbook(inbox / "truncated.xlsx", tmp_path)
    _zip_bomb(inbox / "bomb.xlsx", expanded_mb=8)
    (inbox / "empty.csv").write_bytes(b"")
    source, numbers = contacts_file(tmp_path, count=5)
    shutil.copy(source, inbox / "good.csv")
    result = watch(inbox, home, {**env, "CAMPAIGNS_MAX_WORKBOOK_MB": "2"})
    assert result.returncode == 3, result.stderr
    assert (inbox / "processed" / "good.csv").exists()
    failed = {p.name for p in (inbox / "failed").iterdir() if not p.name.endswith(".why.txt")}
    assert failed == {"notes.csv", "linked.csv", "truncated.xlsx", "bomb.xlsx", "empty.csv"}
    why = {name: (inbox / "failed" / f"{name}.why.txt").read_text() for name in failed}
    assert "reason: outside_inbox" in why["notes.csv"] and "reason: outside_inbox" in why["linked.csv"]
    assert "reason: unreadable" in why["truncated.xlsx"] and "reason: too_large" in why["bomb.xlsx"]
    assert "reason: empty" in why["empty.csv"]
    assert (inbox / "failed" / "notes.csv").is_symlink()  # the link was moved, never followed
    everything = result.stderr + result.stdout + "".join(why.values())
    assert secret_text not in everything and "Traceback" not in everything and "internal error" not in everything
    assert_exactly_once(url, numbers)  # the linked CSV's people were never called
    again = watch(inbox, home, env)  # nothing is left to block the next run
    assert again.returncode == 0, again.stderr
