"""Run the CLI against a sandbox server on loopback and check the exactly-once property."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx

from tests.conftest import ROOT, write_delimited

FAST = {  # short waits so a test of many retries and reconciliations takes seconds
    "CAMPAIGNS_RETRY_BASE": "0.02",
    "CAMPAIGNS_RETRY_ATTEMPTS": "12",
    "CAMPAIGNS_SETTLE_SECONDS": "0.05",
    "CAMPAIGNS_TIMEOUT": "2",
}


def provider_env(dialect: str, url: str, *, key: str = "sandbox-key", secret: str = "sandbox-secret") -> dict[str, str]:
    """Environment that points the CLI's real provider client at a sandbox."""
    if dialect == "magpipe":
        return {**FAST, "MAGPIPE_API_KEY": key, "MAGPIPE_BASE_URL": url + "/functions/v1", "CAMPAIGNS_CALLER_ID": "+16045551234"}
    return {**FAST, "BATCHCALL_API_KEY": key, "BATCHCALL_API_SECRET": secret, "BATCHCALL_BASE_URL": url, "CAMPAIGNS_CALLER_ID": "+14157774444"}


def contacts_file(folder: Path, count: int = 30, start: int = 0, name: str = "contacts.csv") -> tuple[Path, list[str]]:
    numbers = [f"+1212555{n:04d}" for n in range(start, start + count)]
    rows = [["Phone", "First Name", "Account ID"]] + [[n, f"p{i}", f"AC{i}"] for i, n in enumerate(numbers)]
    return write_delimited(folder / name, rows), numbers


def import_cmd(dialect: str, path: Path, home: Path, campaign: str = "crash", batch_size: int = 7) -> list[str]:
    return [sys.executable, "-m", "pipelines", "import", str(path), "--campaign", campaign, "--home", str(home),
            "--provider", dialect, "--batch-size", str(batch_size), "--json"]  # fmt: skip


def run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a `python -m pipelines …` command line with these environment variables added (see tests/forkserver.py)."""
    import os

    from tests.conftest import campaigns

    assert cmd[:3] == [sys.executable, "-m", "pipelines"], cmd
    return campaigns(cmd[3:], {**os.environ, **env}, ROOT, timeout)


def run_until_done(cmd: list[str], env: dict[str, str], attempts: int = 8) -> list[int]:
    """Rerun as cron would until the import exits 0; returns the exit codes seen."""
    codes = []
    for _ in range(attempts):
        result = run(cmd, env)
        codes.append(result.returncode)
        if result.returncode == 0:
            return codes
        assert result.returncode in (4, -9), (result.returncode, result.stderr)
        assert "Traceback" not in result.stderr
    raise AssertionError(f"import never finished: exit codes {codes}; last stderr: {result.stderr}")


def assert_exactly_once(url: str, numbers: list[str]) -> list[dict]:
    """Every number is in exactly one started batch, dialled at most once; none missing."""
    rows = httpx.get(url + "/_sandbox/recipients", timeout=10).json()
    started = [r for r in rows if r["batch_status"] != "draft"]
    per_number = Counter(r["phone_number"] for r in started)
    assert set(per_number) == set(numbers), f"missing: {set(numbers) - set(per_number)}; extra: {set(per_number) - set(numbers)}"
    twice = {n: c for n, c in per_number.items() if c > 1}
    assert not twice, f"in more than one started batch: {twice}"
    assert all(r["dials"] <= 1 and r["runs"] <= 1 for r in rows), [r for r in rows if r["dials"] > 1 or r["runs"] > 1]
    # reconciliation adopts what an ambiguous create made instead of creating again: no stray drafts
    assert len(rows) == len(numbers), f"{len(rows) - len(numbers)} recipients in stray draft batches"
    return rows


def last_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def closed_new_york_window() -> tuple[int, datetime]:
    """A two-hour calling window in New York (the zone of contacts_file's +1212 numbers) that is closed now: its
    starting hour, and the moment it next opens."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    local_now = datetime.now(ZoneInfo("America/New_York"))
    start = (local_now + timedelta(hours=3)).hour
    start = start - 12 if start > 21 else start
    opens = local_now.replace(hour=start, minute=0, second=0, microsecond=0)
    return start, opens if opens > local_now else (opens + timedelta(days=1)).replace(hour=start)
