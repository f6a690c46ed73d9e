"""The HTTP edge shared by both dialects: every httpx failure becomes one of our errors here.

- not processed (connection refused, 429, 503): TransientProviderError, safe to send again;
- maybe processed (timeout, reset, 5xx) on a mutating request: AmbiguousOutcome, read back;
- refused (401/403, other 4xx): ProviderError, terminal.
Nothing above this module catches an httpx exception.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import pydantic_core
from pydantic import BaseModel

from pipelines.errors import AmbiguousOutcome, NotFoundError, ProviderError, ProviderUnreachable, TransientProviderError
from schemas.provider import ChunkPeople, RemoteBatch, RemoteBatchDetail, Schedule

if TYPE_CHECKING:  # imported by the edge itself: a command that sends nothing (a `sync` with nothing to read) skips it
    import httpx


class ProviderClient(Protocol):
    """What submit and sync need from a provider."""

    dialect: str
    label: str

    def create_draft(self, name: str, people: ChunkPeople, schedule: Schedule) -> RemoteBatch: ...
    def start(self, batch_id: str, schedule: Schedule) -> None: ...
    def find_by_name(self, name: str, since: datetime) -> list[RemoteBatch]: ...
    def get_batch(self, batch_id: str) -> RemoteBatch: ...
    def get_detail(self, batch_id: str) -> RemoteBatchDetail: ...
    def discard_draft(self, batch_id: str) -> None: ...
    def stop(self, batch_id: str, status: str) -> None: ...
    def close(self) -> None: ...


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds, from either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


class RawJson(bytes):
    """A request body already serialised as JSON (built from columns by the caller), sent as it is."""


class HttpEdge:
    """One httpx.Client for one provider; `send` returns a 2xx response or raises our errors."""

    def __init__(self, base_url: str, headers: dict[str, str], *, timeout: float, label: str, transport=None,
                 credentials: tuple[str, ...] = ()):  # fmt: skip
        self.label = label
        self.credentials = credentials  # the environment variables to check when the provider refuses them
        import httpx

        self._httpx = httpx
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def send(self, method: str, path: str, *, mutating: bool, body: BaseModel | dict | RawJson | None = None,
             params=None) -> httpx.Response:  # fmt: skip
        """Send a request; a body (a request model, fields left unset omitted, a plain dict, or RawJson) is sent as JSON."""
        what = f"{self.label} {method} {path}"
        httpx = self._httpx
        content, headers = None, None
        if body is not None:
            if isinstance(body, RawJson):
                content = bytes(body)
            elif isinstance(body, BaseModel):
                content = body.model_dump_json(exclude_none=True)
            else:
                content = pydantic_core.to_json(body)
            headers = {"content-type": "application/json"}
        try:
            response = self._http.request(method, path, content=content, headers=headers, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ProviderUnreachable(f"cannot reach {self.label} ({_reason(exc)})") from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            if mutating:
                raise AmbiguousOutcome(f"{what}: no answer ({_reason(exc)}); the change may or may not have been made") from exc
            raise TransientProviderError(f"{what}: no answer ({_reason(exc)})") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"{what}: {_reason(exc)}") from exc
        status = response.status_code
        if status < 300:
            return response
        message = _error_message(response)
        if status in (429, 503):
            raise TransientProviderError(
                f"{what}: {status} {message}", status_code=status, retry_after=retry_after_seconds(response.headers.get("retry-after"))
            )
        if status >= 500:
            if mutating:
                raise AmbiguousOutcome(f"{what}: {status} {message}; the change may or may not have been made", status_code=status)
            raise TransientProviderError(f"{what}: {status} {message}", status_code=status)
        if status in (401, 403):
            check = f"; check {', '.join(self.credentials)}" if self.credentials else ""
            raise ProviderError(f"{self.label} refused the credentials ({status} {message}){check}", status_code=status)
        if status == 404:
            raise NotFoundError(f"{what}: not found ({message})", status_code=status)
        raise ProviderError(f"{what}: {status} {message}", status_code=status)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def answer(response: httpx.Response):
    """A response's JSON (ValueError if it is not JSON)."""
    return pydantic_core.from_json(response.content)


def _error_message(response: httpx.Response) -> str:
    try:
        body = answer(response)
    except ValueError:
        return response.reason_phrase or ""
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or "")[:300]
    return ""


def parse_time(value) -> datetime | None:
    """ISO 8601 strings or Unix milliseconds → aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
