"""A naive reference of the pipeline's decisions: one row at a time, the rule book per cell.

The pipeline works on whole columns, in batches, on several threads; this reads each CSV
with the standard library and decides each row with `classify_phone` (phonenumbers
itself) and `exact_zones`. The property tests compare the two on generated files.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

from pipelines.ingest.normalise import BLANKS, classify_phone
from pipelines.ingest.timezones import exact_zones


@dataclass
class Reference:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    rejected: list[tuple] = field(default_factory=list)  # (file, row, raw, reason)
    duplicates: list[tuple] = field(default_factory=list)  # (file, row, e164, first file, first row)
    suppressed: list[tuple] = field(default_factory=list)  # (file, row, e164)
    accepted: list[tuple] = field(default_factory=list)  # (file, row, e164, name, variables, zones), in arrival order


def reference(paths, *, phone="Phone", name="Name", region="US", suppressed=frozenset()) -> Reference:
    """What the pipeline must decide for CSV files whose columns are a phone, a name and other variables."""
    result, first = Reference(), {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            grid = list(csv.reader(handle))
        while grid and not any(cell.strip() for cell in grid[-1]):
            grid.pop()  # blank rows after the last data row are not rows
        start = next((i for i, row in enumerate(grid) if any(cell.strip() for cell in row)), len(grid))
        header, body = (grid[start], grid[start + 1 :]) if start < len(grid) else ([], [])
        counts = result.counts.setdefault(str(path), {"rows_read": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "suppressed": 0})
        for offset, cells in enumerate(body):
            row = start + 2 + offset
            cells = dict(zip(header, cells))
            counts["rows_read"] += 1
            e164, reason, extension = classify_phone(cells.get(phone, ""), region)
            if reason is not None:
                result.rejected.append((str(path), row, cells.get(phone, ""), str(reason), _detail(str(reason), cells)))
                counts["rejected"] += 1
            elif e164 in suppressed:
                result.suppressed.append((str(path), row, e164))
                counts["suppressed"] += 1
            elif e164 in first:
                result.duplicates.append((str(path), row, e164, *first[e164]))
                counts["duplicates"] += 1
            else:
                first[e164] = (str(path), row)
                variables = {key.lower(): _text(value) for key, value in cells.items()
                             if key not in (phone, name) and _text(value)}  # fmt: skip
                if extension:
                    variables["phone_extension"] = extension
                result.accepted.append((str(path), row, e164, _text(cells.get(name, "")), variables, exact_zones(e164)))
                counts["accepted"] += 1
    return result


def _text(value: str) -> str:
    """A name or variable as the contact gets it: control characters and line separators (and the spaces around them) one
    space, characters that only hide or reorder text dropped, trimmed."""
    value = re.sub(" *[\x00-\x1f\x7f-\x9f\u2028\u2029]+ *", " ", value)
    return re.sub("[\u200b\u2060\u00ad\ufeff\u202a-\u202e\u2066-\u2069]+", "", value).strip(BLANKS)


def _detail(reason: str, cells: dict[str, str]) -> str:
    """An `empty` phone in a row that holds other text quotes the first of it."""
    held = next((" ".join(value.split()) for value in cells.values() if value.strip()), "")
    if reason != "empty" or not held:
        return ""
    return f"no phone number; the row holds '{held[:60]}{'…' if len(held) > 60 else ''}'"
