"""Each recipient's timezone(s), from the number, as phonenumbers.timezone would give them — for whole columns.

phonenumbers' `time_zones_for_number` looks at the number's type: geographical numbers
(fixed line, fixed-line-or-mobile, and mobiles in the few countries whose mobiles are
geographical) get the zones of their longest known prefix (area-code level for North
America); every other type gets the zones of its whole country. Deciding the type needs
the metadata patterns, so per number it costs tens of microseconds. This module does the
same for whole columns of E.164 keys: the type comes from the normalise stage, which
decided it while validating (fastphone.KIND_*), or else from fastphone's RE2 patterns;
the longest prefix is one binary search over phonenumbers' prefix table laid out as
integer intervals. Codes whose patterns RE2 cannot run go through phonenumbers itself.
tests/test_hours.py checks both agree with phonenumbers.

A recipient's zones are one string, sorted and joined with "|" ("America/Halifax|America/St_Johns"):
a number whose prefix spans zones may be called only when every one of them allows it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from zoneinfo import available_timezones

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from pipelines.ingest.fastphone import KIND_FIXED, KIND_MOBILE, KIND_UNKNOWN, _validate, country_codes, e164_keys
from pipelines.ingest.threads import pool

PARALLEL_FROM = 100_000
FALLBACK_ZONE = "UTC"  # a number neither its prefix nor its country places anywhere (rare)
GEO_MOBILE_COUNTRIES = frozenset({52, 54, 55, 62, 86})  # phonenumbers' _GEO_MOBILE_COUNTRIES


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def canonical_zones(names: pa.Array) -> pa.Array:
    """IANA names as spelled by the tz database, whatever their case ('america/new_york'); unknown ones unchanged."""
    spelled = sorted(known_zones())
    found = pc.index_in(pc.utf8_lower(names), value_set=pa.array([n.lower() for n in spelled]))
    return pc.if_else(found.is_valid(), pa.array(spelled).take(found.fill_null(0)), names)


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
        distinct, first_at = np.unique(codes, return_index=True)
        for local in distinct[np.argsort(first_at)].tolist():
            mapping[local] = self.code(names[local])
        return mapping[codes]


def zones_of_keys(keys: np.ndarray, kinds: np.ndarray | None = None, meanwhile: Callable[[], None] = lambda: None) -> tuple[np.ndarray, list[str]]:
    """The zone set of each valid number: (int32 codes, zone-set strings).

    `keys` are E.164 keys (fastphone.e164_keys); `kinds`, where given, are the fastphone.KIND_*
    the normalise stage already decided, which spares the type patterns here. Half of a long
    column goes to a worker thread; `meanwhile` runs on the calling thread, then the other half.
    """
    keys = np.asarray(keys, dtype=np.int64)
    kinds = np.zeros(len(keys), dtype=np.int8) if kinds is None else np.asarray(kinds, dtype=np.int8)
    if len(keys) < PARALLEL_FROM:
        meanwhile()
        return _zones_of_keys(keys, kinds)
    half = len(keys) // 2  # RE2 in pyarrow and numpy release the GIL: two halves on two cores
    later = pool().submit(_zones_of_keys, keys[half:], kinds[half:])
    meanwhile()
    first, first_names = _zones_of_keys(keys[:half], kinds[:half])
    second, second_names = later.result()
    names = ZoneNames()
    return np.concatenate([names.adopt(first, first_names), names.adopt(second, second_names)]), names.names


POWERS = 10 ** np.arange(19, dtype=np.uint64)  # 1, 10, … 10**18


def _digit_counts(keys: np.ndarray) -> np.ndarray:
    return np.searchsorted(POWERS, keys.astype(np.uint64), side="right")


def _zones_of_keys(keys: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = ZoneNames()
    result = np.full(len(keys), -1, dtype=np.int32)
    counts = _digit_counts(keys)
    leading = keys // POWERS.astype(np.int64)[np.maximum(counts - 3, 0)]  # the first three digits (fewer if shorter)
    leading = leading * np.array([1, 10, 100, 1000], dtype=np.int64)[np.clip(3 - counts, 0, 3)]  # padded to three digits
    codes, sizes = country_codes(leading)
    sizes[counts <= sizes] = 0  # a code with no number after it is no number
    for code in np.flatnonzero(np.bincount(codes[sizes > 0], minlength=1)).tolist():  # codes < 1000: a small range
        length = len(str(code))
        rows = np.flatnonzero((sizes > 0) & (codes == code))
        geographical = geographical_kinds(kinds[rows], code)
        unknown = np.flatnonzero(kinds[rows] == KIND_UNKNOWN)
        if len(unknown):  # the normalise stage did not decide these: the type patterns do
            nsn = pc.utf8_slice_codeunits(pc.cast(pa.array(keys[rows[unknown]]), pa.string()), length)
            found = _geographical(code, nsn)
            if found is None:
                result[rows[unknown]] = [names.code(exact_zones(f"+{key}")) for key in keys[rows[unknown]].tolist()]
                rows, geographical = np.delete(rows, unknown), np.delete(geographical, unknown)
            else:
                geographical[unknown] = found
        result[rows[~geographical]] = names.code(_country_zones(code))
        if geographical.any():
            local = rows[geographical]
            result[local] = _prefix_zones(keys[local], counts[local], code, names)
    for row in np.flatnonzero(result < 0):  # not a country code we know: phonenumbers decides
        result[row] = names.code(exact_zones(f"+{keys[row]}"))
    return result, names.names


def _prefix_zones(keys: np.ndarray, counts: np.ndarray, country_code: int, names: ZoneNames) -> np.ndarray:
    """phonenumbers' time_zones_for_geographical_number: the zones of the longest prefix in its table."""
    _, zones = _prefix_table()
    country = _country_zones(country_code)  # no prefix, or one whose zones are unknown
    out = np.empty(len(keys), dtype=np.int32)
    lengths = np.flatnonzero(np.bincount(counts))  # numbers of each length (at most 19 digits)
    for count in lengths.tolist():
        rows = slice(None) if len(lengths) == 1 else np.flatnonzero(counts == count)
        bounds, labels = _prefix_segments(count)
        segment = np.searchsorted(bounds, keys[rows].view(np.uint64), side="right") - 1  # keys are positive: same bits
        found = np.where(segment >= 0, labels[np.maximum(segment, 0)], -1) + 1  # 0: no prefix
        codes = np.zeros(len(zones) + 1, dtype=np.int32)
        for label in np.flatnonzero(np.bincount(found)).tolist():
            codes[label] = names.code(zones[label - 1] or country if label else country)
        out[rows] = codes[found]
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
    fitting = [(index, prefix) for index, prefix in enumerate(prefixes) if len(prefix) <= count]
    starts = np.array([int(prefix) * 10 ** (count - len(prefix)) for _, prefix in fitting], dtype=np.uint64)
    ends = np.array([(int(prefix) + 1) * 10 ** (count - len(prefix)) for _, prefix in fitting], dtype=np.uint64)
    bounds = np.unique(np.concatenate([starts, ends]))
    labels = np.full(len(bounds), -1, dtype=np.int64)
    first, last = np.searchsorted(bounds, starts).tolist(), np.searchsorted(bounds, ends).tolist()
    for (index, _), begin, end in zip(fitting, first, last):  # shortest first: longer prefixes paint over the ones they nest in
        labels[begin:end] = index
    return bounds, labels


def _geographical(country_code: int, nsn: pa.Array) -> np.ndarray | None:
    """is_number_type_geographical(number_type(n)) for national numbers of one country code; None → exact path."""
    kinds = _validate(country_code, nsn, pc.binary_length(nsn).to_numpy(zero_copy_only=False))
    return None if kinds is None else geographical_kinds(kinds, country_code)


def geographical_kinds(kinds: np.ndarray, country_code) -> np.ndarray:
    """phonenumbers' is_number_type_geographical: fixed line (or fixed line or mobile), and mobiles where those are geographical."""
    return (kinds == KIND_FIXED) | ((kinds == KIND_MOBILE) & np.isin(country_code, list(GEO_MOBILE_COUNTRIES)))
