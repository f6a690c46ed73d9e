"""Usage mistakes are the user's, said as such: exit 2 with click's own message, never "internal error"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli

SAMPLE = str(ROOT / "data" / "sample_contacts.csv")

MISTAKES = [
    ([], "Usage: campaigns"),
    (["import", SAMPLE], "Missing option '--campaign'"),
    (["import"], "Missing argument"),
    (["import", SAMPLE, "--campaign", "c", "--batch-size", "abc"], "--batch-size must be a whole number, not 'abc'"),
    (["import", SAMPLE, "--campaign", "c", "--frobnicate"], "No such option '--frobnicate'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["suppress", "add"], "Missing argument"),
    (["sync", "--wait", "soon"], "Invalid value for '--wait'"),
    (["report", "--format", "xml"], "Invalid value for '--format'"),
    (["import", SAMPLE, "--campaign", "c", "--region", "XX"], "unknown region 'XX'"),
]


@pytest.mark.parametrize("args,message", MISTAKES)
def test_a_usage_mistake_exits_2_with_a_usage_message(tmp_path, args, message):
    result = run_cli(*args, "--home", str(tmp_path), cwd=tmp_path) if args else run_cli(cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_with_json_an_error_is_also_one_json_object_on_stdout(tmp_path):
    usage = run_cli("import", SAMPLE, "--campaign", "c", "--nope", "--json", cwd=tmp_path)
    error = json.loads(usage.stdout)
    assert usage.returncode == 2 and error["exit_code"] == 2 and error["error"].startswith("No such option '--nope'")
    missing = run_cli("import", str(tmp_path / "missing.csv"), "--campaign", "c", "--dry-run", "--json", cwd=tmp_path)
    error = json.loads(missing.stdout)
    assert missing.returncode == 3 and error["exit_code"] == 3 and "file not found" in error["error"]


def _without_root_file_access() -> None:
    """In the child: drop the two capabilities that let root read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
    so file permissions apply to it as to any user."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # out of the bounding set too, or exec hands root its full set back
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl")
    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    mask = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def test_a_file_the_user_cannot_read_exits_3(tmp_path):
    """Permission denied is bad input (exit 3), not a bug."""
    locked = tmp_path / "locked.csv"
    locked.write_text("Phone\n+12125550100\n")
    locked.chmod(0)
    command = [sys.executable, "-m", "pipelines", "import", str(locked), "--campaign", "c", "--dry-run", "--home", str(tmp_path / "h")]
    for extra in ([], ["--json"]):
        result = subprocess.run(command + extra, preexec_fn=_without_root_file_access if os.geteuid() == 0 else None,
                                cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.returncode == 3, result.stderr
        assert "Permission denied" in result.stderr and "internal error" not in result.stderr


def test_the_readme_documents_every_setting():
    from pipelines.settings import SETTINGS

    readme = (ROOT / "README.md").read_text()
    undocumented = [name for setting in SETTINGS for name in (setting.flag, setting.env, setting.toml and f"`{setting.toml}`")
                    if name and name not in readme]  # fmt: skip
    assert undocumented == []
