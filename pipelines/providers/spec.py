"""What a dialect declares about itself (`Dialect`) and what a place batches go to is (`ProviderSpec`).

Each dialect's folder (pipelines/providers/<name>/) holds its client, its wire models, its
sandbox routes and, in its `__init__.py`, one `Dialect` and one `ProviderSpec`: the registry
lists the folders, and every command, the settings and the sandbox ask it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.providers.base import ProviderClient
    from pipelines.setting import Setting
    from pipelines.settings import Settings


@dataclass(frozen=True)
class Dialect:
    """A wire protocol and what it can do."""

    name: str
    batch_limit: int  # most contacts one batch may hold
    stops_running: bool  # can a batch that is dialling be stopped?
    moves_scheduled: bool  # can a started batch still waiting for its start time be given a new one?
    has_drafts: bool  # is a batch created as a draft and started by a second request?
    reads_back: bool  # can batches be listed by name and read by id (how an ambiguous create is resolved)?
    in_flight: int  # chunks submitted at once by default (each its own requests, in order)
    account_window: bool  # are a batch's calling hours sent as one window on the account's clock?
    settings: tuple[Setting, ...]  # its own settings (credentials, server), merged into the one settings table
    # a client for a sandbox at this URL, with the sandbox's credentials: (url, settings) → context manager
    sandbox_client: Callable[[str, Settings], AbstractContextManager[ProviderClient]]
    sandbox_routes: Callable[[Any], Any]  # the sandbox's routes for this dialect: (sandbox) → DialectRoutes
    sandbox_hint: str  # how to reach it on a sandbox, with {url}, {key}, {secret}: what `campaigns sandbox` prints


@dataclass(frozen=True)
class ProviderSpec:
    """A place batches are submitted to."""

    name: str
    dialect: Dialect
    credentials: tuple[str, ...]  # environment variables every request needs
    needs_caller_id: bool  # creating a batch needs the number calls come from
    open: Callable[[Settings, Path], AbstractContextManager[ProviderClient]]  # settings, home → a client, closed on exit


def later(module: str, name: str) -> Callable:
    """`module.name`, imported when first called: a dialect's declaration stays light (settings and --help
    import it), its client and sandbox routes load only when used."""

    def call(*args, **kwargs):
        return getattr(import_module(module), name)(*args, **kwargs)

    call.__qualname__ = f"{module}.{name}"
    return call
