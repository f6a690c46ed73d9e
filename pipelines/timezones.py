"""Each recipient's timezone(s), from the number, as phonenumbers.timezone would give them — for whole columns.

phonenumbers' `time_zones_for_number` looks at the number's type: geographical numbers
(fixed line, fixed-line-or-mobile, and mobiles in the few countries whose mobiles are
geographical) get the zones of their longest known prefix (area-code level for North
America); every other type gets the zones of its whole country. Deciding the type needs
the metadata patterns, so per number it costs tens of microseconds. This module does the
same over the distinct numbers of a column with RE2 (the pattern machinery of
pipelines.fastphone); codes whose patterns RE2 cannot run go through phonenumbers itself.
tests/test_hours.py checks both agree.

A recipient's zones are one string, sorted and joined with "|" ("America/Halifax|America/St_Johns"):
a number whose prefix spans zones may be called only when every one of them allows it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from zoneinfo import available_timezones

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from pipelines.arrow import text_array, text_series
from pipelines.fastphone import COUNTRY_CODES, Desc, _matches_desc, rules_for_region
from schemas.contacts import E164, TIMEZONE

PARALLEL_FROM = 100_000
FALLBACK_ZONE = "UTC"  # a number neither its prefix nor its country places anywhere (rare)
# phonenumbers' _number_type_helper checks these before fixed line and mobile; all are not geographical
NON_GEOGRAPHIC_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")
GEO_MOBILE_COUNTRIES = frozenset({52, 54, 55, 62, 86})  # phonenumbers' _GEO_MOBILE_COUNTRIES


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def canonical_zones(names: pa.Array) -> pa.Array:
    """IANA names as spelled by the tz database, whatever their case ('america/new_york'); unknown ones unchanged."""
    spelled = sorted(known_zones())
    found = pc.index_in(pc.utf8_lower(names), value_set=pa.array([n.lower() for n in spelled]))
    return pc.if_else(found.is_valid(), pa.array(spelled).take(found.fill_null(0)), names)


def assign_timezones(contacts: pd.DataFrame) -> pd.DataFrame:
    """Set each contact's zone set: its timezone column where given, else what its number says."""
    derived = recipient_zones(text_array(contacts[E164])) if len(contacts) else pa.array([], pa.string())
    if TIMEZONE in contacts.columns:
        given = text_array(contacts[TIMEZONE])
        derived = pc.if_else(pc.equal(given, ""), derived, given)
    contacts[TIMEZONE] = text_series(derived, contacts.index)
    return contacts


def zone_key(zones) -> str:
    """The zone-set string of a tuple of IANA names."""
    return "|".join(sorted(set(zones)))


def _joined(zones: tuple[str, ...]) -> str:
    found = tuple(z for z in zones if z != UNKNOWN_TIMEZONE)
    return zone_key(found) if found else ""


@lru_cache(maxsize=None)
def _country_zones(country_code: int) -> str:
    """phonenumbers' _country_level_time_zones_for_number."""
    code = str(country_code)
    for length in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        if code[: 1 + length] in TIMEZONE_DATA:
            return _joined(TIMEZONE_DATA[code[: 1 + length]]) or FALLBACK_ZONE
    return FALLBACK_ZONE


def exact_zones(e164: str) -> str:
    """One number, through phonenumbers itself."""
    number = phonenumbers.parse(e164)
    return _joined(time_zones_for_number(number)) or _country_zones(number.country_code)


def recipient_zones(e164: pa.Array) -> pa.Array:
    """The zone-set string of every E.164 number in a column (computed once per distinct number)."""
    encoded = pc.dictionary_encode(e164.cast(pa.string()).fill_null(""))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    uniques, indices = encoded.dictionary, encoded.indices
    if len(uniques) >= PARALLEL_FROM:  # RE2 in pyarrow releases the GIL: two halves on two cores
        half = len(uniques) // 2
        with ThreadPoolExecutor(2) as pool:
            zones = np.concatenate(list(pool.map(_zones_of_unique, (uniques.slice(0, half), uniques.slice(half)))))
    else:
        zones = _zones_of_unique(uniques)
    return pa.array(zones, type=pa.string()).take(indices)


def _zones_of_unique(numbers: pa.Array) -> np.ndarray:
    digits = pc.utf8_slice_codeunits(numbers, 1)
    result = np.full(len(numbers), "", dtype=object)
    assigned = np.zeros(len(numbers), dtype=bool)
    for length in (1, 2, 3):
        prefix = pc.utf8_slice_codeunits(digits, 0, length)
        hit = ~assigned & pc.is_in(prefix, value_set=pa.array(sorted(COUNTRY_CODES[length]))).to_numpy(zero_copy_only=False)
        assigned |= hit
        if not hit.any():
            continue
        codes = pc.cast(prefix.filter(pa.array(hit)), pa.int64()).to_numpy()
        rows = np.flatnonzero(hit)
        for code in np.unique(codes):
            mine = rows[codes == code]
            nsn = pc.utf8_slice_codeunits(digits.take(pa.array(mine)), length)
            geographical = _geographical(int(code), nsn)
            if geographical is None:
                result[mine] = [exact_zones(n) for n in numbers.take(pa.array(mine)).to_pylist()]
                continue
            result[mine[~geographical]] = _country_zones(int(code))
            if geographical.any():
                result[mine[geographical]] = _prefix_zones(digits.take(pa.array(mine[geographical])), int(code))
    for row in np.flatnonzero(~assigned):  # not an E.164 number we know: phonenumbers decides
        result[row] = exact_zones(numbers[row].as_py())
    return result


def _prefix_zones(digits: pa.Array, country_code: int) -> np.ndarray:
    """phonenumbers' time_zones_for_geographical_number: the longest prefix in its table."""
    out = np.full(len(digits), "", dtype=object)
    open_rows = np.arange(len(digits))
    for length in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        keys, values = _prefix_table(length)
        if not len(open_rows) or not len(keys):
            continue
        found = pc.index_in(pc.utf8_slice_codeunits(digits.take(pa.array(open_rows)), 0, length), value_set=keys)
        hit = found.is_valid().to_numpy(zero_copy_only=False)
        out[open_rows[hit]] = values[found.filter(found.is_valid()).to_numpy()]
        open_rows = open_rows[~hit]
    out[open_rows] = _country_zones(country_code)
    out[out == ""] = _country_zones(country_code)
    return out


@lru_cache(maxsize=None)
def _prefix_table(length: int) -> tuple[pa.Array, np.ndarray]:
    """The prefixes of one length in phonenumbers' timezone table, and their zone-set strings."""
    prefixes = sorted(p for p in TIMEZONE_DATA if len(p) == length)
    return pa.array(prefixes, type=pa.string()), np.array([_joined(TIMEZONE_DATA[p]) for p in prefixes], dtype=object)


@lru_cache(maxsize=None)
def _type_descs(region: str) -> tuple[Desc | None, tuple[Desc, ...], Desc | None, Desc | None, bool]:
    metadata = PhoneMetadata.metadata_for_region(region, None)

    def desc(d) -> Desc | None:
        return None if d is None else Desc(d.national_number_pattern, tuple(d.possible_length or ()))

    others = tuple(d for d in (desc(getattr(metadata, name)) for name in NON_GEOGRAPHIC_TYPES) if d is not None)
    return desc(metadata.general_desc), others, desc(metadata.fixed_line), desc(metadata.mobile), bool(metadata.same_mobile_and_fixed_line_pattern)


def _geographical(country_code: int, nsn: pa.Array) -> np.ndarray | None:
    """is_number_type_geographical(number_type(n)) for numbers of one country code; None → exact path."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if not regions or "001" in regions:
        return None
    rules = [rules_for_region(r) for r in regions]
    if any(r is None or not r.supported for r in rules):
        return None
    lengths = pc.utf8_length(nsn).to_numpy(zero_copy_only=False)
    result = np.zeros(len(nsn), dtype=bool)
    remaining = np.arange(len(nsn))
    for region, rule in zip(regions, rules):  # region_code_for_number, in phonenumbers' order
        if not len(remaining):
            break
        sub = nsn.take(pa.array(remaining))
        if rule.leading_digits:
            chosen = pc.match_substring_regex(sub, f"^(?:{rule.leading_digits})").to_numpy(zero_copy_only=False)
            geo, _ = _type_of(region, sub.filter(pa.array(chosen)), lengths[remaining[chosen]])
        else:
            geo, known = _type_of(region, sub, lengths[remaining])
            chosen = known
            geo = geo[known]
        result[remaining[chosen]] = geo
        remaining = remaining[~chosen]
    return result


def _type_of(region: str, nsn: pa.Array, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(geographical, known type) per number under one region's metadata, in _number_type_helper's order."""
    general, others, fixed, mobile, same_pattern = _type_descs(region)
    country_code = PhoneMetadata.metadata_for_region(region).country_code
    known = _matches_desc(nsn, lengths, general)
    geo = np.zeros(len(nsn), dtype=bool)
    undecided = known.copy()
    for desc in others:
        if not undecided.any():
            break
        rows = np.flatnonzero(undecided)
        undecided[rows[_matches_desc(nsn.take(pa.array(rows)), lengths[rows], desc)]] = False
    rows = np.flatnonzero(undecided)
    if len(rows):
        is_fixed = _matches_desc(nsn.take(pa.array(rows)), lengths[rows], fixed)
        geo[rows[is_fixed]] = True
        undecided[rows[is_fixed]] = False
    rows = np.flatnonzero(undecided)
    if len(rows) and not same_pattern:
        is_mobile = _matches_desc(nsn.take(pa.array(rows)), lengths[rows], mobile)
        geo[rows[is_mobile]] = country_code in GEO_MOBILE_COUNTRIES
        undecided[rows[is_mobile]] = False
    known &= ~undecided  # matched the general pattern but no type: UNKNOWN
    return geo, known
