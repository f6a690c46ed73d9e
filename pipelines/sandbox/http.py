"""What every dialect's sandbox routes share: request errors, strict body parsing, credential checks, times.

A handler raises BadRequest (400) or NotFound (404); the dialect turns either into its own
error shape.
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from zoneinfo import available_timezones

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from schemas.provider import E164_PATTERN

TIMEZONES = frozenset(available_timezones()) | {"UTC"}
# Times a request may ask for: from 1973 (10**11 ms, below which a batchcall timestamp looks
# like seconds) to before 9000-01-01, which leaves the simulation centuries of room before
# Python's datetime ends (year 9999) however slow the calls or narrow the window.
MIN_TRIGGER_MS = 10**11
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
MAX_TRIGGER_MS = int(MAX_TIME * 1000)
LIST_LIMIT = 1000
MAX_OFFSET = 2**31 - 1


class BadRequest(Exception):
    """Raised inside a handler: becomes a 400 in the dialect's error shape."""


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


class NotFound(Exception):
    """Raised inside a handler: becomes a 404."""


def is_e164(value: str) -> bool:
    return re.fullmatch(E164_PATTERN, value) is not None


def guard(handler, body, error) -> Response:
    """Run a handler, its BadRequest or NotFound answered in the dialect's `error` shape."""
    try:
        return handler(body)
    except BadRequest as exc:
        return error(400, str(exc))
    except NotFound as exc:
        return error(404, str(exc))


def parse(model: type[BaseModel], body: dict):
    """Validate a request body strictly: JSON types as declared (no "5" for 5, no 1 for true)."""
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


def same_secret(request: Request, header: str, expected: str) -> bool:
    """Compare a credential header in constant time, whatever bytes it carries.

    Header values arrive as latin-1 text; comparing str with non-ASCII characters makes
    hmac.compare_digest raise, so compare the raw bytes against the UTF-8 of the secret.
    """
    sent = request.headers.get(header, "").encode("latin-1")
    return hmac.compare_digest(sent, expected.encode("utf-8"))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"



def parse_iso(value: str, field: str) -> float:
    """An ISO 8601 time as epoch seconds (no offset means UTC, the server's clock), before MAX_TIME."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{field} {clip(value, 60)!r} is not an ISO 8601 timestamp") from None
    try:
        seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, ValueError, OSError):  # the offset takes it past year 1 or 9999
        raise BadRequest(f"{field} {clip(value, 60)!r} is out of range") from None
    if seconds >= MAX_TIME:
        raise BadRequest(f"{field} {clip(value, 60)!r} is out of range (it must be before 9000-01-01)")
    return seconds


def check_trigger(ms: int) -> None:
    if ms < MIN_TRIGGER_MS:
        raise BadRequest("trigger_timestamp must be Unix time in milliseconds (this looks like seconds)")
    if ms >= MAX_TRIGGER_MS:
        raise BadRequest(f"trigger_timestamp must be Unix time in milliseconds before 9000-01-01 (below {MAX_TRIGGER_MS})")


def query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if re.fullmatch(r"[0-9]{1,10}", value) is None or not low <= int(value) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(value)
