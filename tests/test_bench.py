"""The benchmark harness runs (figures are bench/'s business, never a test's): a tiny `python -m bench ingest` and
`scale`, each a fresh process as `make bench` runs them, so that a suite broken by a change is found here, not at the
end of a twenty-minute `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench", *argv, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_ingest_and_scale_suites_run_and_agree_with_the_naive_loop():
    ingest = _bench("ingest", "--rows", "2000", "--repeat", "1")["ingest"]
    assert ingest["decisions"]["rows_compared"] == 2000 and ingest["decisions"]["rows_differing"] == 0
    assert ingest["decisions"]["identical_e164_set"] is True
    scale = _bench("scale", "--rows", "2000", "--scale-rows", "3000", "--repeat", "1")["scale"]
    assert scale["rows"] == 3000 and scale["base_rows"] == 2000 and scale["seconds"] > 0
