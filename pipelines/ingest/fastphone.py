"""Columnar phone normalisation: phonenumbers' parse → validate → E.164 for whole columns at once.

phonenumbers spends ~40 µs a row in Python. This module runs the same algorithm on
whole columns with RE2 (pyarrow compute), using phonenumbers' own metadata patterns:

    digits and an optional leading + → (IDD prefix? → exact path) → country code from the
    digits after '+', or the region's, or a leading country code without '+' → national
    prefix stripped when the rest stays viable and long enough → region chosen by leading
    digits or by number type → valid when a number type pattern matches → "+" cc nsn.

It handles only plain spellings (digits, spaces, - . ( ) and one leading +). Everything
else — letters, extensions, tel: URIs, IDD prefixes, regions whose national prefix has a
transform rule, non-geographic codes — is marked unhandled and goes to the exact per-value
path (normalise.classify_phone). tests/test_fastphone.py checks both agree.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from pipelines.ingest.arrow import string_buffers
from schemas.contacts import REASON_CODE, RejectReason

PLAIN = r"^[ \t]*(?:\+ *)?[0-9(][0-9 \-.()]*[ \t]*$"  # tabs only around: inside, phonenumbers stops at one
BLANK = r"^[ \t\r\n]*$"
INTEGRAL_DECIMAL = r"^[ \t]*\+?[0-9]+\.0+[ \t]*$"  # "4155550132.0": the exact path rewrites these
MIN_NSN, MAX_NSN, MAX_INPUT = 2, 17, 250
# phonenumbers' _number_type_helper tests these before fixed line and mobile; none is geographical
NON_GEOGRAPHIC_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")
# A number's type as far as validity and timezones care, in _number_type_helper's order:
# UNKNOWN (invalid), OTHER (a non-geographical type), FIXED (fixed line, or fixed line or mobile), MOBILE.
KIND_UNKNOWN, KIND_OTHER, KIND_FIXED, KIND_MOBILE = 0, 1, 2, 3
TOO_SHORT, TOO_LONG, OTHER = 1, 2, 0  # length test outcomes that matter here
COUNTRY_CODES = {length: {str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE if len(str(cc)) == length} for length in (1, 2, 3)}


def _non_capturing(pattern: str) -> str:
    """RE2 in pyarrow needs no groups of ours; phonenumbers' carrier-code groups are not used here."""
    return re.sub(r"\((?!\?)", "(?:", pattern)


@dataclass(frozen=True)
class Desc:
    pattern: str | None
    lengths: tuple[int, ...]


@dataclass(frozen=True)
class Rules:
    """What the columnar path needs of one region's metadata."""

    region: str
    country_code: int
    general: Desc
    non_geographic: tuple[Desc, ...]
    fixed_line: Desc | None
    mobile: Desc | None  # None when its pattern is the fixed line's: then a fixed-line match is FIXED
    local_only: tuple[int, ...]
    national_prefix: str | None  # national_prefix_for_parsing, groups made non-capturing
    idd: str | None
    leading_digits: str | None
    supported: bool  # every pattern compiles in RE2: usable for validation
    strippable: bool  # and no national-prefix transform rule: usable for parsing national numbers


@lru_cache(maxsize=None)
def rules_for_region(region: str) -> Rules | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None

    def desc(d) -> Desc | None:
        if d is None:
            return None
        return Desc(d.national_number_pattern, tuple(d.possible_length or ()))

    general = desc(metadata.general_desc)
    non_geographic = tuple(d for d in (desc(getattr(metadata, name)) for name in NON_GEOGRAPHIC_TYPES) if d is not None)
    fixed_line = desc(metadata.fixed_line)
    mobile = None if metadata.same_mobile_and_fixed_line_pattern else desc(metadata.mobile)
    prefix = metadata.national_prefix_for_parsing or None
    supported = general is not None and general.lengths != ()
    rules = Rules(
        region=region,
        country_code=metadata.country_code,
        general=general,
        non_geographic=non_geographic,
        fixed_line=fixed_line,
        mobile=mobile,
        local_only=tuple(metadata.general_desc.possible_length_local_only or ()),
        national_prefix=_non_capturing(prefix) if prefix else None,
        idd=_non_capturing(metadata.international_prefix) if metadata.international_prefix else None,
        leading_digits=metadata.leading_digits,
        supported=supported,
        strippable=supported and not metadata.national_prefix_transform_rule,
    )
    if supported:
        try:  # RE2 must accept every pattern, or this region takes the exact path
            probe = pa.array(["0"])
            for pattern in [general.pattern, prefix and rules.national_prefix, rules.idd, rules.leading_digits,
                            *(d.pattern for d in (*non_geographic, fixed_line, mobile) if d is not None)]:  # fmt: skip
                if pattern:
                    pc.match_substring_regex(probe, f"^(?:{pattern})$")
        except pa.ArrowInvalid:
            return Rules(**{**rules.__dict__, "supported": False, "strippable": False})
    return rules


def main_rules(country_code: int) -> Rules | None:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if not regions or regions[0] == "001":
        return None
    return rules_for_region(regions[0])


# ------------------------------------------------------------------ column helpers


def _full(values: pa.Array, pattern: str | None) -> np.ndarray:
    if not pattern or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    return pc.match_substring_regex(values, f"^(?:{pattern})$").to_numpy(zero_copy_only=False)


def _matches_desc(values: pa.Array, lengths: np.ndarray, desc: Desc | None) -> np.ndarray:
    """phonenumbers' _is_number_matching_desc: length in possible lengths (if any) and full pattern match."""
    if desc is None or not desc.pattern:
        return np.zeros(len(values), dtype=bool)
    ok = np.isin(lengths, desc.lengths) if desc.lengths else np.ones(len(values), dtype=bool)
    if not ok.any():
        return ok
    index = np.flatnonzero(ok)
    ok[index] = _full(values.take(pa.array(index)), desc.pattern)
    return ok


def _viable(values: pa.Array, rules: Rules) -> np.ndarray:
    """_match_national_number against the general description: pattern only, no lengths."""
    return _full(values, rules.general.pattern)


def _length_test(lengths: np.ndarray, rules: Rules) -> np.ndarray:
    """_test_number_length for type UNKNOWN: TOO_SHORT, TOO_LONG, or OTHER (possible, local only, invalid length)."""
    possible = rules.general.lengths
    result = np.full(len(lengths), OTHER, dtype=np.int8)
    local = np.isin(lengths, rules.local_only) if rules.local_only else np.zeros(len(lengths), dtype=bool)
    result[(lengths < possible[0]) & ~local] = TOO_SHORT
    result[(lengths > possible[-1]) & ~local] = TOO_LONG
    return result


def _keeps_stripped(lengths: np.ndarray, rules: Rules) -> np.ndarray:
    """parse() keeps the prefix-stripped number unless it tests TOO_SHORT, LOCAL_ONLY or INVALID_LENGTH."""
    possible = rules.general.lengths
    local = np.isin(lengths, rules.local_only) if rules.local_only else np.zeros(len(lengths), dtype=bool)
    return ~local & (np.isin(lengths, possible) | (lengths > possible[-1]))


def _strip_national_prefix(values: pa.Array, rules: Rules) -> pa.Array:
    """_maybe_strip_national_prefix_carrier_code (without transform rules)."""
    if not rules.national_prefix or len(values) == 0:
        return values
    if rules.national_prefix.isdigit():  # a literal prefix such as "1" or "0": no regex needed
        matched = pc.starts_with(values, rules.national_prefix).to_numpy(zero_copy_only=False)
        prefix_lengths = np.full(len(values), len(rules.national_prefix))
    else:
        found = pc.extract_regex(values, f"^(?P<p>{rules.national_prefix})")
        matched = found.is_valid().to_numpy(zero_copy_only=False)
        prefix_lengths = pc.binary_length(found.field("p")).fill_null(0).to_numpy(zero_copy_only=False)
    if not matched.any():
        return values
    # phonenumbers keeps the original when it was viable and the stripped number is not;
    # only rows that start with the prefix can change, so only they are tested
    index = np.flatnonzero(matched)
    subset = values.take(pa.array(index))
    stripped = _slice_from(subset, prefix_lengths[index])
    keep_original = _viable(subset, rules) & ~_viable(stripped, rules)
    chosen = pc.if_else(pa.array(keep_original), subset, stripped)
    return pc.replace_with_mask(values, pa.array(matched), chosen)


def _slice_from(values: pa.Array, starts: np.ndarray) -> pa.Array:
    """values[i][starts[i]:], one vectorised slice per distinct start."""
    out = values
    for start in np.unique(starts):
        if start == 0:
            continue
        mask = starts == start
        out = pc.replace_with_mask(out, pa.array(mask), pc.utf8_slice_codeunits(values.filter(pa.array(mask)), int(start)))
    return out


def _national_number(values: pa.Array, rules: Rules) -> tuple[pa.Array, np.ndarray]:
    """parse()'s last steps: strip the national prefix if the result tests long enough; returns nsn and lengths."""
    lengths = _byte_lengths(values)
    stripped = _strip_national_prefix(values, rules)
    stripped_lengths = _byte_lengths(stripped)
    keep = _keeps_stripped(stripped_lengths, rules)
    return pc.if_else(pa.array(keep), stripped, values), np.where(keep, stripped_lengths, lengths)


def _subset(values: pa.Array, rows: np.ndarray) -> pa.Array:
    """values[rows] for sorted distinct rows; no copy when they are all of them."""
    return values if len(rows) == len(values) else values.take(pa.array(rows))


def _type_kinds(values: pa.Array, lengths: np.ndarray, rules: Rules) -> np.ndarray:
    """_number_type_helper for each national number under one region's metadata, as KIND_* codes."""
    kinds = np.zeros(len(values), dtype=np.int8)
    index = np.flatnonzero(_matches_desc(values, lengths, rules.general))
    if not len(index):
        return kinds
    sub, sub_lengths = _subset(values, index), lengths[index]
    kind = np.zeros(len(index), dtype=np.int8)
    for length in np.unique(sub_lengths).tolist():  # every non-geographical type in one pass per length
        pattern = non_geographic_pattern(rules.region, length)
        if pattern is not None:
            rows = np.flatnonzero(sub_lengths == length)
            kind[rows[_full(_subset(sub, rows), pattern)]] = KIND_OTHER
    for desc, code in ((rules.fixed_line, KIND_FIXED), (rules.mobile, KIND_MOBILE)):
        rows = np.flatnonzero(kind == KIND_UNKNOWN)
        if desc is not None and len(rows):
            kind[rows[_matches_desc(_subset(sub, rows), sub_lengths[rows], desc)]] = code
    kinds[index] = kind
    return kinds


@lru_cache(maxsize=None)
def non_geographic_pattern(region: str, length: int) -> str | None:
    """One pattern a number of this length fully matches exactly when some non-geographical type of the region matches it.

    _number_type_helper tests those types first and which of them matches does not matter
    here, so their patterns (each kept to the lengths it allows) join into one alternation:
    one RE2 pass instead of one per type.
    """
    patterns = [desc.pattern for desc in rules_for_region(region).non_geographic
                if desc.pattern and (not desc.lengths or length in desc.lengths)]  # fmt: skip
    return "|".join(f"(?:{pattern})" for pattern in patterns) or None


def _validate(country_code: int, values: pa.Array, lengths: np.ndarray) -> np.ndarray | None:
    """The KIND_* of each national number of one country code under the region phonenumbers picks for it.

    Valid numbers are those not KIND_UNKNOWN (is_valid_number); None when the exact path must
    decide. Lengths shared by many numbers are looked up by prefix (prefix_kinds); the
    patterns decide the rest.
    """
    all_rules = _country_rules(country_code)
    if all_rules is None:
        return None
    if len(values) < TABLE_MIN_ROWS:
        return _validate_by_patterns(all_rules, values, lengths)
    kinds = np.zeros(len(values), dtype=np.int8)
    undecided = np.ones(len(values), dtype=bool)
    counts = np.bincount(lengths)
    for length in np.flatnonzero(counts >= TABLE_MIN_ROWS).tolist():
        table = prefix_kinds(country_code, length) if length >= PREFIX_DIGITS else None
        if table is None:
            continue
        rows = np.flatnonzero(lengths == length)
        found = table[_leading_number(values, rows, PREFIX_DIGITS)]
        decided = found != UNDECIDED
        kinds[rows[decided]] = found[decided]
        undecided[rows[decided]] = False
    rest = np.flatnonzero(undecided)
    if len(rest):
        kinds[rest] = _validate_by_patterns(all_rules, _subset(values, rest), lengths[rest])
    return kinds


def _country_rules(country_code: int) -> list[Rules] | None:
    """The rules of a country code's regions in phonenumbers' order; None when the columnar path cannot validate its numbers."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if not regions or "001" in regions:
        return None
    all_rules = [rules_for_region(r) for r in regions]
    if any(r is None or not r.supported for r in all_rules):
        return None
    return all_rules


def _validate_by_patterns(all_rules: list[Rules], values: pa.Array, lengths: np.ndarray) -> np.ndarray:
    """_validate by running the metadata patterns over the numbers."""
    if len(all_rules) == 1:
        return _type_kinds(values, lengths, all_rules[0])
    kinds = np.zeros(len(values), dtype=np.int8)
    remaining = np.arange(len(values))
    for rules in all_rules:  # _region_code_for_number_from_list, in phonenumbers' order
        if len(remaining) == 0:
            break
        sub, sub_lengths = _subset(values, remaining), lengths[remaining]
        if rules.leading_digits:
            chosen = _matches(sub, f"^(?:{rules.leading_digits})")
            picked = remaining[chosen]
            if len(picked):
                kinds[picked] = _type_kinds(_subset(values, picked), lengths[picked], rules)
        else:
            found = _type_kinds(sub, sub_lengths, rules)
            chosen = found != KIND_UNKNOWN
            kinds[remaining[chosen]] = found[chosen]
        remaining = remaining[~chosen]
    return kinds


# ------------------------------------------------------------------ validation by prefix tables

PREFIX_DIGITS = 4  # prefix tables hold 10**4 entries: NANP numbers are decided by area code and one more digit
TABLE_MIN_ROWS = 20_000  # numbers of one code and length it takes for a prefix table to pay for itself
UNDECIDED = -1  # in a prefix table: the digits after the prefix matter, the patterns decide
NONE, SOME, ALL = 0, 1, 2  # how many of the numbers with a given prefix a pattern matches
_building = threading.Lock()


def prefix_kinds(country_code: int, length: int) -> np.ndarray | None:
    """What _validate decides for every national number of `length` digits under `country_code`, by its first digits.

    Entry p is the KIND_* of every number whose first PREFIX_DIGITS digits are p, or
    UNDECIDED where the digits after them matter. Each pattern is asked two questions about
    each prefix, both answered exactly by RE2 over all prefixes at once (_pattern_outcome):
    does it match none of the numbers starting with p, or all of them? The answers combine
    in _validate's own order of checks. None when a pattern is more than digits, classes,
    groups, alternatives and counted repeats (the patterns decide then).
    """
    # A second thread asking for a table being built waits for it, then finds it cached. Pool
    # tasks may wait here (threads.py forbids waiting for another task): the lock is only ever
    # held by a build that is running and waits for nothing.
    with _building:
        return _prefix_kinds(country_code, length)


@lru_cache(maxsize=None)
def _prefix_kinds(country_code: int, length: int) -> np.ndarray | None:
    rules = _country_rules(country_code)
    if rules is None:
        return None
    try:
        return _Prefixes(length).kinds(rules)
    except _NotDigitsOnly:
        return None


def prepare_tables(region: str) -> None:
    """Build the prefix tables that numbers of the region's own country will use (~5-50 ms each).

    For a worker to run while a large file is read, so that the classification does not wait for them.
    """
    rules = rules_for_region(region)
    if rules is None or not rules.supported:
        return
    for length in rules.general.lengths:
        if length >= PREFIX_DIGITS:
            prefix_kinds(rules.country_code, length)


class _NotDigitsOnly(Exception):
    pass


class _Prefixes:
    """Every PREFIX_DIGITS-digit prefix of numbers `length` digits long, and how patterns judge them."""

    def __init__(self, length: int) -> None:
        self.length = length
        digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(10**PREFIX_DIGITS)), pa.string()), PREFIX_DIGITS, "0")
        rest = length - PREFIX_DIGITS
        self.any_digits = pc.binary_join_element_wise(digits, "X" * rest, "")  # X: a digit any digit class accepts
        self.some_digits = pc.binary_join_element_wise(digits, "Y" * rest, "")  # Y: a digit some class accepts

    def kinds(self, all_rules: list[Rules]) -> np.ndarray:
        """_validate_by_patterns, one prefix at a time, with UNDECIDED where it depends on the rest."""
        everything = np.arange(10**PREFIX_DIGITS)
        if len(all_rules) == 1:
            return self._type_kinds(all_rules[0], everything)
        kinds = np.full(len(everything), UNDECIDED, dtype=np.int8)
        remaining = everything
        for rules in all_rules:
            if not len(remaining):
                break
            if rules.leading_digits:
                chosen = self._outcome(rules.leading_digits, remaining, whole=False)
                picked = remaining[chosen == ALL]
                kinds[picked] = self._type_kinds(rules, picked)
                remaining = remaining[chosen == NONE]  # SOME: the region depends on the rest
            else:
                found = self._type_kinds(rules, remaining)
                chosen = (found != KIND_UNKNOWN) & (found != UNDECIDED)
                kinds[remaining[chosen]] = found[chosen]
                remaining = remaining[found == KIND_UNKNOWN]
        kinds[remaining] = KIND_UNKNOWN
        return kinds

    def _type_kinds(self, rules: Rules, prefixes: np.ndarray) -> np.ndarray:
        """_type_kinds for the given prefixes."""
        kinds = np.full(len(prefixes), UNDECIDED, dtype=np.int8)
        general = self._desc_outcome(rules.general, prefixes)
        kinds[general == NONE] = KIND_UNKNOWN
        open_ = np.flatnonzero(general == ALL)
        non_geographic = Desc(non_geographic_pattern(rules.region, self.length), ())  # already kept to this length
        for desc, kind in ((non_geographic, KIND_OTHER), (rules.fixed_line, KIND_FIXED), (rules.mobile, KIND_MOBILE)):
            outcome = self._desc_outcome(desc, prefixes[open_])
            kinds[open_[outcome == ALL]] = kind
            open_ = open_[outcome == NONE]  # SOME: the type depends on the rest
        kinds[open_] = KIND_UNKNOWN
        return kinds

    def _desc_outcome(self, desc: Desc | None, prefixes: np.ndarray) -> np.ndarray:
        """_matches_desc: the length must be possible, then the pattern decides."""
        if desc is None or not desc.pattern or (desc.lengths and self.length not in desc.lengths):
            return np.full(len(prefixes), NONE, dtype=np.int8)
        return self._outcome(desc.pattern, prefixes)

    def _outcome(self, pattern: str, prefixes: np.ndarray, whole: bool = True) -> np.ndarray:
        """NONE, SOME or ALL of the numbers with each prefix match `pattern` (in full, or a leading part of them).

        Exact: a number with prefix p can match only if the pattern with 'Y' added to every
        class accepts p then Ys, so a failure there means NONE. If the pattern with 'X' added to
        the classes holding every digit accepts p then Xs, that path accepts p followed by any
        digits: ALL. Otherwise SOME, which may hide an ALL (two classes that together
        cover every digit): those prefixes are merely left to the patterns.
        """
        if not len(prefixes):
            return np.full(len(prefixes), NONE, dtype=np.int8)
        end = "$" if whole else ""
        index = pa.array(prefixes)
        every = _matches(self.any_digits.take(index), f"^(?:{_widened(pattern, 'X', every_class=False)}){end}")
        some = _matches(self.some_digits.take(index), f"^(?:{_widened(pattern, 'Y', every_class=True)}){end}")
        return np.where(every, ALL, np.where(some, SOME, NONE)).astype(np.int8)


# the whole grammar of phonenumbers' number patterns: digits, classes of digits and ranges,
# \d, non-capturing groups, alternatives, ? and counted repeats
PATTERN_TOKEN = re.compile(r"\\d|\[[0-9\-]+\]|[0-9]|\{[0-9]+(?:,[0-9]*)?\}|\(\?:|[)|?]")


@lru_cache(maxsize=None)
def _widened(pattern: str, mark: str, *, every_class: bool) -> str:
    """The pattern with `mark` added to every digit class (or only to those holding all ten digits: \\d)."""
    out, at = [], 0
    for token in PATTERN_TOKEN.finditer(pattern):
        if token.start() != at:
            raise _NotDigitsOnly(pattern)
        text = token.group()
        if text == r"\d":
            text = f"[0-9{mark}]"
        elif every_class and text[0] == "[":
            text = f"{text[:-1]}{mark}]"
        elif every_class and text.isdigit():
            text = f"[{text}{mark}]"
        out.append(text)
        at = token.end()
    if at != len(pattern):
        raise _NotDigitsOnly(pattern)
    return "".join(out)


# ------------------------------------------------------------------ E.164 numbers as int64 keys

# A valid number has at most 19 digits (+62 and 17 for Indonesian toll-free), and every
# 19-digit one starts with 62: all fit in int64. Keys are the digits after the '+'.
MAX_EXACT_DIGITS = 18  # cc * 10**n + nsn is exact in int64 up to this many digits
INT64_MAX = np.iinfo(np.int64).max


def e164_keys(numbers: pa.Array) -> np.ndarray:
    """'+14155550132' → 14155550132 for a column of E.164 text ("" or null → 0)."""
    text = numbers.cast(pa.string()).fill_null("")
    digits = pc.utf8_slice_codeunits(text, 1)
    return pc.cast(pc.if_else(pc.equal(digits, ""), "0", digits), pa.int64()).to_numpy(zero_copy_only=False)


def e164_text(keys: np.ndarray) -> pa.Array:
    """14155550132 → '+14155550132' for a column of keys (all non-zero)."""
    digits = pc.cast(pa.array(keys, type=pa.int64()), pa.string())
    return pc.binary_join_element_wise("+", digits, "")


def _keys(country_code: int, nsn: pa.Array, lengths: np.ndarray) -> np.ndarray:
    national = pc.cast(nsn, pa.int64()).to_numpy(zero_copy_only=False)
    keys = country_code * np.power(10, lengths.astype(np.int64)) + national
    for row in np.flatnonzero(len(str(country_code)) + lengths > MAX_EXACT_DIGITS):
        value = int(f"{country_code}{nsn[int(row)].as_py()}")
        if value > INT64_MAX:  # no valid number is this long; the metadata would have changed
            raise AssertionError(f"+{value} does not fit an int64 key")
        keys[row] = value
    return keys


# ------------------------------------------------------------------ entry point

EMPTY, TOO_SHORT_CODE, TOO_LONG_CODE, INVALID_CODE = (REASON_CODE[r] for r in (
    RejectReason.EMPTY, RejectReason.TOO_SHORT, RejectReason.TOO_LONG, RejectReason.INVALID))  # fmt: skip
# is this 1-, 2- or 3-digit number a country calling code? (indexed by its value; no code has a leading 0)
KNOWN_CODE = {length: np.isin(np.arange(10**length), [int(code) for code in COUNTRY_CODES[length]]) for length in (1, 2, 3)}


PLUS, SPACE, TAB = ord("+"), ord(" "), ord("\t")
LEADING_BLANKS = np.array([ord(" "), ord("\t")], dtype=np.uint8)
ENDS_OF_DECIMALS = np.array([ord("0"), ord(" "), ord("\t")], dtype=np.uint8)


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    return pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)


def _plain(values: pa.Array) -> np.ndarray:
    """_matches(values, PLAIN), decided from the bytes for the common spellings and by RE2 for the rest.

    A cell of digits, spaces, '-', '.', '(' and ')' that starts with a digit or '(' is plain, and so is '+' followed
    by one; a cell holding any other byte but a tab or a '+' is not. RE2 decides the rest: leading blanks, a tab,
    '+' and a space, a '+' further on.
    """
    offsets, data = string_buffers(values)
    body = data[offsets[0] : offsets[-1]]
    if not len(body):  # every cell empty
        return np.zeros(len(values), dtype=bool)
    inner = ((body >= 0x30) & (body <= 0x39)) | (body == 0x20) | ((body >= 0x28) & (body <= 0x29)) | ((body >= 0x2D) & (body <= 0x2E))
    odd = np.flatnonzero(~inner)  # bytes outside [0-9 ().-]: few, in a phone column
    odd_rows = np.searchsorted(offsets, odd + offsets[0], side="right") - 1
    alien = (body[odd] != PLUS) & (body[odd] != TAB)
    odd_count = np.bincount(odd_rows, minlength=len(values))
    alien_count = np.bincount(odd_rows[alien], minlength=len(values))
    starts, lengths = offsets[:-1], offsets[1:] - offsets[:-1]
    first = np.where(lengths > 0, np.take(data, starts, mode="clip"), 0)
    second = np.where(lengths > 1, np.take(data, starts + 1, mode="clip"), 0)
    plain = (odd_count == 0) & _opens(first)
    plus = (odd_count == 1) & (first == PLUS)  # its one odd byte leads
    plain |= plus & _opens(second)
    unsure = (alien_count == 0) & ~plain & ((first == SPACE) | ((odd_count > 0) & ~plus) | (plus & (second == SPACE)))
    rows = np.flatnonzero(unsure)
    if len(rows):
        plain[rows] = _matches(values.take(pa.array(rows)), PLAIN)
    return plain


def _opens(byte: np.ndarray) -> np.ndarray:
    """Whether a plain number can start with this byte: a digit or '('."""
    return ((byte >= 0x30) & (byte <= 0x39)) | (byte == 0x28)


def _contains(values: pa.Array, text: str) -> np.ndarray:
    return pc.match_substring(values, text).to_numpy(zero_copy_only=False)


def _byte_lengths(values: pa.Array) -> np.ndarray:
    return pc.binary_length(values).to_numpy(zero_copy_only=False)


def digits_only(values: pa.Array) -> pa.Array:
    """Keep only ASCII digits of each string, straight on the Arrow buffers (no per-row Python)."""
    values = values.cast(pa.string()).fill_null("")
    offsets, data = string_buffers(values)
    data = data[offsets[0] : offsets[-1]]
    keep = (data >= 48) & (data <= 57)
    starts = offsets[:-1] - offsets[0]
    per_row = np.add.reduceat(np.append(keep, False), starts, dtype=np.int32) if len(starts) else np.zeros(0, np.int32)
    per_row[starts == offsets[1:] - offsets[0]] = 0  # reduceat gives an empty row its next byte; it has none
    new_offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(per_row, out=new_offsets[1:])
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(new_offsets), pa.py_buffer(data[keep]))


def _leading_number(digits: pa.Array, rows: np.ndarray, count: int) -> np.ndarray:
    """The first `count` digits of each of `rows` (all at least that long) as an integer."""
    offsets, data = string_buffers(digits)
    starts = offsets[rows]
    value = np.zeros(len(rows), dtype=np.int64)
    for position in range(count):
        value = value * 10 + (data[starts + position] - 48)
    return value


class Classified(NamedTuple):
    """What the columnar path decided for each row of a phone column."""

    keys: np.ndarray  # int64 E.164 number (e164_keys), 0 where rejected or not handled
    reasons: np.ndarray  # int8 code of schemas.contacts.REASON_BY_CODE, 0 where accepted or not handled
    handled: np.ndarray  # bool: False → the exact path must decide
    kinds: np.ndarray  # int8 KIND_* of accepted numbers (KIND_UNKNOWN elsewhere): timezones need it


def classify_columns(raw: pa.Array, default_region: str, overrides: pa.Array | None = None) -> Classified:
    """Classify every row of a phone column that the columnar path can; `overrides` is a per-row
    region (a country column), "" meaning `default_region`."""
    n = len(raw)
    raw = raw.cast(pa.string()).fill_null("")
    keys = np.zeros(n, dtype=np.int64)
    reasons = np.zeros(n, dtype=np.int8)
    handled = np.zeros(n, dtype=bool)
    kinds = np.zeros(n, dtype=np.int8)
    if n == 0:
        return Classified(keys, reasons, handled, kinds)

    plain = _plain(raw)  # a plain cell holds a digit or '(': never blank
    others = np.flatnonzero(~plain)
    blank = others[_matches(_subset(raw, others), BLANK)]
    reasons[blank] = EMPTY
    handled[blank] = True
    offsets, data = string_buffers(raw)
    first, last = np.full(n, 0, dtype=np.uint8), np.full(n, 0, dtype=np.uint8)
    filled = np.flatnonzero(offsets[1:] > offsets[:-1])
    first[filled], last[filled] = data[offsets[filled]], data[offsets[filled + 1] - 1]
    # an integral decimal such as 4155550132.0 ends in 0 (or blanks): only those rows need the pattern
    maybe = np.flatnonzero(plain & np.isin(last, ENDS_OF_DECIMALS))
    if len(maybe):
        plain[maybe[_matches(raw.take(pa.array(maybe)), INTEGRAL_DECIMAL)]] = False
    plain &= _byte_lengths(raw) <= MAX_INPUT  # plain text is ASCII: bytes are characters
    if not plain.any():
        return Classified(keys, reasons, handled, kinds)
    digits = digits_only(raw)
    count = _byte_lengths(digits)
    usable = plain & (count >= 4) & (count <= MAX_NSN + 3)
    plus = usable & (first == PLUS)  # in plain text a '+' can only come first, after blanks
    padded = np.flatnonzero(usable & np.isin(first, LEADING_BLANKS))
    if len(padded):
        plus[padded] = _contains(raw.take(pa.array(padded)), "+")

    # each group: (rows, country code, rules to strip the national prefix with, national digits of those rows)
    groups: list[tuple[np.ndarray, int, Rules, pa.Array]] = []
    if plus.any():
        groups += _from_plus(digits, np.flatnonzero(plus))
    national = usable & ~plus
    if overrides is None:
        groups += _from_national(default_region, digits, np.flatnonzero(national))
    else:
        overrides = overrides.cast(pa.string()).fill_null("")
        is_default = pc.equal(overrides, "").to_numpy(zero_copy_only=False)
        groups += _from_national(default_region, digits, np.flatnonzero(national & is_default))
        chosen = np.flatnonzero(national & ~is_default)
        if len(chosen):
            encoded = pc.dictionary_encode(overrides.take(pa.array(chosen)))
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            for code, region in enumerate(encoded.dictionary.to_pylist()):
                groups += _from_national(region, digits, chosen[codes == code])

    for rows, country_code, rules, national_digits in groups:
        main = main_rules(country_code)
        if main is None or not rules.strippable:
            continue
        short = _byte_lengths(national_digits) < MIN_NSN
        nsn, lengths = _national_number(national_digits, rules)
        found = _validate(country_code, nsn, lengths)
        if found is None:
            continue
        valid = found != KIND_UNKNOWN
        test = _length_test(lengths, main)
        why = np.full(len(rows), INVALID_CODE, dtype=np.int8)
        why[test == TOO_LONG] = TOO_LONG_CODE
        why[test == TOO_SHORT] = TOO_SHORT_CODE
        why[lengths > MAX_NSN] = TOO_LONG_CODE
        short |= lengths < MIN_NSN
        why[short] = TOO_SHORT_CODE
        good = valid & ~short & (lengths <= MAX_NSN)
        if good.any():
            keys[rows[good]] = _keys(country_code, nsn.filter(pa.array(good)), lengths[good])
            kinds[rows[good]] = found[good]
        reasons[rows[~good]] = why[~good]
        handled[rows] = True
    return Classified(keys, reasons, handled, kinds)


def country_codes(leading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The country calling code each number starts with, from its first three digits: (code, its digit count; 0 if none).

    Calling codes are prefix-free, so the first of the 1-, 2- and 3-digit prefixes that is
    one is the code.
    """
    codes, sizes = _CODE_OF_LEADING
    return codes[leading], sizes[leading]


def _code_of_leading() -> tuple[np.ndarray, np.ndarray]:
    """country_codes for each of the 1000 three-digit starts, worked out once: then it is two lookups per number."""
    leading = np.arange(1000)
    code = np.zeros(len(leading), dtype=np.int64)
    size = np.zeros(len(leading), dtype=np.int8)
    for length in (1, 2, 3):
        prefix = leading // 10 ** (3 - length)
        hit = (size == 0) & KNOWN_CODE[length][prefix]
        code[hit], size[hit] = prefix[hit], length
    return code, size


_CODE_OF_LEADING = _code_of_leading()


def _from_plus(digits: pa.Array, rows: np.ndarray) -> list:
    """'+' then digits: the country code is the 1–3 digit prefix phonenumbers knows."""
    groups = []
    code, size = country_codes(_leading_number(digits, rows, 3))
    for country_code in np.unique(code[size > 0]).tolist():
        main = main_rules(country_code)
        if main is None:  # non-geographic codes take the exact path
            continue
        mine = rows[(size > 0) & (code == country_code)]
        groups.append((mine, country_code, main, pc.utf8_slice_codeunits(digits.take(pa.array(mine)), len(str(country_code)))))
    # a leading 0 or an unknown code: phonenumbers retries without the '+'; the exact path decides
    return groups


def _from_national(region: str, digits: pa.Array, rows: np.ndarray) -> list:
    """No '+': the region's own country code, unless the digits start with it and read better without."""
    rules = rules_for_region(region)
    if not len(rows) or rules is None or not rules.strippable or main_rules(rules.country_code) is None:
        return []
    mine = digits.take(pa.array(rows))
    if rules.idd:  # an international prefix: the exact path handles IDD numbers
        idd = _matches(mine, f"^(?:{rules.idd})")
    else:
        idd = np.zeros(len(mine), dtype=bool)
    code = str(rules.country_code)
    starts = pc.starts_with(mine, code).to_numpy(zero_copy_only=False) & ~idd
    leading = np.zeros(len(mine), dtype=bool)
    groups = []
    if starts.any():
        full = mine.filter(pa.array(starts))
        rest = _strip_national_prefix(pc.utf8_slice_codeunits(full, len(code)), rules)
        better = (~_viable(full, rules) & _viable(rest, rules)) | (_length_test(_byte_lengths(full), rules) == TOO_LONG)
        leading[np.flatnonzero(starts)[better]] = True
        if better.any():
            # parse() strips again, with the country's main region metadata
            groups.append((rows[leading], rules.country_code, main_rules(rules.country_code), rest.filter(pa.array(better))))
    plain = ~idd & ~leading
    if plain.any():
        groups.append((rows[plain], rules.country_code, rules, mine.filter(pa.array(plain))))
    return groups
