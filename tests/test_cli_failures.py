"""Ordinary failures are ordinary errors: one line, the documented exit code, never "internal error"."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

from tests.conftest import ROOT, run_cli
from tests.submit_helpers import contacts_file

SAMPLE = str(ROOT / "data" / "sample_contacts.csv")


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return lines[-1]


def test_a_path_given_twice_is_read_once(tmp_path):
    path, _ = contacts_file(tmp_path, count=4)
    for extra in ([], ["--dry-run"]):
        result = run_cli("import", str(path), str(path), "--campaign", "twice", "--home", str(tmp_path / "home"), "--json", *extra)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["rows_read"] == 4 and "given more than once" in result.stderr


def _small_disk() -> None:
    """The child process may write files of at most 150 kB: the ledger outgrows it, like a disk that fills up."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))


def test_a_full_disk_is_one_line_and_exit_7(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "import", SAMPLE, "--campaign", "full", "--home", str(tmp_path / "home")],
        capture_output=True, text=True, cwd=tmp_path, preexec_fn=_small_disk, timeout=120,
    )  # fmt: skip
    assert result.returncode == 7, result.stderr
    assert "cannot be written" in one_line(result) or "cannot write" in one_line(result)


def test_a_read_only_ledger_is_one_line_and_exit_7(tmp_path):
    home = tmp_path / "home"
    assert run_cli("import", SAMPLE, "--campaign", "a", "--home", str(home)).returncode == 0
    read_only = f"sqlite:///file:{home / 'ledger.sqlite'}?mode=ro&uri=true"
    result = run_cli("import", SAMPLE, "--campaign", "b", "--home", str(home), "--state", read_only)
    assert result.returncode == 7, result.stderr
    assert "readonly database" in one_line(result)


def test_secrets_in_a_watch_entry_are_refused_like_top_level_ones(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "campaigns.toml"
    config.write_text(f'[[watch]]\ninbox = "{inbox}"\ncampaign = "w"\nmagpipe_api_key = "sk-live-watch-77"\n')
    result = run_cli("watch", "--once", "--config", str(config), "--home", str(tmp_path / "home"))
    assert result.returncode == 2
    assert "secrets belong in the environment" in one_line(result) and "sk-live-watch-77" not in result.stderr


def test_a_file_that_changes_while_it_is_read_plans_nothing(tmp_path):
    """The hash recorded must be the content planned: a file rewritten between hashing and reading is refused."""
    import pytest

    from pipelines.settings import Settings
    from pipelines.errors import InputError
    from pipelines.ingest.options import IngestOptions
    from pipelines.ledger import Ledger
    from pipelines.ingest.ahead import file_sha256
    from pipelines.run import import_and_submit
    from pipelines.workspace import Workspace

    path, _ = contacts_file(tmp_path, count=5)
    hashed_before = file_sha256(path)
    contacts_file(tmp_path, count=7, start=100)  # the export is rewritten in place after it was hashed
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with pytest.raises(InputError, match="changed while it was being read") as caught:
        workspace = Workspace(Settings(home=tmp_path), ledger).without_publishing()
        import_and_submit([path], IngestOptions("moving"), workspace, hashes=[hashed_before])
    assert caught.value.code == "changed_while_reading"
    assert ledger.chunks("moving") == [] and ledger.import_with_content("moving", hashed_before) is None


def test_a_corrupt_or_exploding_workbook_is_bad_input_not_a_crash(tmp_path):
    from tests.test_watch import _corrupt_workbook, _zip_bomb

    truncated = _corrupt_workbook(tmp_path / "truncated.xlsx", tmp_path)
    bomb = _zip_bomb(tmp_path / "bomb.xlsx", expanded_mb=8)
    for extra in (["--dry-run"], []):
        for path, message in ((truncated, "not a readable Excel workbook"), (bomb, "more than the 2 MB allowed")):
            result = run_cli("import", str(path), "--campaign", "x", "--home", str(tmp_path / "home"), *extra,
                             env={"CAMPAIGNS_MAX_WORKBOOK_MB": "2"})  # fmt: skip
            assert result.returncode == 3, result.stderr
            assert message in one_line(result)


def test_reading_commands_work_on_a_home_they_may_not_write(tmp_path):
    """report, a dry run and suppress list only read: a read-only home is fine for them."""
    from tests.test_cli_usage import _without_root_file_access

    home = tmp_path / "home"
    assert run_cli("import", SAMPLE, "--campaign", "ro", "--home", str(home)).returncode == 0
    for path in [home, *home.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        for args in (["report"], ["import", SAMPLE, "--campaign", "ro", "--dry-run"], ["suppress", "list"]):
            result = subprocess.run([sys.executable, "-m", "pipelines", *args, "--home", str(home)], capture_output=True,
                                    text=True, cwd=ROOT, timeout=120,
                                    preexec_fn=_without_root_file_access if os.geteuid() == 0 else None)  # fmt: skip
            assert result.returncode == 0, (args, result.stderr)
        written = subprocess.run([sys.executable, "-m", "pipelines", "import", SAMPLE, "--campaign", "rw", "--home", str(home)],
                                 capture_output=True, text=True, cwd=ROOT, timeout=120,
                                 preexec_fn=_without_root_file_access if os.geteuid() == 0 else None)  # fmt: skip
        assert written.returncode == 7 and "internal error" not in written.stderr, written.stderr
    finally:
        for path in [home, *home.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_importing_the_notebook_api_changes_nothing_about_the_process():
    """Tuning (allocator, malloc arenas, GC) is the CLI's and the bench's to apply, never an import's side effect."""
    script = (
        "import ctypes, gc, pyarrow as pa\n"
        "before = pa.default_memory_pool().backend_name\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('malloc tuned by an import')\n"
        "ctypes.CDLL = refuse\n"
        "import pipelines.api, pipelines.ingest.pipeline, pipelines.ingest.normalise, pipelines.ingest.arrow, pipelines.ingest.threads\n"
        "from pipelines.api import load_contacts\n"
        "load_contacts(sys.argv[1])\n"
        "import pipelines.runtime as runtime\n"
        "assert pa.default_memory_pool().backend_name == before, pa.default_memory_pool().backend_name\n"
        "assert gc.isenabled() and not runtime.applied\n"
        "print(before)\n"
    )
    result = subprocess.run([sys.executable, "-c", "import sys\n" + script, SAMPLE], capture_output=True, text=True, cwd=ROOT,
                            timeout=120, env={k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != "system"  # the wheels' own allocator, untouched


def test_report_and_help_load_only_what_they_use(tmp_path):
    """Start-up (issue 17): `--help` loads no engine at all; `report` DuckDB's engine alone — no pandas, pyarrow,
    SQLAlchemy, nor the duckdb package's Python relation layer. Counted in modules, not seconds: a loaded machine
    cannot make it fail; a heavy import added at module level can."""
    home = tmp_path / "home"
    assert run_cli("import", SAMPLE, "--campaign", "light", "--home", str(home)).returncode == 0
    heavy = ("pandas", "pyarrow", "sqlalchemy", "sqlmodel", "pydantic", "phonenumbers", "duckdb", "_duckdb", "httpx")
    script = (
        "import sys\n"
        "from pipelines.cli import main\n"
        "sys.argv = ['campaigns', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        f"sys.stderr.write(' '.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    loaded = {}
    for args in (["--help"], ["report", "--campaign", "light", "--home", str(home)]):
        result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr
        loaded[args[0]] = set(result.stderr.split("\n")[-1].split())
    assert loaded == {"--help": set(), "report": {"_duckdb"}}, loaded


def test_an_out_folder_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for out in (afile, afile / "sub"):
        result = run_cli("import", SAMPLE, "--campaign", "a", "--dry-run", "--out", str(out), "--home", str(tmp_path / "home"))
        assert result.returncode == 2, result.stderr
        assert "is a file, or inside one" in one_line(result) and "internal error" not in result.stderr


def test_a_sqlite_uri_state_creates_no_folder_named_after_its_scheme(tmp_path):
    # sqlite:///file:PATH?mode=…&uri=true: the folder made for the ledger is PATH's, not a relative 'file:/…'
    home = tmp_path / "home"
    state = f"sqlite:///file:{tmp_path / 'state' / 'ledger.sqlite'}?uri=true"
    result = run_cli("import", SAMPLE, "--campaign", "a", "--home", str(home), "--state", state, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "ledger.sqlite").is_file() and not (tmp_path / "file:").exists()
