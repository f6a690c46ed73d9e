"""The workspace: the resolved settings, the ledger, the home folder and the DuckDB file travel as one object."""

from __future__ import annotations

import ast
from pathlib import Path

from pipelines.settings import resolve
from pipelines.workspace import Workspace
from tests.conftest import run_cli, write_delimited

ROOT = Path(__file__).resolve().parent.parent


def test_no_command_function_takes_the_settings_and_the_ledger_apart():
    """import, submit, sync, cancel, reschedule, retry and watch take a Workspace, never (settings, ledger, home, db)."""
    offenders = []
    for name in ("run.py", "control.py", "watch.py"):
        tree = ast.parse((ROOT / "pipelines" / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                parameters = {a.arg for a in [*node.args.args, *node.args.kwonlyargs]}
                if {"settings", "ledger"} <= parameters or {"home", "db"} & parameters:
                    offenders.append(f"{name}: {node.name}({', '.join(sorted(parameters))})")
    assert not offenders, "\n".join(offenders)


def test_a_workspace_is_the_settings_own_ledger_home_and_report(tmp_path):
    settings = resolve({"home": str(tmp_path / "home"), "db": str(tmp_path / "report.duckdb")}, env={})
    with Workspace.open(settings) as workspace:
        assert workspace.home == tmp_path / "home" and workspace.db == tmp_path / "report.duckdb"
        assert (tmp_path / "home" / "ledger.sqlite").exists()
        assert workspace.without_publishing().db is None and workspace.without_publishing().ledger is workspace.ledger
        assert workspace.for_campaign("never-imported") is workspace


def test_a_follow_up_creates_batches_with_the_caller_id_of_the_campaigns_last_import(tmp_path):
    path = write_delimited(tmp_path / "c.csv", [["Phone"], ["+12125550101"]])
    home = tmp_path / "home"
    done = run_cli("import", str(path), "--campaign", "w", "--home", str(home), "--caller-id", "+16045551234", "--hold")
    assert done.returncode == 0, done.stderr
    with Workspace.open(resolve({"home": str(home)}, env={})) as workspace:
        assert workspace.settings.caller_id is None
        assert workspace.for_campaign("w").settings.caller_id == "+16045551234"
        given = Workspace(workspace.settings.with_(caller_id="+14157774444"), workspace.ledger)
        assert given.for_campaign("w").settings.caller_id == "+14157774444"  # what the user gives now wins
