"""What a person sees: on a terminal (a pseudo-terminal here) bars that clear and a summary; piped, one plain line per
item, never wrapped or cut, full paths, plurals that agree."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

from tests.conftest import ROOT, run_cli
from tests.submit_helpers import closed_new_york_window, contacts_file

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def on_a_terminal(*args: str, columns: int = 160) -> tuple[int, str]:
    """Run `campaigns ARGS` with stdout and stderr on a pseudo-terminal `columns` wide; (exit code, what it drew)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("CAMPAIGNS_DEBUG", "NO_COLOR", "COLUMNS", "LINES")} | {"TERM": "xterm-256color"}
    process = subprocess.Popen([sys.executable, "-m", "pipelines", *args], stdin=follower, stdout=follower, stderr=follower,
                               cwd=ROOT, env=env, close_fds=True)  # fmt: skip
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        assert ready, "the command drew nothing for two minutes"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the command is done
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    return process.wait(timeout=60), drawn.decode("utf-8", "replace")


def test_on_a_terminal_submission_draws_a_bar_and_the_summary_keeps_whole_lines(tmp_path):
    path, numbers = contacts_file(tmp_path, count=12)
    code, drawn = on_a_terminal("import", str(path), "--campaign", "tty", "--home", str(tmp_path / "home"), "--batch-size", "3")
    assert code == 0, drawn
    assert "\x1b[" in drawn and "━" in drawn  # rich drew (and moved) a bar
    assert not re.search(r"^started \d+/", ANSI.sub("", drawn), re.M)  # the bar, not a line per batch
    text = ANSI.sub("", drawn)
    assert "Campaign tty (submitted)" in text and str(path) in text  # the whole path, not "…/contac…"
    assert re.search(r"Batches: 4 \(sizes 3, 3, 3, 3\)", text)
    code, drawn = on_a_terminal("submit", "--campaign", "tty", "--home", str(tmp_path / "home"))
    assert code == 0 and "0/0" not in drawn and "nothing to submit" in ANSI.sub("", drawn), drawn  # no empty bar


def test_piped_every_line_is_plain_whole_and_agrees_in_number(tmp_path):
    path, numbers = contacts_file(tmp_path, count=7)
    home = tmp_path / "home"
    result = run_cli("import", str(path), "--campaign", "pipe", "--home", str(home), "--batch-size", "6")
    assert result.returncode == 0, result.stderr
    for line in (result.stdout + result.stderr).splitlines():
        assert "\x1b" not in line and "…" not in line[:-1] and not line.startswith(" " * 30), line
    assert str(path) in result.stdout
    assert re.search(r"^started \d/2: \w+ \(1 contact\) as ", result.stderr, re.M)  # one contact, not "1 contacts"
    assert re.search(r"^started \d/2: \w+ \(6 contacts\) as ", result.stderr, re.M)
    retry = run_cli("retry", "--campaign", "pipe", "--home", str(home), "--dry-run")
    assert retry.returncode == 0 and "{" not in retry.stdout and "'" not in retry.stdout, retry.stdout  # no Python reprs
    assert run_cli("suppress", "add", "+14155550100", "--home", str(home)).returncode == 0
    listed = run_cli("suppress", "list", "--home", str(home))
    header, row = listed.stdout.splitlines()
    assert listed.returncode == 0 and header.split() == ["number", "added", "(UTC)", "source"] and row.startswith("+14155550100 ")


def test_on_a_terminal_a_batch_that_waits_for_its_hours_still_says_when(tmp_path):
    start, _ = closed_new_york_window()
    path, _ = contacts_file(tmp_path, count=2)  # +1212…: New York
    code, drawn = on_a_terminal("import", str(path), "--campaign", "later", "--home", str(tmp_path / "home"),
                                "--window", f"{start:02d}:00-{start + 2:02d}:00", "--allow-any-hour")  # fmt: skip
    assert code == 0, drawn
    assert re.search(rf"started 1/1: \w+ \(2 contacts\) as \S+, dialling from .* UTC \(.* {start:02d}:00 America/New_York\)",
                     ANSI.sub("", drawn)), drawn  # fmt: skip


def test_batch_sizes_are_all_named_or_counted_in_words():
    from pipelines.console import _sizes

    assert _sizes([5, 4, 2, 2, *[1] * 14]) == "sizes 14 × 1, 2 × 2, 1 × 5, 1 × 4"  # four sizes: every one shown
    assert _sizes([*[1000] * 8, 7, 6, 5, 4, 3]) == "sizes 8 × 1000, 1 × 7, 1 × 6 and 3 batches of 3 other sizes"
    assert _sizes([1000, 412]) == "sizes 1000, 412"
