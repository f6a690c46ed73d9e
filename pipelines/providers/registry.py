"""Every dialect and provider the tool can submit to, listed once; each declares itself in its own folder.

Commands, the settings and the sandbox ask this registry (and a dialect's capabilities),
never a provider's name. The
ledger records each chunk's provider, so follow-up commands (sync, cancel, reschedule,
retry) open the clients they need themselves, through `Providers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import UsageError
from pipelines.providers.spec import Dialect, ProviderSpec

if TYPE_CHECKING:
    from pipelines.ledger import Ledger
    from pipelines.settings import Settings
    from pipelines.providers.base import ProviderClient


# The dialects, one folder each (pipelines/providers/<name>/): a third is its folder and one more name here.
DIALECT_FOLDERS = ("magpipe", "batchcall")
EMBEDDED_DIALECT = "batchcall"  # what the embedded sandbox is spoken to in (it answers every dialect)

_FOLDERS = [import_module(f"pipelines.providers.{folder}") for folder in DIALECT_FOLDERS]
DIALECTS: dict[str, Dialect] = {folder.DIALECT.name: folder.DIALECT for folder in _FOLDERS}
for _dialect in DIALECTS.values():  # exactly-once submission creates a draft, then reads back what an ambiguous answer did
    if not (_dialect.has_drafts and _dialect.reads_back):
        raise ImportError(f"dialect {_dialect.name}: the submitter needs drafts and read endpoints (has_drafts, reads_back)")


@contextmanager
def _open_sandbox(settings: Settings, home: Path) -> Iterator[ProviderClient]:
    """The embedded sandbox: started in-process on loopback, its state in the home folder."""
    from pipelines.sandbox.app import SandboxConfig
    from pipelines.sandbox.server import running

    home.mkdir(parents=True, exist_ok=True)
    with running(SandboxConfig(state_path=home / "sandbox.sqlite", speed=settings.sandbox_speed)) as sandbox:
        with DIALECTS[EMBEDDED_DIALECT].sandbox_client(sandbox.url, settings) as client:
            yield client


REGISTRY: dict[str, ProviderSpec] = {
    "sandbox": ProviderSpec("sandbox", DIALECTS[EMBEDDED_DIALECT], credentials=(), needs_caller_id=False, open=_open_sandbox),
    **{folder.PROVIDER.name: folder.PROVIDER for folder in _FOLDERS},
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

    def __init__(self, settings: Settings, home: Path, *, creating: bool = False,
                 on_open: Callable[[str], None] | None = None):  # fmt: skip
        self.settings = settings
        self.home = home
        self.creating = creating
        self.on_open = on_open  # told each provider's name as its client is opened (the CLI's sandbox notice)
        self._clients: dict[str, ProviderClient] = {}
        self._stack = ExitStack()

    def client(self, name: str) -> ProviderClient:
        if name not in self._clients:
            self.settings.require_credentials(name, creating=self.creating)
            self._clients[name] = self._stack.enter_context(spec(name).open(self.settings, self.home))
            if self.on_open is not None:
                self.on_open(name)
        return self._clients[name]

    def __enter__(self) -> Providers:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
