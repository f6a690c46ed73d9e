"""Every setting, declared once: its flag, environment variable, campaigns.toml key, default and whether it is a secret.

`resolve()` is the one place settings are decided, for every command, `watch` entries and
the notebook API:

    flag  >  [[watch]] entry  >  environment variable  >  campaigns.toml  >  default

Secrets come from the environment only: a campaigns.toml (or [[watch]] entry) holding
one is refused, and every secret is registered for redaction as it is read. An unknown
campaigns.toml key is refused with the nearest known one. The README's configuration
tables are checked against SETTINGS by the tests.

Nothing here imports anything heavy: a command that only reads starts in a fraction of a
second.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipelines.errors import UsageError
from pipelines.providers.registry import DIALECTS, REGISTRY
from pipelines.redact import register
from pipelines.setting import (
    Secret, Setting, non_negative_float, positive_float, positive_int, read_columns, read_encoding, read_flag, read_path, read_region,
    read_secret, read_text, read_timezone,
)  # fmt: skip

PROVIDERS = tuple(REGISTRY)
SANDBOX_CALLER_ID = "+14157774444"  # one of the sandbox's numbers: what the embedded sandbox's batches come from


def read_provider(value, name: str) -> str:
    text = str(value).strip().casefold()
    if text not in PROVIDERS:
        near = difflib.get_close_matches(text, PROVIDERS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise UsageError(f"{name} must be {', '.join(PROVIDERS[:-1])} or {PROVIDERS[-1]}, not {value!r}{hint}")
    return text

SETTINGS: tuple[Setting, ...] = (
    # where things are
    Setting("home", Path(".campaigns"), "Where the tool keeps its state.", read_path, "--home", "CAMPAIGNS_HOME", "home", metavar="DIR"),
    Setting("state", None, "The ledger as an SQLAlchemy URL [default: SQLite in the home folder].", read_text, "--state",
            "CAMPAIGNS_STATE", "state", metavar="URL"),
    Setting("db", None, "The DuckDB report file [default: <home>/campaigns.duckdb].", read_path, "--db", "CAMPAIGNS_DB", "db",
            metavar="FILE"),
    Setting("config", None, "A campaigns.toml [default: ./campaigns.toml, then <home>/campaigns.toml].", read_path, "--config",
            metavar="FILE"),
    # where batches go
    Setting("provider", None, f"{', '.join(PROVIDERS[:-1])} or {PROVIDERS[-1]} [default: the campaign's own, else sandbox].", read_provider,
            "--provider", "CAMPAIGNS_PROVIDER", "provider", metavar="NAME"),
    Setting("caller_id", None, "The number calls come from, E.164 [default: the campaign's own].", read_text, "--caller-id",
            "CAMPAIGNS_CALLER_ID", "caller_id", metavar="E164"),
    Setting("agent_id", None, "The agent that takes the calls, as the provider names it.", read_text, "--agent-id",
            "CAMPAIGNS_AGENT_ID", "agent_id", metavar="ID"),
    Setting("account_timezone", "UTC", "The clock of a provider whose windows run on the account's clock.", read_timezone, "--account-timezone",
            "CAMPAIGNS_ACCOUNT_TIMEZONE", "account_timezone", metavar="TZ"),
    # how files are read and cut
    Setting("region", "US", "Country for numbers written without +code (ISO 3166 alpha-2).", read_region, "--region",
            "CAMPAIGNS_REGION", "region", metavar="CC"),
    Setting("batch_size", None, "At most this many contacts per batch (capped at the provider's limit).", positive_int,
            "--batch-size", "CAMPAIGNS_BATCH_SIZE", "batch_size", metavar="N"),
    Setting("phone_columns", (), "A phone column's header (repeat: the order is the priority).", read_columns, "--phone-column",
            None, "phone_column", metavar="COL", many=True),
    Setting("sheet", None, "The Excel sheet to read [default: the first].", read_text, "--sheet", None, "sheet", metavar="NAME"),
    Setting("header_row", None, "The row holding the headers, as the spreadsheet numbers it [default: the first of the first 20 "
            "non-blank rows that names a phone column].", positive_int, "--header-row", None, "header_row", metavar="N"),
    Setting("name_column", None, "The column holding the recipient's name, when it cannot be detected.", read_text, "--name-column",
            None, "name_column", metavar="COL"),
    Setting("country_column", None, "The column holding each row's country, when it cannot be detected.", read_text,
            "--country-column", None, "country_column", metavar="COL"),
    Setting("timezone_column", None, "The column holding each row's IANA timezone, when it cannot be detected.", read_text,
            "--timezone-column", None, "timezone_column", metavar="COL"),
    Setting("state_column", None, "The column holding each row's US state (FL, Florida), when it cannot be detected; it "
            "overrides the area code's state.", read_text, "--state-column", None, "state_column", metavar="COL"),
    Setting("encoding", None, "The text encoding of CSV, TSV and JSON Lines files (cp1252, mac_roman, …) [default: detected].",
            read_encoding, "--encoding", None, "encoding", metavar="NAME"),
    Setting("variables", (), "Send only these columns to the agent as variables (comma-separated headers).", read_columns,
            "--variables", None, "variables", metavar="COL,COL"),
    Setting("exclude_columns", (), "A column never sent as a variable (repeat for several).", read_columns, "--exclude-column",
            None, "exclude_column", metavar="COL", many=True),
    Setting("max_workbook_mb", 512.0, "What a zipped workbook may expand to before it is refused (too_large).",
            positive_float, None, "CAMPAIGNS_MAX_WORKBOOK_MB", "max_workbook_mb"),
    # calling hours
    Setting("window", "08:00-21:00", "Local calling hours, HH:MM-HH:MM (end exclusive).", read_text, "--window", "CAMPAIGNS_WINDOW",
            "window", metavar="HH:MM-HH:MM"),
    Setting("days", "daily", "Calling days: mon-fri, mon,wed,fri, sat-sun, daily.", read_text, "--days", "CAMPAIGNS_DAYS", "days",
            metavar="DAYS"),
    Setting("rules", None, "State calling rules: a TOML file over the shipped ones, or none [default: the shipped "
            "rules, see State calling rules].", read_text, "--rules", "CAMPAIGNS_RULES", "rules", metavar="FILE|none"),
    Setting("allow_any_hour", False, "Accept a window outside 08:00-21:00 recipient time (warned on every run).", read_flag,
            "--allow-any-hour", "CAMPAIGNS_ALLOW_ANY_HOUR", "allow_any_hour"),
    # several hosts on one ledger
    Setting("host", None, "The name this machine's runs write into campaign locks [default: its hostname]; unique per "
            "machine sharing a ledger.", read_text, None, "CAMPAIGNS_HOST", "host"),
    Setting("lock_lease_seconds", 900.0, "How long a lock from another host counts as held without a heartbeat "
            "(renewed every tenth of it while a run works).", positive_float, None, "CAMPAIGNS_LOCK_LEASE", "lock_lease"),
    # talking to providers
    Setting("timeout_seconds", 30.0, "Seconds before a request is given up as unanswered.", positive_float, None,
            "CAMPAIGNS_TIMEOUT", "timeout"),
    Setting("retry_attempts", 6, "Attempts per request refused with 429/503 or unreachable.", positive_int, None,
            "CAMPAIGNS_RETRY_ATTEMPTS", "retry_attempts"),
    Setting("retry_budget_seconds", 120.0, "Seconds of retrying per request.", positive_float, None, "CAMPAIGNS_RETRY_BUDGET",
            "retry_budget"),
    Setting("retry_base_seconds", 0.5, "First backoff, in seconds (exponential, full jitter).", positive_float, None,
            "CAMPAIGNS_RETRY_BASE", "retry_base"),
    Setting("in_flight", None, "Batches submitted, or read by sync, at once [default: the provider's, 4].", positive_int, None,
            "CAMPAIGNS_IN_FLIGHT", "in_flight"),
    Setting("settle_seconds", 1.0, "Wait before the second look for a batch an ambiguous create may have made.",
            non_negative_float, None, "CAMPAIGNS_SETTLE_SECONDS", "settle_seconds"),
    # each provider's own (declared in its folder: pipelines/providers/<dialect>/__init__.py)
    *(setting for dialect in DIALECTS.values() for setting in dialect.settings),
    # the embedded and standalone sandbox
    Setting("sandbox_speed", 60.0, "How much faster than real time the embedded sandbox runs.", positive_float, None,
            "CAMPAIGNS_SANDBOX_SPEED", "sandbox_speed"),
    Setting("sandbox_key", None, "The API key `campaigns sandbox` accepts [default: sandbox-key].", read_secret, None,
            "CAMPAIGNS_SANDBOX_KEY", secret=True),
    Setting("sandbox_secret", None, "The API secret `campaigns sandbox` accepts [default: sandbox-secret].", read_secret, None,
            "CAMPAIGNS_SANDBOX_SECRET", secret=True),
    # the process
    Setting("arrow_memory_pool", None, "pyarrow's allocator (jemalloc, mimalloc, system) [default: system, see Performance].",
            read_text, None, "ARROW_DEFAULT_MEMORY_POOL"),
    Setting("debug", False, "Show tracebacks (secrets masked).", read_flag, None, "CAMPAIGNS_DEBUG"),
    Setting("failpoint", None, "Tests only: step[:n] kills the process at that submission step.", read_text, None, "CAMPAIGNS_FAILPOINT"),
)  # fmt: skip
BY_NAME = {setting.name: setting for setting in SETTINGS}
PROVIDER_SETTINGS = frozenset(setting.name for dialect in DIALECTS.values() for setting in dialect.settings)
TOML_KEYS = {setting.toml: setting for setting in SETTINGS if setting.toml}
WATCH_KEYS = {"inbox", "campaign", "pattern"}  # what a [[watch]] entry holds besides settings


@dataclass(frozen=True)
class Settings:
    """Every setting, resolved; built once per command (and per [[watch]] entry) and passed down."""

    home: Path = Path(".campaigns")
    state: str | None = None
    db: Path | None = None
    config: Path | None = None
    provider: str | None = None
    caller_id: str | None = None
    agent_id: str | None = None
    account_timezone: str = "UTC"
    region: str = "US"
    batch_size: int | None = None
    phone_columns: tuple[str, ...] = ()
    sheet: str | None = None
    header_row: int | None = None
    name_column: str | None = None
    country_column: str | None = None
    timezone_column: str | None = None
    state_column: str | None = None
    encoding: str | None = None
    variables: tuple[str, ...] = ()
    exclude_columns: tuple[str, ...] = ()
    max_workbook_mb: float = 512.0
    window: str = "08:00-21:00"
    days: str = "daily"
    rules: str | None = None
    allow_any_hour: bool = False
    host: str | None = None
    lock_lease_seconds: float = 900.0
    timeout_seconds: float = 30.0
    retry_attempts: int = 6
    retry_budget_seconds: float = 120.0
    retry_base_seconds: float = 0.5
    in_flight: int | None = None
    settle_seconds: float = 1.0
    sandbox_speed: float = 60.0
    sandbox_key: Secret | None = None
    sandbox_secret: Secret | None = None
    arrow_memory_pool: str | None = None
    debug: bool = False
    failpoint: str | None = None
    providers: Mapping[str, Any] = field(default_factory=dict)  # the settings each provider's folder declares, by name
    toml: dict = field(default_factory=dict, compare=False, repr=False)  # the campaigns.toml read ([[watch]] entries)

    def value(self, name: str) -> Any:
        """Any setting by its name in SETTINGS, the providers' own included."""
        return self.providers.get(name, BY_NAME[name].default) if name in PROVIDER_SETTINGS else getattr(self, name)

    @property
    def db_path(self) -> Path:
        """The analysts' DuckDB file."""
        return self.db or self.home / "campaigns.duckdb"

    @property
    def ledger_url(self) -> str:
        """The ledger's SQLAlchemy URL."""
        return self.state or f"sqlite:///{(self.home / 'ledger.sqlite').resolve()}"

    def open_ledger(self, *, read_only: bool = False):
        """The ledger these settings name (pipelines.ledger.Ledger), with this machine's lock terms."""
        from pipelines.ledger import Ledger

        return Ledger(self.ledger_url, read_only=read_only, host=self.host, lease_seconds=self.lock_lease_seconds)

    @property
    def ledger_label(self) -> str:
        """The ledger as messages name it: the database URL without its password, or the SQLite file."""
        if self.state is None:
            return str(self.home / "ledger.sqlite")
        from pipelines.redact import safe_url

        return safe_url(self.state)

    def ledger_exists(self) -> bool:
        """Is there a ledger to read (a database URL is taken to exist; the SQLite file must)?"""
        return self.state is not None or (self.home / "ledger.sqlite").exists()

    def with_(self, **changes) -> Settings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def require_credentials(self, provider: str, *, creating: bool) -> None:
        """Refuse early, in one line, when `provider` is to be used without what it needs (a caller number only
        to create batches: reading, stopping and moving them need the credentials alone)."""
        from pipelines.providers.registry import spec

        declared = spec(provider)
        present = {s.env: self.value(s.name) for s in SETTINGS if s.env}
        missing = [name for name in declared.credentials if not present.get(name)]
        if missing:
            raise UsageError(f"provider {provider} needs {', '.join(missing)} in the environment")
        if creating and declared.needs_caller_id and not self.caller_id:
            raise UsageError(f"provider {provider} needs a caller number to create batches: --caller-id or CAMPAIGNS_CALLER_ID")


assert {f.name for f in fields(Settings)} - {"providers", "toml"} == set(BY_NAME) - PROVIDER_SETTINGS, "Settings and SETTINGS must list the same settings"


def resolve(flags: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
            entry: Mapping[str, Any] | None = None) -> Settings:  # fmt: skip
    """Decide every setting: flag > [[watch]] entry > environment > campaigns.toml > default, each value checked.

    `flags` maps setting names to what the command line gave (None: not given). `env`
    defaults to the process environment (read here, at the edge, and nowhere else).
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None and v != ()}
    env = os.environ if env is None else env
    for setting in SETTINGS:  # every secret is registered for redaction as soon as it exists, valid or not
        if setting.secret and env.get(setting.env):
            register(env[setting.env])
    home_hint = flags.get("home") or env.get("CAMPAIGNS_HOME") or None
    config = Path(flags["config"]) if flags.get("config") else None
    toml = load_toml(config, Path(home_hint) if home_hint else None)
    if entry is not None:
        _check_keys(dict(entry), "a [[watch]] entry", allowed=WATCH_KEYS)
    values = {}
    for setting in SETTINGS:
        value, source = _pick(setting, flags, entry or {}, env, toml)
        values[setting.name] = setting.default if value is None else setting.read(value, source)
    providers = {name: values.pop(name) for name in PROVIDER_SETTINGS}
    return Settings(**values, providers=providers, toml=toml)


def _pick(setting: Setting, flags, entry, env, toml) -> tuple[Any, str]:
    """The value of a setting and where it came from (for messages), in order of precedence."""
    if setting.name in flags:
        return flags[setting.name], setting.flag or setting.name
    if setting.toml and setting.toml in entry:
        return entry[setting.toml], f"{setting.toml} in a [[watch]] entry"
    if setting.env and env.get(setting.env) not in (None, ""):  # an empty variable (`export X=`) is not a setting
        return env[setting.env], setting.env
    if setting.toml and setting.toml in toml:
        return toml[setting.toml], f"{setting.toml} in campaigns.toml"
    return None, setting.name


def load_toml(path: Path | None, home: Path | None) -> dict:
    """Read campaigns.toml: the given path, else ./campaigns.toml, else <home>/campaigns.toml; refuse secrets and
    unknown keys (with the nearest known one)."""
    candidates = [path] if path else [Path("campaigns.toml"), (home or BY_NAME["home"].default) / "campaigns.toml"]
    for candidate in candidates:
        if candidate and candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise UsageError(f"{candidate}: not valid TOML ({exc})") from None
            _check_keys({k: v for k, v in data.items() if k != "watch"}, str(candidate))
            watch = data.get("watch", [])
            if not isinstance(watch, list) or not all(isinstance(e, dict) for e in watch):
                raise UsageError(f"{candidate}: watch must be a list of [[watch]] tables")
            for index, entry in enumerate(watch):
                _check_keys(entry, f"{candidate}, [[watch]] entry {index + 1}", allowed=WATCH_KEYS)
            return data
    if path:
        raise UsageError(f"{path}: config file not found")
    return {}


SECRET_WORDS = ("key", "secret", "token", "password")


def _check_keys(table: dict, where: str, *, allowed: set[str] = frozenset()) -> None:
    """Refuse secrets and unknown keys, naming the key as written and the closest known one."""
    for key in table:
        lowered = str(key).casefold()
        setting = TOML_KEYS.get(lowered)
        if (setting is None and any(s.secret and s.name == lowered for s in SETTINGS)) or (
            setting is None and lowered not in allowed and any(word in lowered for word in SECRET_WORDS)
        ):
            raise UsageError(f"{where}: secrets belong in the environment, not in campaigns.toml ({key})")
        if setting is None and lowered not in allowed:
            known = sorted(set(TOML_KEYS) | allowed)
            near = difflib.get_close_matches(lowered, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(known)}"
            raise UsageError(f"{where}: unknown setting {key!r}{hint}")
