"""Shared helpers: write real files into temp folders, run the CLI as a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The sandbox's simulated people answer at any hour, and most tests must not depend on the
# time of day they run at: every CLI run in the suite calls around the clock unless a test
# sets its own hours (tests/test_hours.py does, with CAMPAIGNS_WINDOW="" for the default),
# and without the shipped state rules, whose hours would hold a Florida or Oklahoma number
# until the next morning (tests/test_state_rules.py sets CAMPAIGNS_RULES="" for them).
os.environ.setdefault("CAMPAIGNS_WINDOW", "00:00-24:00")
os.environ.setdefault("CAMPAIGNS_ALLOW_ANY_HOUR", "1")
os.environ.setdefault("CAMPAIGNS_RULES", "none")
HEADER = ["First Name", "Phone", "Account ID"]


def write_delimited(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    """Write rows as a delimited text file in the given encoding."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120):
    """Run `campaigns ARGS` in a subprocess, as cron would (a forked child of tests/forkserver.py)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CAMPAIGNS_DEBUG", None)
    return campaigns(list(args), full_env, cwd or ROOT, timeout)


class _ForkServer:
    """This test process's tests/forkserver.py: started on first use, stopped at exit."""

    process: subprocess.Popen | None = None
    path: str = ""

    @classmethod
    def address(cls) -> str:
        if cls.process is None or cls.process.poll() is not None:
            import atexit
            import tempfile

            cls.path = os.path.join(tempfile.mkdtemp(prefix="campaigns-fork-"), "socket")
            cls.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "forkserver.py"), cls.path],
                                           stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
            assert cls.process.stdout.readline() == b"ready\n", "the fork server did not start"
            atexit.register(cls.process.kill)
        return cls.path


def campaigns(args: list[str], env: dict[str, str], cwd: Path | str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m pipelines ARGS` as a child process with this environment and working directory, stdout and stderr
    captured as text; killed after `timeout` seconds (subprocess.TimeoutExpired), -N when a signal N ended it."""
    import selectors
    import signal
    import socket

    stdin = os.open(os.devnull, os.O_RDONLY)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(_ForkServer.address())
        request = json.dumps({"args": args, "env": env, "cwd": str(cwd)}).encode()
        socket.send_fds(connection, [request], [stdin, out_write, err_write])
    finally:
        for fd in (stdin, out_write, err_write):
            os.close(fd)
    control = connection.fileno()  # the server's two lines: the command's pid, then its exit code
    chunks = {out_read: [], err_read: [], control: []}
    selector = selectors.DefaultSelector()
    for fd in chunks:
        selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while selector.get_map():
            events = selector.select(max(0.0, deadline - time.monotonic()))
            if not events:
                pid = b"".join(chunks[control]).split(b"\n")[0]
                if pid:
                    os.kill(int(pid), signal.SIGKILL)
                raise subprocess.TimeoutExpired(["campaigns", *args], timeout)
            for key, _ in events:
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
    finally:
        selector.close()
        os.close(out_read)
        os.close(err_read)
        connection.close()
    _, code = b"".join(chunks[control]).decode().split()
    out, err = (b"".join(chunks[fd]).decode("utf-8", "replace") for fd in (out_read, err_read))
    return subprocess.CompletedProcess([sys.executable, "-m", "pipelines", *args], int(code), out, err)


def run_json(*args: str, **kwargs) -> dict:
    """Run the CLI with --json and return the one object it printed."""
    result = run_cli(*args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, monkeypatch) -> str:
    """Run the test once on each ledger store: SQLite in the home folder, and a fresh database of a real PostgreSQL
    server (tests/pg.py) given to every command as CAMPAIGNS_STATE, as several hosts would share it."""
    if request.param == "postgresql":
        from tests.pg import cluster

        monkeypatch.setenv("CAMPAIGNS_STATE", cluster().create_database())
    return request.param


def state_url(home: Path) -> str:
    """The ledger the commands of this test use: the store's database, or the home folder's SQLite file."""
    return os.environ.get("CAMPAIGNS_STATE") or f"sqlite:///{home / 'ledger.sqlite'}"


def lock_held(url: str, campaign: str) -> bool:
    """Does some run hold the campaign's lock in the ledger at `url` (False while the ledger is not there yet)?"""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return db.execute(text("SELECT count(*) FROM locks WHERE campaign = :c"), {"c": campaign}).scalar() == 1
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def wait_for_lock(url: str, campaign: str, holder: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until the `holder` process holds the campaign's lock, however slow the machine."""
    deadline = time.monotonic() + timeout
    while not lock_held(url, campaign):
        assert time.monotonic() < deadline and holder.poll() is None, "the first run never took the lock"
        time.sleep(0.05)


@pytest.fixture
def tmp_home(tmp_path: Path) -> Path:
    """A fresh state folder per test."""
    home = tmp_path / "home"
    home.mkdir()
    return home
