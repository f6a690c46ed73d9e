"""Normalise stage: raw text cells → contacts (E.164, name, variables) and rejects (reason).

Phone parsing runs once per distinct (value, region) pair, then maps back to the rows:
contact lists repeat the same spellings, so this is both fast and a pure column operation.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from pipelines.arrow import text_array, text_series
from pipelines.columns import ColumnMap
from pipelines.fastphone import classify_columns
from pipelines.read import RawSheet
from pipelines.timezones import canonical_zones, known_zones
from schemas.contacts import (
    E164,
    EXTENSION_VARIABLE,
    NAME,
    RAW_VALUE,
    REASON,
    REGION,
    SOURCE_FILE,
    SOURCE_ROW,
    SOURCE_SHEET,
    TIMEZONE,
    VARIABLE_PREFIX,
    RejectReason,
)

# 4.15555E+09: how Excel writes a long number into CSV. Groups: integer part, fraction, exponent.
SCIENTIFIC = re.compile(r"\+?(\d+)(?:[.,](\d+))?[eE]\+?(\d+)")
# 4155551234.0: an integral float written by pandas or a database export.
INTEGRAL_DECIMAL = re.compile(r"(\+?\d+)\.0+")
BLANKS = " \t\r\n\u00a0\u2007\u202f\ufeff"

PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: RejectReason.INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: RejectReason.NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: RejectReason.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: RejectReason.TOO_SHORT,
    NumberParseException.TOO_LONG: RejectReason.TOO_LONG,
}
POSSIBILITY = {
    ValidationResult.INVALID_COUNTRY_CODE: RejectReason.INVALID_COUNTRY_CODE,
    ValidationResult.TOO_SHORT: RejectReason.TOO_SHORT,
    ValidationResult.TOO_LONG: RejectReason.TOO_LONG,
}
SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)

Parsed = tuple[str | None, RejectReason | None, str | None]  # (e164, reason, extension)


def classify_phone(raw: str, region: str) -> Parsed:
    """One phone cell → (E.164, None, extension) or (None, reason, None). The rule book."""
    text = raw.strip(BLANKS)
    if not text:
        return None, RejectReason.EMPTY, None
    if region not in SUPPORTED_REGIONS:
        return None, RejectReason.INVALID_REGION, None
    scientific = SCIENTIFIC.fullmatch(text)
    if scientific:
        whole, fraction, exponent = scientific.group(1), scientific.group(2) or "", int(scientific.group(3))
        if len(fraction) != exponent:
            return None, RejectReason.PRECISION_LOST, None  # the digits are gone; never guess them
        text = whole + fraction
    integral = INTEGRAL_DECIMAL.fullmatch(text)
    if integral:
        text = integral.group(1)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return None, PARSE_ERRORS.get(exc.error_type, RejectReason.NOT_A_NUMBER), None
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, PhoneNumberFormat.E164), None, number.extension or None
    reason = POSSIBILITY.get(phonenumbers.is_possible_number_with_reason(number), RejectReason.INVALID)
    return None, reason, None


@lru_cache(maxsize=1_000_000)
def _classify_cached(raw: str, region: str) -> Parsed:
    return classify_phone(raw, region)


def parse_phones(values: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classify phone cells exactly: one phonenumbers call per distinct (value, region).

    Returns object arrays (e164, reason, extension) with None where there is none.
    """
    keys = pd.MultiIndex.from_arrays([np.asarray(values, dtype=object), np.asarray(regions, dtype=object)])
    codes, uniques = keys.factorize()
    results = [_classify_cached(raw, region) for raw, region in uniques]
    parts = [np.empty(len(results), dtype=object) for _ in range(3)]
    for position, result in enumerate(results):
        for part, value in zip(parts, result):
            part[position] = value
    return tuple(part[codes] for part in parts)


_arrow = text_array
_text = text_series


def _strip(array: pa.Array) -> pa.Array:
    return pc.utf8_trim(array, characters=BLANKS)


PARALLEL_MIN_ROWS = 200_000  # below this, one thread is as fast


def _classify_in_parallel(raw: pa.Array, default_region: str, overrides: pa.Array | None):
    """classify_columns on halves of the column in two threads (Arrow kernels release the GIL)."""
    if len(raw) < PARALLEL_MIN_ROWS:
        return classify_columns(raw, default_region, overrides)
    half = len(raw) // 2
    parts = [(raw.slice(0, half), overrides.slice(0, half) if overrides is not None else None),
             (raw.slice(half), overrides.slice(half) if overrides is not None else None)]  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda part: classify_columns(part[0], default_region, part[1]), parts))
    e164 = pa.concat_arrays([results[0][0], results[1][0]])
    return e164, np.concatenate([results[0][1], results[1][1]]), np.concatenate([results[0][2], results[1][2]])


def classify_column(raw: pa.Array, default_region: str, overrides: pa.Array | None) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(e164, reason, extension) for a column: the columnar path first, the exact path for what it leaves."""
    e164, reason, handled = _classify_in_parallel(raw, default_region, overrides)
    extension = np.full(len(raw), None, dtype=object)
    rest = np.flatnonzero(~handled)
    if len(rest):
        values = raw.take(pa.array(rest)).to_numpy(zero_copy_only=False)
        if overrides is None:
            regions = np.full(len(rest), default_region, dtype=object)
        else:
            chosen = overrides.take(pa.array(rest)).to_numpy(zero_copy_only=False)
            regions = np.where(chosen == "", default_region, chosen).astype(object)
        exact_e164, exact_reason, exact_extension = parse_phones(values, regions)
        found = np.array([v is not None for v in exact_e164], dtype=bool)
        if found.any():
            fill = np.zeros(len(raw), dtype=bool)
            fill[rest[found]] = True
            e164 = pc.replace_with_mask(e164, pa.array(fill), pa.array(list(exact_e164[found]), type=pa.string()))
        reason[rest] = exact_reason
        extension[rest] = exact_extension
    return e164, reason, extension


def normalise_sheet(sheet: RawSheet, columns: ColumnMap, default_region: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split one sheet into contacts (e164, name, var:* columns) and rejects (reason per row)."""
    cells = sheet.cells
    raw = _arrow(cells[columns.phone])
    overrides = None
    if columns.country is not None:
        overrides = pc.utf8_upper(_strip(_arrow(cells[columns.country])))
    e164, reason, extension = classify_column(raw, default_region, overrides)
    ok = e164.is_valid().to_numpy(zero_copy_only=False)
    zones = None
    if columns.timezone is not None:
        zones = _strip(_arrow(cells[columns.timezone]))
        named = pc.not_equal(zones, "").to_numpy(zero_copy_only=False)
        zones = canonical_zones(zones)
        known = pc.is_in(zones, value_set=pa.array(sorted(known_zones()))).to_numpy(zero_copy_only=False)
        bad = ok & named & ~known
        reason[bad] = RejectReason.INVALID_TIMEZONE
        ok &= ~bad
    keep, drop = pa.array(ok), pa.array(~ok)

    rejects = pd.DataFrame(
        {
            SOURCE_FILE: _constant(sheet.source_file, int((~ok).sum())),
            SOURCE_SHEET: sheet.sheet,
            SOURCE_ROW: sheet.rows[~ok],
            RAW_VALUE: _text(raw.filter(drop)),
            REASON: pd.Series(reason[~ok], dtype=object).map(str),
        }
    )
    contacts = pd.DataFrame(
        {
            SOURCE_FILE: _constant(sheet.source_file, int(ok.sum())),
            SOURCE_SHEET: sheet.sheet,
            SOURCE_ROW: sheet.rows[ok],
            E164: _text(e164.filter(keep)),
            REGION: _text(overrides.filter(keep)) if overrides is not None else default_region,
            NAME: _text(_names(cells, columns).filter(keep)),
        }
    )
    if overrides is not None:
        contacts[REGION] = contacts[REGION].where(contacts[REGION] != "", default_region)
    if zones is not None:
        contacts[TIMEZONE] = _text(zones.filter(keep))
    for key, index in columns.variables.items():
        contacts[VARIABLE_PREFIX + key] = _text(_strip(_arrow(cells[index])).filter(keep))
    if (extension[ok] != None).any():  # noqa: E711 - element-wise, in C
        contacts[VARIABLE_PREFIX + EXTENSION_VARIABLE] = pd.Series(extension[ok], dtype=object).fillna("")
    return contacts, rejects


def _constant(value: str, count: int) -> pd.Categorical:
    """A column holding one value: stored once, not a million times."""
    return pd.Categorical.from_codes(np.zeros(count, dtype=np.int8), categories=[value])


def _names(cells: pd.DataFrame, columns: ColumnMap) -> pa.Array:
    if columns.name is not None:
        return _strip(_arrow(cells[columns.name]))
    parts = [_strip(_arrow(cells[i])) for i in (columns.first_name, columns.last_name) if i is not None]
    if not parts:
        return pa.array([""] * len(cells), type=pa.string())
    if len(parts) == 1:
        return parts[0]
    return pc.utf8_trim(pc.binary_join_element_wise(parts[0], parts[1], " "), characters=" ")


def variables_json(contacts: pd.DataFrame) -> pd.Series:
    """The var:* columns of each row as one JSON object, empty cells left out, as json.dumps writes it.

    Assembled by DuckDB (concat_ws skips empty members, on every core, reading the Arrow
    columns in place); the rare cells that need escaping are redone with json.dumps.
    """
    import duckdb

    keys = [column for column in contacts.columns if column.startswith(VARIABLE_PREFIX)]
    if not keys or not len(contacts):
        return pd.Series("{}", index=contacts.index, dtype=object)
    table = pa.table({f"v{i}": _arrow(contacts[column]) for i, column in enumerate(keys)})
    names = [json.dumps(column[len(VARIABLE_PREFIX) :], ensure_ascii=False) for column in keys]
    members = ", ".join(
        f"CASE WHEN v{i} = '' THEN NULL ELSE '{_sql(name)}:\"' || v{i} || '\"' END" for i, name in enumerate(names)
    )
    special = " OR ".join(f"regexp_matches(v{i}, '{_sql(NEEDS_ESCAPE)}')" for i in range(len(keys)))
    with duckdb.connect() as db:
        db.register("variables", table)
        result = db.sql(f"SELECT '{{' || concat_ws(',', {members}) || '}}' AS j, {special} AS s FROM variables").to_arrow_table()
    joined, needs = result.column("j").combine_chunks(), result.column("s").combine_chunks().to_numpy(zero_copy_only=False)
    if needs.any():
        index = np.flatnonzero(needs)
        rows = table.take(pa.array(index)).to_pylist()
        exact = [json.dumps({name[1:-1]: row[f"v{i}"] for i, name in enumerate(names) if row[f"v{i}"]}, ensure_ascii=False,
                            separators=(",", ":")) for row in rows]  # fmt: skip
        joined = pc.replace_with_mask(joined, pa.array(needs), pa.array(exact, type=pa.string()))
    if len(joined) != len(contacts):
        raise AssertionError("variables_json lost rows")
    return text_series(joined, contacts.index)


def _sql(text: str) -> str:
    """Text as the inside of an SQL string literal."""
    return text.replace("'", "''")


NEEDS_ESCAPE = r'[\x00-\x1f"\\]'  # the characters json.dumps(ensure_ascii=False) escapes
