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
from pipelines.fastphone import KNOWN_CODE, Desc, _full, _matches_desc, e164_keys, rules_for_region
from pipelines.threads import pool
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
    """The zone-set string of every E.164 number in a column."""
    keys = e164_keys(e164)
    unique, where = np.unique(keys, return_inverse=True)
    codes, names = zones_of_keys(unique)
    return pa.array(names, type=pa.string()).take(pa.array(codes[where]))


class ZoneNames:
    """Zone-set strings numbered in the order they are first met (codes are int32)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        found = self._codes.get(name)
        if found is None:
            found = self._codes[name] = len(self.names)
            self.names.append(name)
        return found

    def adopt(self, codes: np.ndarray, names: list[str]) -> np.ndarray:
        """Codes into another list of names → codes into this one; new names are numbered in the order the codes first use them."""
        mapping = np.zeros(max(len(names), 1), dtype=np.int32)
        for local in pd.unique(codes).tolist():
            mapping[local] = self.code(names[local])
        return mapping[codes]


def zones_of_keys(keys: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The zone set of each valid number (E.164 keys, fastphone.e164_keys): (int32 codes, zone-set strings)."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) < PARALLEL_FROM:
        return _zones_of_keys(keys)
    half = len(keys) // 2  # RE2 in pyarrow and numpy release the GIL: two halves on two cores
    (first, first_names), (second, second_names) = pool().map(_zones_of_keys, (keys[:half], keys[half:]))
    names = ZoneNames()
    return np.concatenate([names.adopt(first, first_names), names.adopt(second, second_names)]), names.names


POWERS = 10 ** np.arange(19, dtype=np.uint64)  # 1, 10, … 10**18


def _digit_counts(keys: np.ndarray) -> np.ndarray:
    return np.searchsorted(POWERS, keys.astype(np.uint64), side="right")


def _zones_of_keys(keys: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = ZoneNames()
    result = np.full(len(keys), -1, dtype=np.int32)
    counts = _digit_counts(keys)
    assigned = np.zeros(len(keys), dtype=bool)
    for length in (1, 2, 3):  # the country code: E.164 codes are prefix-free
        prefix = keys // np.power(10, np.maximum(counts - length, 0)).astype(np.int64)
        hit = ~assigned & (counts > length) & KNOWN_CODE[length][np.minimum(prefix, 10**length - 1)]
        assigned |= hit
        for code in np.unique(prefix[hit]).tolist():
            rows = np.flatnonzero(hit & (prefix == code))
            nsn = pc.utf8_slice_codeunits(pc.cast(pa.array(keys[rows]), pa.string()), length)
            geographical = _geographical(code, nsn)
            if geographical is None:
                result[rows] = [names.code(exact_zones(f"+{key}")) for key in keys[rows].tolist()]
                continue
            result[rows[~geographical]] = names.code(_country_zones(code))
            if geographical.any():
                result[rows[geographical]] = _prefix_zones(keys[rows[geographical]], counts[rows[geographical]], code, names)
    for row in np.flatnonzero(result < 0):  # not a country code we know: phonenumbers decides
        result[row] = names.code(exact_zones(f"+{keys[row]}"))
    return result, names.names


def _prefix_zones(keys: np.ndarray, counts: np.ndarray, country_code: int, names: ZoneNames) -> np.ndarray:
    """phonenumbers' time_zones_for_geographical_number: the zones of the longest prefix in its table."""
    _, zones = _prefix_table()
    country = _country_zones(country_code)  # no prefix, or one whose zones are unknown
    out = np.empty(len(keys), dtype=np.int32)
    for count in np.unique(counts).tolist():
        rows = np.flatnonzero(counts == count)
        bounds, labels = _prefix_segments(count)
        segment = np.searchsorted(bounds, keys[rows].astype(np.uint64), side="right") - 1
        found = np.where(segment >= 0, labels[np.maximum(segment, 0)], -1)
        used, where = np.unique(found, return_inverse=True)
        codes = np.array([names.code(zones[label] or country if label >= 0 else country) for label in used.tolist()], dtype=np.int32)
        out[rows] = codes[where]
    return out


@lru_cache(maxsize=1)
def _prefix_table() -> tuple[list[str], list[str]]:
    """phonenumbers' timezone prefixes, shortest first, and their zone-set strings ("" when unknown)."""
    prefixes = sorted(TIMEZONE_DATA, key=lambda prefix: (len(prefix), prefix))
    return prefixes, [_joined(TIMEZONE_DATA[prefix]) for prefix in prefixes]


@lru_cache(maxsize=None)
def _prefix_segments(count: int) -> tuple[np.ndarray, np.ndarray]:
    """For numbers of `count` digits: sorted segment starts and, per segment, the index of its longest prefix (-1: none).

    A prefix p of length l covers the keys [p·10^(count-l), (p+1)·10^(count-l)). The
    intervals nest, so painting them shortest first leaves each segment labelled with its
    longest matching prefix: one searchsorted per number instead of one lookup per length.
    """
    prefixes, _ = _prefix_table()
    spans = [(int(p) * 10 ** (count - len(p)), (int(p) + 1) * 10 ** (count - len(p)), i)
             for i, p in enumerate(prefixes) if len(p) <= count]  # fmt: skip
    bounds = np.unique(np.array([edge for start, end, _ in spans for edge in (start, end)], dtype=np.uint64))
    labels = np.full(len(bounds), -1, dtype=np.int64)
    for start, end, index in spans:  # shortest first: longer prefixes paint over the ones they nest in
        labels[np.searchsorted(bounds, np.uint64(start)) : np.searchsorted(bounds, np.uint64(end))] = index
    return bounds, labels


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
    for length in np.unique(lengths[undecided]).tolist():  # every non-geographical type at once
        pattern = _non_geographical_pattern(region, length)
        if pattern is None:
            continue
        rows = np.flatnonzero(undecided & (lengths == length))
        undecided[rows[_full(nsn.take(pa.array(rows)), pattern)]] = False
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


@lru_cache(maxsize=None)
def _non_geographical_pattern(region: str, length: int) -> str | None:
    """One pattern matching a number of this length exactly when some non-geographical type of the region does.

    _number_type_helper tests those types before fixed line and mobile, and which of them
    matches does not matter here, so their patterns (each with its own length test) join
    into one alternation: one RE2 pass instead of one per type.
    """
    _, others, _, _, _ = _type_descs(region)
    patterns = [desc.pattern for desc in others if desc.pattern and (not desc.lengths or length in desc.lengths)]
    return "|".join(f"(?:{pattern})" for pattern in patterns) or None
