"""`campaigns report --html`: a self-contained page, rendered by a real browser with the network cut off.

Headless Chromium (Debian's `chromium`, which `make test` installs when it is missing) loads the page from disk,
with every request sent to a closed proxy port, and its DOM after the scripts ran is read back: every chart must
have drawn marks, and nothing may have failed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import run_cli
from tests.test_warehouse import SAMPLES

CHARTS = {"funnel", "progress", "status", "timezone", "hour", "attempts", "rejects"}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    home = tmp_path_factory.mktemp("html") / "home"
    assert run_cli("import", *SAMPLES, "--campaign", "demo", "--home", str(home)).returncode == 0
    assert run_cli("sync", "--home", str(home), "--wait", "60").returncode == 0
    target = home.parent / "report" / "demo.html"
    result = run_cli("report", "--campaign", "demo", "--home", str(home), "--html", str(target), "--by", "Clinic")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target.resolve())  # the path, alone on stdout
    return target


def _rendered(path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is needed to render the report: `make test` installs Debian's chromium package"
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--virtual-time-budget=20000", "--dump-dom", path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_page_is_self_contained_and_small(page):
    text = page.read_text(encoding="utf-8")
    assert len(text.encode()) < 5_000_000
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", text)  # no script, style or font from the network


def test_every_chart_draws_its_marks_in_a_browser_with_no_network(page):
    dom = _rendered(page)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-rendered="yes"' in body and "data-errors" not in body, body
    charts = {m.group(1): m.group(0) for m in re.finditer(r'<div class="chart[^"]*" id="(\w+)"[^>]*>', dom)}
    assert set(charts) == CHARTS | {"by"}
    for name, tag in charts.items():
        marks = re.search(r'data-marks="(\d+)"', tag)
        assert marks and int(marks.group(1)) > 0 and "data-error" not in tag, (name, tag)
    assert "Outcomes by clinic" in dom and "Rejected rows: examples" in dom and "precision_lost" in dom


def test_report_html_mistakes_are_usage_errors(page):
    home = page.parent.parent / "home"
    unknown = run_cli("report", "--home", str(home), "--html", str(page), "--by", "shoe size")
    assert unknown.returncode == 2 and "no such spreadsheet column" in unknown.stderr and "clinic" in unknown.stderr
    alone = run_cli("report", "--home", str(home), "--by", "clinic")
    assert alone.returncode == 2 and "--html" in alone.stderr
