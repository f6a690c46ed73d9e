"""One redaction step for every text that leaves the process: errors, logs, the ledger, DuckDB.

Secrets are registered when settings read them from the environment (`register`); every
sink passes its text through `redact`, which replaces each registered value — and the
forms it takes in a Python or JSON repr (`\\r`, `\\n` escaped) — with `***`. Nothing is
registered by importing this module: a notebook that never reads credentials has none.
"""

from __future__ import annotations

import json

MASK = "***"
_secrets: set[str] = set()


def register(*values: str | None) -> None:
    """Remember secret values (as given and stripped) so that `redact` hides them wherever they appear."""
    for value in values:
        if not value:
            continue
        for form in {value, value.strip()}:
            if form:
                _secrets.add(form)
                _secrets.add(repr(form)[1:-1])  # as it appears inside b'…' or '…' in a message
                _secrets.add(json.dumps(form)[1:-1])


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    if not _secrets or not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def forget() -> None:
    """Drop every registered secret (tests)."""
    _secrets.clear()


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as its scheme only
        return url.split(":", 1)[0] + ":…"
