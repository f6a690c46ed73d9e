"""Every provider the tool can submit to, declared once: its dialect, limits, capabilities and credentials.

Commands ask this registry (and a dialect's capabilities), never a provider's name. The
ledger records each chunk's provider, so follow-up commands (sync, cancel, reschedule,
retry) open the clients they need themselves, through `Providers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import UsageError

if TYPE_CHECKING:
    from pipelines.ledger import Ledger
    from pipelines.settings import Settings
    from pipelines.providers.base import ProviderClient


@dataclass(frozen=True)
class Dialect:
    """A wire protocol and what it can do."""

    name: str
    batch_limit: int  # most contacts one batch may hold
    stops_running: bool  # can a batch that is dialling be stopped?
    moves_scheduled: bool  # can a started batch still waiting for its start time be given a new one?
    in_flight: int  # chunks submitted at once by default (each its own requests, in order)
    account_window: bool  # are a batch's calling hours sent as one window on the account's clock?


@dataclass(frozen=True)
class ProviderSpec:
    """A place batches are submitted to."""

    name: str
    dialect: Dialect
    credentials: tuple[str, ...]  # environment variables every request needs
    needs_caller_id: bool  # creating a batch needs the number calls come from
    open: Callable[[Settings, Path], contextmanager]  # settings, home → a context manager yielding a client


MAGPIPE = Dialect("magpipe", batch_limit=500, stops_running=True, moves_scheduled=False, in_flight=4, account_window=True)
BATCHCALL = Dialect("batchcall", batch_limit=1000, stops_running=False, moves_scheduled=True, in_flight=4,
                    account_window=False)
DIALECTS = {dialect.name: dialect for dialect in (MAGPIPE, BATCHCALL)}


@contextmanager
def _open_magpipe(settings: Settings, home: Path) -> Iterator[ProviderClient]:
    from pipelines.providers.magpipe import MagpipeClient

    client = MagpipeClient(
        settings.magpipe_base_url, settings.magpipe_api_key.get_secret_value(), caller_id=settings.caller_id,
        agent_id=settings.agent_id, timeout=settings.timeout_seconds, credentials=("MAGPIPE_API_KEY",),
    )  # fmt: skip
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _open_batchcall(settings: Settings, home: Path) -> Iterator[ProviderClient]:
    from pipelines.providers.batchcall import BatchcallClient

    client = BatchcallClient(
        settings.batchcall_base_url, settings.batchcall_api_key.get_secret_value(),
        settings.batchcall_api_secret.get_secret_value(), from_number=settings.caller_id, agent_id=settings.agent_id,
        timeout=settings.timeout_seconds, credentials=("BATCHCALL_API_KEY", "BATCHCALL_API_SECRET"),
    )  # fmt: skip
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _open_sandbox(settings: Settings, home: Path) -> Iterator[ProviderClient]:
    """The embedded sandbox: started in-process on loopback, its state in the home folder; spoken to in batchcall."""
    from pipelines.settings import SANDBOX_CALLER_ID
    from pipelines.providers.batchcall import BatchcallClient
    from pipelines.sandbox.app import SandboxConfig
    from pipelines.sandbox.server import running

    home.mkdir(parents=True, exist_ok=True)
    with running(SandboxConfig(state_path=home / "sandbox.sqlite", speed=settings.sandbox_speed)) as sandbox:
        client = BatchcallClient(
            sandbox.url, "sandbox-key", "sandbox-secret", from_number=settings.caller_id or SANDBOX_CALLER_ID,
            agent_id=settings.agent_id, timeout=settings.timeout_seconds, label="sandbox",
        )  # fmt: skip
        try:
            yield client
        finally:
            client.close()


REGISTRY: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("sandbox", BATCHCALL, credentials=(), needs_caller_id=False, open=_open_sandbox),
        ProviderSpec("magpipe", MAGPIPE, credentials=("MAGPIPE_API_KEY",), needs_caller_id=True, open=_open_magpipe),
        ProviderSpec("batchcall", BATCHCALL, credentials=("BATCHCALL_API_KEY", "BATCHCALL_API_SECRET", "BATCHCALL_BASE_URL"),
                     needs_caller_id=True, open=_open_batchcall),  # fmt: skip
    )
}
DEFAULT_PROVIDER = "sandbox"


def spec(name: str) -> ProviderSpec:
    """The provider called `name`; a name nobody declared is a usage mistake."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown provider {name!r}: use {', '.join(REGISTRY)}") from None


def batch_limit(provider: str, requested: int | None = None) -> int:
    """min(requested, the provider's limit)."""
    limit = spec(provider).dialect.batch_limit
    return limit if requested is None else min(requested, limit)


def campaign_provider(settings: Settings, ledger: Ledger | None, campaign: str) -> str:
    """Where a campaign's new batches go: the provider chosen (flag, environment, campaigns.toml), else the one
    its last import used, else the embedded sandbox."""
    if settings.provider is not None:
        return settings.provider
    return (ledger.campaign_provider(campaign) if ledger is not None else None) or DEFAULT_PROVIDER


class Providers:
    """Clients opened on first use, one per provider, all closed together.

    `creating`: the caller will create batches, so a caller number is required too (reading,
    stopping and moving batches need only the credentials).
    """

    def __init__(self, settings: Settings, home: Path, *, creating: bool = False):
        self.settings = settings
        self.home = home
        self.creating = creating
        self._clients: dict[str, ProviderClient] = {}
        self._stack = ExitStack()

    def client(self, name: str) -> ProviderClient:
        if name not in self._clients:
            self.settings.require_credentials(name, creating=self.creating)
            self._clients[name] = self._stack.enter_context(spec(name).open(self.settings, self.home))
        return self._clients[name]

    def __enter__(self) -> Providers:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
