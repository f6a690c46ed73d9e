"""Event logs for unattended runs: readable lines by default, one JSON object per line for collectors."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from pipelines.redact import redact

PLAIN = re.compile(r"[\w.:/@+,-]+")  # a value shown as it is in a text line; anything else (spaces, =, newlines) is quoted


class EventLog:
    """`log.info("file_imported", campaign=…, file=…, counts={…})` → one line on stderr."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None):
        if fmt not in ("text", "json"):
            raise ValueError(fmt)
        self.fmt = fmt
        self.stream = stream or sys.stderr

    def emit(self, level: str, event: str, **fields) -> None:
        fields = {k: v for k, v in fields.items() if v is not None}
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.fmt == "json":
            line = json.dumps({"time": stamp, "level": level, "event": event, **fields}, default=str)
        else:
            parts = []
            for key, value in fields.items():
                if isinstance(value, dict):
                    parts += [f"{k}={v}" for k, v in value.items()]
                else:
                    text = str(value)
                    parts.append(f"{key}={text if PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)}")
            line = f"{stamp} {level.upper():<5} {event} " + " ".join(parts)
        print(redact(line.rstrip()), file=self.stream, flush=True)

    def info(self, event: str, **fields) -> None:
        self.emit("info", event, **fields)

    def warning(self, event: str, **fields) -> None:
        self.emit("warning", event, **fields)

    def error(self, event: str, **fields) -> None:
        self.emit("error", event, **fields)
