"""End to end, from the outside: what a user or cron runs, each command a fresh process, timed by this parent.

Side by side in one run, on the same generated 1,000,000-row file:
- `campaigns --help` and `campaigns report` (start-up), and a dry run of the file's first 1,000 rows (what any
  import pays once per process: imports, phone metadata, compiled patterns, prefix tables);
- the naive loop (`python -m bench.naive FILE`: pandas + phonenumbers, imports included);
- `campaigns import FILE --campaign … --dry-run --out DIR`;
- the real `campaigns import FILE --campaign … --provider batchcall` into a local sandbox started as its own
  process (`campaigns sandbox --speed 20000`, state in memory), with the time to the first batch started;
- `campaigns import FILE --campaign … --hold` of 1M and of 10M rows (planned into the ledger, nothing sent);
- then, on the last real import's sandbox and home, its clock moved ten days on so that every call is over: the
  first full `campaigns sync` (it publishes to DuckDB at its end), a `sync` with nothing left to read, `campaigns
  publish --campaign` (the campaign rewritten on demand), a second file of 1 % new rows imported into the same
  campaign and, its calls over, the `sync` where 1 % of the recipients changed (its publish included);
- the ledger on SQLite and on PostgreSQL side by side (`stores`): `import --hold`, a real import and its full sync.

The dry run runs 3 times and the real import twice (each into a fresh sandbox): the fastest and the median are
reported, since this VM's speed drifts by tens of percent from one minute to the next. Wall time is taken from
spawn to exit; peak RSS is the child's own (os.wait4); the time to the first batch is
when the child's stderr says `started 1/` (stderr is a pipe, so the plain lines, not the bar, are printed).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import write

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CAMPAIGNS = [sys.executable, "-m", "pipelines"]
SANDBOX_ENV = {"BATCHCALL_API_KEY": "sandbox-key", "BATCHCALL_API_SECRET": "sandbox-secret", "CAMPAIGNS_CALLER_ID": "+14157774444"}


def measure(argv: list[str], *, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run one command as a fresh process; its wall seconds, peak RSS, exit code and seconds to `started 1/`."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd or ROOT,
                               env={**os.environ, **(env or {})})  # fmt: skip
    first, tail = None, []
    for line in process.stderr:
        if first is None and line.startswith("started 1/"):
            first = time.perf_counter() - started
        tail = (tail + [line.rstrip()])[-5:]
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stderr.close()
    figures = {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024), "exit": process.returncode}
    if first is not None:
        figures["first_batch_seconds"] = round(first, 2)
    if process.returncode != 0:
        figures["stderr_tail"] = tail
    return figures


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalSandbox:
    """`campaigns sandbox` as its own process, the way a user runs one to try the tool."""

    def __init__(self, speed: float = 20000):
        self.port = _free_port()
        self.process = subprocess.Popen([*CAMPAIGNS, "sandbox", "--port", str(self.port), "--speed", f"{speed:g}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("the sandbox did not start")

    @property
    def env(self) -> dict:
        return {**SANDBOX_ENV, "BATCHCALL_BASE_URL": f"http://127.0.0.1:{self.port}"}

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def syncs(sandbox: LocalSandbox, home: Path, work: Path, rows: int) -> dict:
    """Sync and publish a campaign whose calls are all over, then again after 1 % more: each a fresh process."""
    import httpx

    def clock(days: float) -> None:
        url = f"http://127.0.0.1:{sandbox.port}/_sandbox/clock"
        httpx.post(url, json={"advance_seconds": days * 86400}, timeout=30).raise_for_status()

    sync = [*CAMPAIGNS, "sync", "--campaign", "bench", "--home", str(home)]
    clock(10)
    figures: dict = {}
    before = sandbox.cpu_seconds()
    figures["full"] = measure(sync, env=sandbox.env)
    figures["full"]["sandbox_cpu_seconds"] = round(sandbox.cpu_seconds() - before, 1)
    figures["nothing_new"] = repeated([measure(sync, env=sandbox.env) for _ in range(5)])
    figures["publish_campaign"] = measure([*CAMPAIGNS, "publish", "--campaign", "bench", "--home", str(home)])
    more = write(work / "one_percent.csv", max(1, rows // 100), seed=7)
    figures["one_percent_import"] = measure([*CAMPAIGNS, "import", str(more), "--campaign", "bench", "--provider", "batchcall",
                                             "--home", str(home)], env=sandbox.env)  # fmt: skip
    clock(10)
    figures["one_percent"] = measure(sync, env=sandbox.env)
    return figures


def stores(path: Path, work: Path) -> dict:
    """The ledger on SQLite and on PostgreSQL side by side (issue 22): planning the file (`import --hold`), and a real
    import into a fresh local sandbox followed, its calls over, by the first full sync — each store's own run, the
    PostgreSQL ledger in a throw-away cluster (tests/pg.py: Debian's server, fsync off, a Unix socket)."""
    from tests.pg import cluster

    import httpx

    figures: dict = {}
    for store in ("sqlite", "postgresql"):
        state = {"CAMPAIGNS_STATE": cluster().create_database(empty=True)} if store == "postgresql" else {}
        home = work / f"store-{store}"
        held = measure([*CAMPAIGNS, "import", str(path), "--campaign", "held", "--hold", "--home", str(home)], env=state)
        sandbox = LocalSandbox()
        try:
            imported = measure([*CAMPAIGNS, "import", str(path), "--campaign", "bench", "--provider", "batchcall", "--home",
                                str(home)], env={**sandbox.env, **state})  # fmt: skip
            httpx.post(f"http://127.0.0.1:{sandbox.port}/_sandbox/clock", json={"advance_seconds": 10 * 86400},
                       timeout=30).raise_for_status()  # fmt: skip
            synced = measure([*CAMPAIGNS, "sync", "--campaign", "bench", "--home", str(home)], env={**sandbox.env, **state})
        finally:
            sandbox.close()
        figures[store] = {"hold": held, "import": imported, "sync": synced}
    return figures


def startup(argv: list[str], repeat: int = 5, **kwargs) -> dict:
    runs = [measure(argv, **kwargs)["seconds"] for _ in range(repeat)]
    return {"seconds": min(runs), "median_seconds": statistics.median(runs), "runs_seconds": runs}


def repeated(runs: list[dict]) -> dict:
    """Several runs of one command: the fastest run's figures, with the median and every run's seconds."""
    fastest = min(runs, key=lambda r: r["seconds"])
    return {**fastest, "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
            "runs_seconds": [r["seconds"] for r in runs], "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}  # fmt: skip


def run(rows: int = 1_000_000, hold_rows: int | None = 10_000_000, repeat: int = 3, repeat_import: int = 2) -> dict:
    path = write(OUT / f"messy_{rows}.csv", rows)
    work = Path(tempfile.mkdtemp(prefix="e2e-", dir=OUT))
    figures: dict = {"rows": rows, "file_mb": round(path.stat().st_size / 1e6, 1)}
    try:
        figures["help"] = startup([*CAMPAIGNS, "--help"])
        small = work / "first_1000.csv"  # the per-process costs: imports, phone metadata, patterns, prefix tables
        with path.open("rb") as source, small.open("wb") as target:
            target.writelines(line for _, line in zip(range(1001), source))
        figures["dry_run_1000_rows"] = startup([*CAMPAIGNS, "import", str(small), "--campaign", "bench", "--dry-run",
                                                "--home", str(work / "small-home")], repeat=3)  # fmt: skip
        figures["naive"] = measure([sys.executable, "-m", "bench.naive", str(path)])
        figures["dry_run"] = repeated([measure([*CAMPAIGNS, "import", str(path), "--campaign", "bench", "--dry-run", "--out",
                                                str(work / f"dry{n}"), "--home", str(work / "dry-home")])
                                       for n in range(repeat)])  # fmt: skip
        runs = []
        for n in range(repeat_import):  # each into a fresh sandbox and a fresh home; the last stays up for the syncs
            sandbox = LocalSandbox()
            try:
                before = sandbox.cpu_seconds()
                runs.append(measure([*CAMPAIGNS, "import", str(path), "--campaign", "bench", "--provider", "batchcall",
                                     "--home", str(work / f"home{n}")], env=sandbox.env))  # fmt: skip
                runs[-1]["sandbox_cpu_seconds"] = round(sandbox.cpu_seconds() - before, 1)
                if n == repeat_import - 1:
                    figures["sync"] = syncs(sandbox, work / f"home{n}", work, rows)
            finally:
                sandbox.close()
        figures["import"] = repeated(runs)
        figures["report"] = startup([*CAMPAIGNS, "report", "--campaign", "bench", "--home", str(work / "home0")], repeat=3)
        figures["hold"] = measure([*CAMPAIGNS, "import", str(path), "--campaign", "held", "--hold", "--home", str(work / "hold")])
        figures["stores"] = stores(path, work)
        if hold_rows:
            big = write(OUT / f"messy_{hold_rows}.csv", hold_rows)
            figures["hold_big"] = {"rows": hold_rows, **measure([*CAMPAIGNS, "import", str(big), "--campaign", "held", "--hold",
                                                                 "--home", str(work / "hold-big")])}  # fmt: skip
            figures["hold_big"]["times_1m"] = round(figures["hold_big"]["seconds"] / figures["hold"]["seconds"], 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    dry, naive, real = figures["dry_run"]["seconds"], figures["naive"]["seconds"], figures["import"]["seconds"]
    figures["dry_run_vs_naive"] = round(naive / dry, 1)  # fastest against the one naive run
    figures["import_vs_dry_run"] = round(real / dry, 1)  # fastest against fastest
    figures["import_vs_dry_run_median"] = round(figures["import"]["median_seconds"] / figures["dry_run"]["median_seconds"], 1)
    for name in ("full", "publish_campaign", "one_percent"):
        figures["sync"][f"{name}_vs_dry_run"] = round(figures["sync"][name]["seconds"] / dry, 1)
    if "first_batch_seconds" in figures["import"]:
        figures["first_batch_vs_dry_run"] = round(figures["import"]["first_batch_seconds"] / dry, 2)
    return figures
