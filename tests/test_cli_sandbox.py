"""`campaigns sandbox` as a real process: it prints what it accepts and serves both dialects."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from pipelines.sandbox.server import free_port
from tests.conftest import ROOT


def test_sandbox_command_serves_and_persists(tmp_path):
    port = free_port()
    state = tmp_path / "state.sqlite"
    args = [sys.executable, "-m", "pipelines", "sandbox", "--port", str(port), "--speed", "100", "--seed", "3",
            "--state", str(state), "--caller-id", "+16045551234"]  # fmt: skip
    process = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "CAMPAIGNS_SANDBOX_KEY": "k-from-env"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/_sandbox/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert httpx.post(url + "/functions/v1/batch-calls", json={"action": "list"}, headers={"Authorization": "Bearer sandbox-key"}).status_code == 401
        headers = {"Authorization": "Bearer k-from-env"}
        created = httpx.post(
            url + "/functions/v1/batch-calls", headers=headers,
            json={"action": "create", "name": "cli", "caller_id": "+16045551234", "recipients": [{"phone_number": "+14155550100"}]},
        )  # fmt: skip
        assert created.status_code == 200
    finally:
        process.terminate()
        _, banner = process.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}" in banner and "nobody is called" in banner
    assert "k-from-env" not in banner and "(from CAMPAIGNS_SANDBOX_KEY)" in banner
    assert state.exists()


def test_bad_sandbox_flags_are_one_line():
    from tests.conftest import run_cli

    result = run_cli("sandbox", "--faults", "429=2")
    assert result.returncode == 2 and "a probability is between 0 and 1" in result.stderr and "Traceback" not in result.stderr
