"""Settings: built once at the CLI edge from flags, the environment and campaigns.toml, then passed down.

Precedence: flag > environment variable > campaigns.toml > default. Secrets come from
the environment only; a campaigns.toml that holds one is refused.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from pipelines.errors import UsageError
from pipelines.redact import register

Provider = Literal["sandbox", "magpipe", "batchcall"]
DEFAULT_HOME = Path(".campaigns")
MAGPIPE_DEFAULT_URL = "https://api.magpipe.ai/functions/v1"
SANDBOX_CALLER_ID = "+14157774444"
SECRET_KEYS = {"magpipe_api_key", "batchcall_api_key", "batchcall_api_secret", "api_key", "api_secret"}
SECRET_ENVIRONMENT = ("MAGPIPE_API_KEY", "BATCHCALL_API_KEY", "BATCHCALL_API_SECRET", "CAMPAIGNS_SANDBOX_KEY", "CAMPAIGNS_SANDBOX_SECRET")


def credential(variable: str, value: str | None) -> SecretStr | None:
    """A secret as read from the environment: surrounding whitespace dropped (a pasted CR or LF),
    refused — naming the variable, never the value — if it cannot be sent in an HTTP header."""
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    register(text)
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{variable} is set but empty")
    if any(not " " <= ch <= "~" for ch in stripped):
        raise ValueError(
            f"{variable} contains a character that cannot be sent in an HTTP header (non-ASCII or a control "
            "character); set it again without it"
        )
    return SecretStr(stripped)


class IngestSettings(BaseModel):
    """How an import reads and cuts its files."""

    model_config = ConfigDict(frozen=True)

    home: Path = DEFAULT_HOME
    region: str = "US"
    batch_size: int | None = None

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        value = value.upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}: use an ISO 3166 alpha-2 code such as US, GB, DE")
        return value

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("--batch-size must be at least 1")
        return value


class ProviderSettings(BaseModel):
    """Where and how to submit. Secrets are SecretStr: they never print."""

    model_config = ConfigDict(frozen=True)

    provider: Provider | None = None  # chosen by flag, environment or campaigns.toml; None: the campaign's own, else the sandbox
    magpipe_api_key: SecretStr | None = None
    magpipe_base_url: str = MAGPIPE_DEFAULT_URL
    batchcall_api_key: SecretStr | None = None
    batchcall_api_secret: SecretStr | None = None
    batchcall_base_url: str | None = None
    caller_id: str | None = None
    agent_id: str | None = None
    timeout_seconds: float = 30.0
    retry_attempts: int = 6
    retry_budget_seconds: float = 120.0
    retry_base_seconds: float = 0.5
    settle_seconds: float = 1.0  # an ambiguous create that left nothing is looked for twice, this far apart
    sandbox_speed: float = 60.0
    account_timezone: str = "UTC"  # the clock magpipe compares its window with
    failpoint: str | None = None  # test-only: CAMPAIGNS_FAILPOINT=name[:n] kills the process there

    @field_validator("magpipe_api_key", "batchcall_api_key", "batchcall_api_secret", mode="before")
    @classmethod
    def _credential(cls, value, info):
        return credential(ENVIRONMENT[info.field_name], value)

    @field_validator("account_timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        from pipelines.timezones import known_zones

        if value not in known_zones():
            raise ValueError(f"unknown timezone {value!r}: use an IANA name such as America/New_York or UTC")
        return value

    def require_credentials(self, provider: str, *, creating: bool) -> None:
        """Refuse early, in one line, when `provider` is to be used without what it needs (a caller number only
        to create batches: reading, stopping and moving them need the credentials alone)."""
        from pipelines.providers.registry import spec

        declared = spec(provider)
        values = {ENVIRONMENT[field]: getattr(self, field) for field in CREDENTIAL_FIELDS}
        missing = [name for name in declared.credentials if not values.get(name)]
        if missing:
            raise UsageError(f"provider {provider} needs {', '.join(missing)} in the environment")
        if creating and declared.needs_caller_id and not self.caller_id:
            raise UsageError(f"provider {provider} needs a caller number to create batches: --caller-id or CAMPAIGNS_CALLER_ID")

    def secrets(self) -> list[str]:
        """Every secret value, for tests and scrubbing."""
        values = (self.magpipe_api_key, self.batchcall_api_key, self.batchcall_api_secret)
        return [v.get_secret_value() for v in values if v is not None]


class StateSettings(BaseModel):
    """Where the ledger lives."""

    model_config = ConfigDict(frozen=True)

    home: Path = DEFAULT_HOME
    state_url: str | None = None  # SQLAlchemy URL; default sqlite in home
    db: Path | None = None  # the analysts' DuckDB file; default <home>/campaigns.duckdb

    @property
    def db_path(self) -> Path:
        return self.db or self.home / "campaigns.duckdb"

    @property
    def ledger_url(self) -> str:
        return self.state_url or f"sqlite:///{(self.home / 'ledger.sqlite').resolve()}"


def load_toml(path: Path | None, home: Path | None) -> dict:
    """Read campaigns.toml: the given path, else ./campaigns.toml, else <home>/campaigns.toml."""
    candidates = [path] if path else [Path("campaigns.toml"), (home or DEFAULT_HOME) / "campaigns.toml"]
    for candidate in candidates:
        if candidate and candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise UsageError(f"{candidate}: not valid TOML ({exc})") from None
            leaked = sorted(key for key in _flatten(data) if key.rsplit(".", 1)[-1].lower() in SECRET_KEYS)
            if leaked:
                raise UsageError(f"{candidate}: secrets belong in the environment, not in campaigns.toml ({', '.join(leaked)})")
            return data
    if path:
        raise UsageError(f"{path}: config file not found")
    return {}


def _flatten(data: Mapping, prefix: str = "") -> dict:
    """Every key of a TOML document, tables and arrays of tables ([[watch]]) included, at any depth."""
    flat = {}
    for key, value in data.items():
        flat[prefix + key] = value
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            for index, table in enumerate(value):
                if isinstance(table, Mapping):
                    flat.update(_flatten(table, f"{prefix}{key}[{index}]."))
    return flat


ENVIRONMENT = {
    "provider": "CAMPAIGNS_PROVIDER",
    "magpipe_api_key": "MAGPIPE_API_KEY",
    "magpipe_base_url": "MAGPIPE_BASE_URL",
    "batchcall_api_key": "BATCHCALL_API_KEY",
    "batchcall_api_secret": "BATCHCALL_API_SECRET",
    "batchcall_base_url": "BATCHCALL_BASE_URL",
    "caller_id": "CAMPAIGNS_CALLER_ID",
    "agent_id": "CAMPAIGNS_AGENT_ID",
    "sandbox_speed": "CAMPAIGNS_SANDBOX_SPEED",
    "account_timezone": "CAMPAIGNS_ACCOUNT_TIMEZONE",
    "failpoint": "CAMPAIGNS_FAILPOINT",
    "timeout_seconds": "CAMPAIGNS_TIMEOUT",
    "retry_attempts": "CAMPAIGNS_RETRY_ATTEMPTS",
    "retry_budget_seconds": "CAMPAIGNS_RETRY_BUDGET",
    "retry_base_seconds": "CAMPAIGNS_RETRY_BASE",
    "settle_seconds": "CAMPAIGNS_SETTLE_SECONDS",
    "state_url": "CAMPAIGNS_STATE",
}


CREDENTIAL_FIELDS = ("magpipe_api_key", "batchcall_api_key", "batchcall_api_secret", "batchcall_base_url")


def provider_settings(flags: dict, env: Mapping[str, str], toml: dict) -> ProviderSettings:
    """Merge flags, environment and campaigns.toml into ProviderSettings; every secret is registered for redaction."""
    register(*(env.get(name) for name in SECRET_ENVIRONMENT))
    values = {k: v for k, v in toml.items() if k in ProviderSettings.model_fields and k not in SECRET_KEYS}
    values.update({k: env[name] for k, name in ENVIRONMENT.items() if k in ProviderSettings.model_fields and env.get(name)})
    values.update({k: v for k, v in flags.items() if v is not None})
    return build(ProviderSettings, **values)


def state_settings(
    home: Path, state_flag: str | None, env: Mapping[str, str], toml: dict, db_flag: Path | None = None
) -> StateSettings:
    return build(
        StateSettings, home=home, state_url=state_flag or env.get("CAMPAIGNS_STATE") or toml.get("state"),
        db=db_flag or env.get("CAMPAIGNS_DB") or toml.get("db"),
    )  # fmt: skip


def build(model: type[BaseModel], **values):
    """Validate settings, turning pydantic's errors into one line for a person."""
    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        plain = field in ("region", "batch_size") or field in SECRET_KEYS  # messages that already say what is wrong
        raise UsageError(message if plain else f"{field}: {message}") from None


def environment() -> dict[str, str]:
    """The process environment, read once at the CLI edge."""
    return dict(os.environ)
