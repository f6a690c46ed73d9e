"""An emergency stop holds: whatever step of `cancel` is killed or loses its answer, nobody is dialled again.

The import is killed right after its first draft is recorded (so the ledger holds a
draft that was never started, and planned chunks behind it), then `cancel` is killed at
each of its own steps. Every later command — import, watch, retry — must leave every
contact of the campaign undialled: the sandbox's own record is the judge.
"""

from __future__ import annotations

import sys

import httpx
import pytest

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.submit_helpers import contacts_file, import_cmd, provider_env, run

pytestmark = pytest.mark.usefixtures("store")  # on SQLite and on PostgreSQL

STEPS = ("after_mark_cancelling", "after_cancel_request", "after_record_cancelled")


def cli(home, dialect: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines", *args, "--home", str(home), "--provider", dialect]


def follow_ups(tmp_path, home, dialect: str) -> dict[str, list[str]]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return {
        "import": import_cmd(dialect, tmp_path / "contacts.csv", home, campaign="stop", batch_size=4),
        "watch": cli(home, dialect, "watch", str(inbox), "--campaign", "stop", "--once", "--settle", "0"),
        # default statuses: `--statuses skipped` is how a user asks to call cancelled people after all
        "retry": cli(home, dialect, "retry", "--campaign", "stop", "--min-gap", "0"),
    }


def assert_nobody_dialled(url: str, numbers: list[str]) -> None:
    rows = [r for r in httpx.get(url + "/_sandbox/recipients", timeout=10).json() if r["phone_number"] in numbers]
    dialled = [r for r in rows if r["dials"] or r["batch_status"] not in ("draft", "cancelled")]
    assert not dialled, dialled


@pytest.fixture(scope="module")
def sandbox():
    with running(SandboxConfig(speed=400, seed=3)) as handle:
        yield handle


# Each step of cancel, killed, then each later command on what it left. The last step has
# already recorded the result: one follow-up is enough to show it holds. The dialects
# alternate over the cases, so each step before the last and each follow-up meets both
# (pairwise: 7 runs instead of 14; the Submitter's own states are covered in-process by
# tests/test_submitter.py).
CASES = [(step, name) for step in STEPS[:2] for name in ("import", "watch", "retry")] + [(STEPS[2], "import")]
CASES = [(step, name, ("magpipe", "batchcall")[i % 2]) for i, (step, name) in enumerate(CASES)]


@pytest.mark.parametrize("step,follow_up,dialect", CASES)
def test_cancel_killed_at_each_step_then_later_commands_dial_nobody(tmp_path, sandbox, dialect, step, follow_up):
    httpx.post(sandbox.url + "/_sandbox/reset")
    _, numbers = contacts_file(tmp_path, count=10)
    home = tmp_path / "home"
    env = provider_env(dialect, sandbox.url)
    commands = follow_ups(tmp_path, home, dialect)
    assert run(commands["import"], {**env, "CAMPAIGNS_FAILPOINT": "after_record_draft"}).returncode == -9
    killed = run(cli(home, dialect, "cancel", "--campaign", "stop"), {**env, "CAMPAIGNS_FAILPOINT": step})
    assert killed.returncode == -9, killed.stderr
    after = run(commands[follow_up], env)
    assert after.returncode in (0, 2), after.stderr  # retry of a campaign nobody was called in may find nothing to do
    assert "Traceback" not in after.stderr
    assert_nobody_dialled(sandbox.url, numbers)
    finished = run(cli(home, dialect, "cancel", "--campaign", "stop", "--json"), env)
    assert finished.returncode == 0, finished.stderr
    assert_nobody_dialled(sandbox.url, numbers)


@pytest.mark.parametrize("dialect", ["magpipe", "batchcall"])
def test_a_cancel_whose_answer_is_lost_is_never_undone_by_import_watch_or_retry(tmp_path, sandbox, dialect):
    httpx.post(sandbox.url + "/_sandbox/reset")
    _, numbers = contacts_file(tmp_path, count=10)
    home = tmp_path / "home"
    env = provider_env(dialect, sandbox.url) | {"CAMPAIGNS_RETRY_ATTEMPTS": "2"}
    commands = follow_ups(tmp_path, home, dialect)
    assert run(commands["import"], {**env, "CAMPAIGNS_FAILPOINT": "after_record_draft"}).returncode == -9
    httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": "reset=1"})  # every change is made, every answer lost
    try:
        lost = run(cli(home, dialect, "cancel", "--campaign", "stop"), env)
    finally:
        httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": ""})
    assert lost.returncode in (0, 4, 5), lost.stderr
    assert "Traceback" not in lost.stderr
    for name in ("import", "watch", "retry"):
        result = run(commands[name], env)
        assert "Traceback" not in result.stderr, result.stderr
        assert_nobody_dialled(sandbox.url, numbers)
