"""One setting's declaration (`Setting`), the value readers it names, and `Secret`.

Apart from pipelines.settings so that a provider's folder can declare its own settings
(pipelines/providers/<dialect>/__init__.py) without importing the resolver that collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import UsageError
from pipelines.redact import register


class Secret:
    """A secret value: never in a repr, a log or an error; `get_secret_value()` when it must be sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# ---------------------------------------------------------------- how values are read (value, where it came from) → value


def read_text(value, name: str) -> str:
    return str(value).strip()


def read_path(value, name: str) -> Path:
    return Path(str(value)).expanduser()


def number_reader(convert: Callable[[str], float], what: str, allowed: Callable[[float], bool], bound: str) -> Callable[[Any, str], Any]:
    """A reader of numbers: `what` it must be when it is not one, `bound` (with {value}) when `allowed` refuses it."""

    def read(value, name: str):
        try:
            number = convert(str(value).strip())
        except ValueError:
            raise UsageError(f"{name} must be {what}, not {value!r}") from None
        if not allowed(number):
            raise UsageError(f"{name} must be {bound.format(value=repr(value))}")
        return number

    return read


positive_int = number_reader(int, "a whole number", lambda n: n >= 1, "at least 1")
positive_float = number_reader(float, "a number", lambda n: n > 0, "a positive number, not {value}")
non_negative_float = number_reader(float, "a number", lambda n: not n < 0, "≥ 0, not {value}")


def read_flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{name} must be true or false, not {value!r}")


def read_region(value, name: str) -> str:
    import phonenumbers

    text = str(value).strip().upper()
    if text not in phonenumbers.SUPPORTED_REGIONS:
        raise UsageError(f"unknown region {value!r} ({name}): use an ISO 3166 alpha-2 code such as US, GB, DE")
    return text


def read_timezone(value, name: str) -> str:
    from zoneinfo import available_timezones

    text = str(value).strip()
    if text != "UTC" and text not in available_timezones():
        raise UsageError(f"unknown timezone {value!r} ({name}): use an IANA name such as America/New_York or UTC")
    return text


def read_encoding(value, name: str) -> str:
    """A text encoding Python knows (utf-8, cp1252, mac_roman, latin-1, utf-16, …)."""
    import codecs

    text = str(value).strip()
    try:
        codecs.lookup(text)
    except LookupError:
        raise UsageError(f"{name}: unknown encoding {text!r} (for example utf-8, cp1252, mac_roman, latin-1, utf-16)") from None
    return text


def read_columns(value, name: str) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def read_secret(value, name: str) -> Secret:
    """A secret as read from the environment: surrounding whitespace dropped (a pasted CR or LF), refused —
    naming the variable, never the value — if it cannot be sent in an HTTP header."""
    text = str(value)
    register(text)
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{name} is set but empty")
    if any(not " " <= ch <= "~" for ch in stripped):
        raise UsageError(f"{name} contains a character that cannot be sent in an HTTP header (non-ASCII or a control "
                         "character); set it again without it")  # fmt: skip
    return Secret(stripped)


@dataclass(frozen=True)
class Setting:
    """One setting and every place it may come from."""

    name: str  # attribute of Settings
    default: Any
    help: str
    read: Callable[[Any, str], Any] = read_text
    flag: str | None = None  # the command-line option, for the commands that take it
    env: str | None = None
    toml: str | None = None  # key in campaigns.toml (and [[watch]] entries)
    secret: bool = False
    metavar: str | None = None
    many: bool = False  # a flag that may be repeated
