"""Plain text for people: aligned columns and plurals, the same on a terminal, in a pipe and in cron mail.

Lines are never wrapped or cut: a long file name stays whole, and a table is as wide as it
needs to be. Light on purpose (no rich): `campaigns report` loads only this and DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence


def plural(count: int, one: str, many: str) -> str:
    """`one` or `many`, as `count` asks: 1 batch, 2 batches."""
    return one if count == 1 else many


def moment(at, zone: str = "UTC") -> str:
    """'2026-12-03 14:00 UTC (2026-12-03 08:00 America/Chicago)': a UTC time, and what the clocks of `zone` show then."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    local = f" ({at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone})" if zone != "UTC" else ""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC{local}"


def aligned(header: Sequence[str], rows: Sequence[Sequence[object]], *, left: int = 1) -> list[str]:
    """A table as lines: a header, then one line per row; the first `left` columns left-aligned, the others right."""
    table = [[str(cell) for cell in header]] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) if i < left else cell.rjust(width) for i, (cell, width) in enumerate(zip(line, widths))).rstrip()
            for line in table]  # fmt: skip


def blocks(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A table too wide for a terminal, turned on its side: one block per row, 'name  value' per line."""
    width = max(len(name) for name in header[1:])
    lines = []
    for row in rows:
        lines.append(str(row[0]))
        lines += [f"  {name.ljust(width)}  {value}" for name, value in zip(header[1:], row[1:])]
    return lines
