"""Shared helpers: write real files into temp folders, run the CLI as a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The sandbox's simulated people answer at any hour, and most tests must not depend on the
# time of day they run at: every CLI run in the suite calls around the clock unless a test
# sets its own hours (tests/test_hours.py does, with CAMPAIGNS_WINDOW="" for the default).
os.environ.setdefault("CAMPAIGNS_WINDOW", "00:00-24:00")
os.environ.setdefault("CAMPAIGNS_ALLOW_ANY_HOUR", "1")
HEADER = ["First Name", "Phone", "Account ID"]


def write_delimited(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    """Write rows as a delimited text file in the given encoding."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120):
    """Run `campaigns ARGS` in a subprocess, as cron would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CAMPAIGNS_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def run_json(*args: str, **kwargs) -> dict:
    """Run the CLI with --json and return the one object it printed."""
    result = run_cli(*args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def tmp_home(tmp_path: Path) -> Path:
    """A fresh state folder per test."""
    home = tmp_path / "home"
    home.mkdir()
    return home
