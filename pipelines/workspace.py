"""Where a command works, resolved once and passed whole: its settings, the ledger, the home folder, the DuckDB file.

The CLI builds one per command (`Workspace.open(settings)`) and `watch` one per inbox (its
[[watch]] entry's settings over the same ledger); import, submit, sync, cancel, reschedule
and retry take it instead of (settings, ledger, home, db). (The notebook API only reads
DuckDB: it resolves the same settings and needs no ledger.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.settings import Settings

if TYPE_CHECKING:
    from pipelines.errors import PublishError
    from pipelines.ledger import Ledger
    from pipelines.providers.registry import Providers


@dataclass(frozen=True)
class Workspace:
    settings: Settings
    ledger: Ledger
    publishing: bool = True  # False: the DuckDB file is left alone (a dry run, a test of the ledger alone)
    on_open: Callable[[str], None] | None = field(default=None, compare=False)  # told each provider opened (CLI notice)

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, *, read_only: bool = False, on_open: Callable[[str], None] | None = None) -> Iterator[Workspace]:
        """The settings' ledger, opened for the block."""
        with settings.open_ledger(read_only=read_only) as ledger:
            yield cls(settings, ledger, on_open=on_open)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def db(self) -> Path | None:
        """The analysts' DuckDB file, None when this workspace does not publish."""
        return self.settings.db_path if self.publishing else None

    def without_publishing(self) -> Workspace:
        return replace(self, publishing=False)

    def for_campaign(self, campaign: str) -> Workspace:
        """For a follow-up that creates batches (retry, reschedule, resumed submission): a caller id or agent not
        given now is the one the campaign's last import used."""
        latest = self.ledger.latest_import(campaign)
        if latest is None:
            return self
        settings = self.settings.with_(caller_id=self.settings.caller_id or latest.caller_id,
                                       agent_id=self.settings.agent_id or latest.agent_id)  # fmt: skip
        return replace(self, settings=settings)

    def publish(self) -> PublishError | None:
        """Publish the ledger's changes to the DuckDB file (nothing when not publishing). A failure is returned, not
        raised: the command still reports what it did (the ledger holds it), then exits 7; the next command that
        publishes catches the file up."""
        from pipelines.errors import PublishError
        from pipelines.publish import publish

        if self.db is None:
            return None
        try:
            publish(self.ledger, self.db)
        except PublishError as exc:
            return exc
        return None

    def providers(self, *, creating: bool = False) -> Providers:
        """The providers' clients, opened on first use and closed together (`creating`: a caller number is needed)."""
        from pipelines.providers.registry import Providers

        return Providers(self.settings, self.home, creating=creating, on_open=self.on_open)
