"""`campaigns import --hold` then `campaigns submit`, typed as a user would (no --home: the default state folder
in the working directory, the embedded sandbox as the provider), checked against the sandbox's own record."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pipelines.sandbox.state import SandboxStore
from tests.conftest import run_cli, write_delimited

pytestmark = pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL


def dials(home: Path) -> Counter:
    """How many times the embedded sandbox has each number in a batch that was started (its own state file)."""
    path = home / "sandbox.sqlite"
    if not path.exists():
        return Counter()
    store = SandboxStore(path, speed=1, seed=0)
    try:
        return Counter(r.phone_number for b in store.all_batches() if b.run for r in store.view(b).recipients)
    finally:
        store.close()


def sheet(folder: Path, name: str, first: int, count: int) -> Path:
    return write_delimited(folder / name, [["Name", "Phone"]] + [[f"P{i}", f"+1415555{i:04d}"] for i in range(first, first + count)])


def test_a_held_import_calls_nobody_until_submit(tmp_path):
    big = sheet(tmp_path, "big.csv", 0, 30)
    held = run_cli("import", str(big), "--campaign", "spring", "--hold", "--batch-size", "10", cwd=tmp_path)
    assert held.returncode == 0, held.stderr
    assert "held for review, nothing submitted" in held.stdout
    assert "campaigns submit --campaign spring" in held.stdout
    home = tmp_path / ".campaigns"
    assert dials(home) == Counter()  # nothing reached the provider

    # another file imported into the same campaign is submitted; the held plan stays held
    small = sheet(tmp_path, "small.csv", 100, 5)
    later = run_cli("import", str(small), "--campaign", "spring", "--json", cwd=tmp_path)
    assert later.returncode == 0, later.stderr
    assert [b["status"] for b in json.loads(later.stdout)["batches"]] == ["started"]
    assert json.loads(later.stdout)["held_batches"] == 3  # the user is told what still waits
    assert sorted(dials(home)) == [f"+1415555{i:04d}" for i in range(100, 105)]

    submitted = run_cli("submit", "--campaign", "spring", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    assert "started 3 of 3 batches" in submitted.stdout
    called = dials(home)
    assert len(called) == 35 and set(called.values()) == {1}  # everyone once, nobody twice

    again = run_cli("submit", "--campaign", "spring", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to submit" in again.stdout
    assert dials(home) == called


def test_submit_and_hold_mistakes_are_one_line_and_exit_2(tmp_path):
    contacts = sheet(tmp_path, "c.csv", 0, 3)
    both = run_cli("import", str(contacts), "--campaign", "c", "--hold", "--dry-run", cwd=tmp_path)
    assert both.returncode == 2 and "give one of them" in both.stderr and "Traceback" not in both.stderr
    nothing = run_cli("submit", "--campaign", "c", cwd=tmp_path)
    assert nothing.returncode == 2 and len(nothing.stderr.strip().splitlines()) == 1 and "nothing has been imported" in nothing.stderr
    empty = run_cli("publish", cwd=tmp_path)  # no report made of an empty home either
    assert empty.returncode == 2 and "nothing has been imported" in empty.stderr and not (tmp_path / ".campaigns").exists()
    assert run_cli("import", str(contacts), "--campaign", "c", "--hold", cwd=tmp_path).returncode == 0
    unknown = run_cli("submit", "--campaign", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "import its files first" in unknown.stderr
