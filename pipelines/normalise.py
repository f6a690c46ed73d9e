"""Normalise stage: raw text cells → contacts (E.164, name, variables) and rejects (reason).

Phone parsing runs once per distinct (value, region) pair, then maps back to the rows:
contact lists repeat the same spellings, so this is both fast and a pure column operation.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from pipelines.columns import ColumnMap
from pipelines.read import RawSheet
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


def parse_phones(values: pd.Series, regions: pd.Series) -> pd.DataFrame:
    """Classify a column of phone cells: one phonenumbers call per distinct (value, region)."""
    keys = pd.MultiIndex.from_arrays([values.to_numpy(dtype=object), regions.to_numpy(dtype=object)])
    codes, uniques = keys.factorize()
    results = [_classify_cached(raw, region) for raw, region in uniques]
    e164, reason, extension = (np.array(part, dtype=object) for part in zip(*results)) if results else ([], [], [])
    return pd.DataFrame(
        {
            E164: np.asarray(e164, dtype=object)[codes],
            REASON: np.asarray(reason, dtype=object)[codes],
            EXTENSION_VARIABLE: np.asarray(extension, dtype=object)[codes],
        },
        index=values.index,
    )


def normalise_sheet(sheet: RawSheet, columns: ColumnMap, default_region: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split one sheet into contacts (e164, name, var:* columns) and rejects (reason per row)."""
    cells = sheet.cells
    raw = cells[columns.phone].astype(str)
    if columns.country is not None:
        region = cells[columns.country].astype(str).str.strip(BLANKS).str.upper()
        region = region.where(region != "", default_region)
    else:
        region = pd.Series(default_region, index=cells.index, dtype=object)
    parsed = parse_phones(raw, region)
    ok = parsed[E164].notna().to_numpy()

    origin = pd.DataFrame(
        {SOURCE_FILE: sheet.source_file, SOURCE_SHEET: sheet.sheet, SOURCE_ROW: sheet.rows},
        index=cells.index,
    )
    rejects = origin[~ok].copy()
    rejects[RAW_VALUE] = raw[~ok]
    rejects[REASON] = parsed.loc[~ok, REASON].map(str)

    contacts = origin[ok].copy()
    contacts[E164] = parsed.loc[ok, E164]
    contacts[REGION] = region[ok]
    contacts[NAME] = _names(cells[ok], columns)
    for key, index in columns.variables.items():
        contacts[VARIABLE_PREFIX + key] = cells.loc[ok, index].astype(str).str.strip(BLANKS)
    extension = parsed.loc[ok, EXTENSION_VARIABLE]
    if extension.notna().any():
        contacts[VARIABLE_PREFIX + EXTENSION_VARIABLE] = extension.fillna("")
    return contacts.reset_index(drop=True), rejects.reset_index(drop=True)


def _names(cells: pd.DataFrame, columns: ColumnMap) -> pd.Series:
    if columns.name is not None:
        return cells[columns.name].astype(str).str.strip(BLANKS)
    parts = [cells[i].astype(str).str.strip(BLANKS) for i in (columns.first_name, columns.last_name) if i is not None]
    if not parts:
        return pd.Series("", index=cells.index, dtype=object)
    joined = parts[0] if len(parts) == 1 else (parts[0] + " " + parts[1]).str.strip()
    return joined


def variables_json(contacts: pd.DataFrame) -> pd.Series:
    """The var:* columns of each row as one JSON object, empty cells left out."""
    keys = [column for column in contacts.columns if column.startswith(VARIABLE_PREFIX)]
    if not keys:
        return pd.Series("{}", index=contacts.index, dtype=object)
    # json.dumps escapes every control character, so \x1f cannot occur inside a fragment.
    joined = None
    for column in keys:
        values = contacts[column].fillna("").astype(str)
        name = json.dumps(column[len(VARIABLE_PREFIX) :], ensure_ascii=False)
        fragment = (name + ":" + values.map(lambda v: json.dumps(v, ensure_ascii=False))).where(values != "", "")
        joined = fragment if joined is None else joined + "\x1f" + fragment
    body = joined.str.replace(r"\x1f+", "\x1f", regex=True).str.strip("\x1f").str.replace("\x1f", ",")
    return "{" + body + "}"
