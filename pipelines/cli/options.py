"""What every command shares: options made from the settings table, and how a command ends.

Only light modules are imported here: every command starts in a fraction of a second and
loads what it needs (pandas, pyarrow, SQLAlchemy, DuckDB) inside itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from pipelines.errors import CampaignError, UsageError
from pipelines.redact import redact
from pipelines.setting import read_flag
from pipelines.settings import BY_NAME, Settings, resolve

if TYPE_CHECKING:
    from rich.console import Console

LOCATION = ("home", "state", "db", "config")  # where the state is: every command that reads or writes it takes these
PROVIDER = ("provider", "caller_id", "agent_id", "account_timezone")
READING = ("region", "phone_columns", "header_row", "name_column", "country_column", "timezone_column", "state_column", "sheet", "encoding",
           "variables", "exclude_columns", "batch_size", "window", "days", "rules", "allow_any_hour")  # fmt: skip


def settings_options(*names: str) -> Callable:
    """Add the options of these settings (flag, help, environment variable, all from pipelines.settings.SETTINGS);
    the command receives `flags` (what was given, None for what was not) to pass to resolve()."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(**kwargs):
            flags = {name: kwargs.pop(name) for name in names}
            return command(flags=flags, **kwargs)

        for name in reversed(names):
            wrapper = _option(name)(wrapper)
        return wrapper

    return decorate


def _option(name: str) -> Callable:
    setting = BY_NAME[name]
    default = "" if setting.default in (None, (), False) else f" [default: {setting.default}]"
    env = f" [env {setting.env}]" if setting.env else ""
    help_text = setting.help + ("" if "[default" in setting.help else default) + env
    if setting.read is read_flag:
        return click.option(setting.flag, name, is_flag=True, default=None, help=help_text)
    return click.option(setting.flag, name, default=None, multiple=setting.many, metavar=setting.metavar, help=help_text)


def settings_of(flags: dict) -> Settings:
    """The command's settings: its flags over the environment and campaigns.toml."""
    return resolve(flags)


json_option = click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
campaign_required = click.option("--campaign", required=True, help="The campaign to act on.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Read the provider and say what would be done; change nothing.")


def check_campaign(name: str) -> str:
    """A campaign name is one line of printable text (it appears in batch names, logs and reports)."""
    if not name.strip():
        raise UsageError("--campaign must not be empty")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name):
        raise UsageError("--campaign must not contain control characters (line breaks, tabs, …)")
    return name


def require_ledger(settings: Settings) -> None:
    """Follow-up commands need something imported first."""
    if not settings.ledger_exists():
        raise UsageError(f"no ledger in {settings.home}: nothing has been imported there")


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(payload: dict, error: CampaignError | None = None) -> None:
    """The one JSON object a command prints; a command that ends in an error says so in it (`error`, `exit_code`)."""
    if error is not None:
        payload = {**payload, "error": redact(str(error)), "exit_code": int(error.exit_code)}
        error.reported = True
    print(json.dumps(payload, default=str))


def end_with(error: CampaignError | None) -> None:
    """End the command with its error, if it has one (after its output was printed)."""
    if error is not None:
        raise error
