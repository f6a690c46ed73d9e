"""The columnar fast path agrees with phonenumbers (E.164 and valid/invalid) on everything it handles,
and the whole normalise stage agrees with the per-value rule book on everything."""

from __future__ import annotations

from unittest import mock

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipelines.ingest import fastphone
from pipelines.ingest.fastphone import PREFIX_DIGITS, UNDECIDED, _country_rules, _validate_by_patterns, classify_columns, digits_only, prefix_kinds
from pipelines.ingest.normalise import classify_column, classify_phone
from schemas.contacts import REASON_BY_CODE

REGIONS = ["US", "CA", "GB", "AU", "DE", "IN", "FR", "BR", "MX", "JP", "IT", "AR", "ZA", "NG", "JM"]
SEPARATORS = ["", " ", "-", ".", "/", "  ", " - ", "\u00a0", "\t"]


def _example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    return str(number.national_number) if number else "2015550123"


@st.composite
def phone_like(draw):
    """Real numbers of several regions, respelled every way people type them, then damaged a little."""
    region = draw(st.sampled_from(REGIONS))
    digits = _example(region, draw(st.sampled_from([0, 1, 2, 3, 4])))
    digits = "".join(d if draw(st.booleans()) else draw(st.sampled_from("0123456789")) for d in digits)
    cut = draw(st.integers(-2, 2))
    digits = digits[: len(digits) + cut] if cut < 0 else digits + "1234"[:cut]
    code = str(phonenumbers.country_code_for_region(region))
    prefix = draw(st.sampled_from(["", "+" + code, "00" + code, "011" + code, "+", "0", "1", "(0)", "tel:+" + code, "+0", "+999"]))
    separator = draw(st.sampled_from(SEPARATORS))
    groups = [digits[i : i + draw(st.integers(2, 4))] for i in range(0, len(digits), 3)]
    body = separator.join(groups)
    if draw(st.booleans()) and len(body) > 3:
        body = f"({body[:3]}) {body[3:]}"
    suffix = draw(st.sampled_from(["", "", "", " ext. 12", " x7", "#", " abc", ".0"]))
    padding = draw(st.sampled_from(["", " ", "\t", "  "]))
    text = f"{padding}{prefix}{separator if prefix else ''}{body}{suffix}{padding}"
    return text, draw(st.sampled_from(REGIONS))


def _truth(text: str, region: str):
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=400, deadline=None)
@given(cases=st.lists(phone_like(), min_size=1, max_size=60))
def test_fast_path_agrees_with_phonenumbers(cases):
    texts = [t for t, _ in cases]
    regions = [r for _, r in cases]
    keys, reasons, handled, _ = classify_columns(pa.array(texts), "US", pa.array(regions))
    for i, (text, region) in enumerate(cases):
        if handled[i]:
            e164 = f"+{keys[i]}" if keys[i] else None
            assert e164 == _truth(text, region), (text, region)
            exact = classify_phone(text, region)
            assert (e164, REASON_BY_CODE[reasons[i]]) == (exact[0], exact[1]), (text, region)


@settings(max_examples=300, deadline=None)
@given(cases=st.lists(phone_like(), min_size=1, max_size=60))
def test_fast_path_by_prefix_tables_agrees_with_phonenumbers(cases):
    # large columns validate by prefix tables; here every column is "large"
    with mock.patch.object(fastphone, "TABLE_MIN_ROWS", 1):
        keys, reasons, handled, _ = classify_columns(pa.array([t for t, _ in cases]), "US", pa.array([r for _, r in cases]))
    for i, (text, region) in enumerate(cases):
        if handled[i]:
            assert (f"+{keys[i]}" if keys[i] else None) == _truth(text, region), (text, region)
            assert REASON_BY_CODE[reasons[i]] == classify_phone(text, region)[1], (text, region)


# country code and length: NANP, the bench file's other countries, and some with many regions or types
TABLE_CASES = [(1, 10), (44, 10), (44, 9), (61, 9), (49, 11), (49, 10), (91, 10), (33, 9), (52, 10), (55, 11), (7, 10), (39, 10), (86, 11), (81, 10)]


@pytest.mark.parametrize("country_code, length", TABLE_CASES)
def test_every_prefix_table_entry_agrees_with_the_patterns(country_code, length):
    # each prefix, followed by digits of every kind: all zeros, all nines and random ones
    table = prefix_kinds(country_code, length)
    assert table is not None and (table != UNDECIDED).mean() > (0.98 if country_code == 1 else 0.5)
    rng = np.random.default_rng(country_code * 100 + length)
    rest = length - PREFIX_DIGITS
    prefixes = np.repeat(np.arange(10**PREFIX_DIGITS), 6)
    tails = rng.integers(0, 10**rest, len(prefixes))
    tails[0::6], tails[1::6] = 0, 10**rest - 1
    numbers = [f"{p:0{PREFIX_DIGITS}d}{t:0{rest}d}" for p, t in zip(prefixes.tolist(), tails.tolist())]
    kinds = _validate_by_patterns(_country_rules(country_code), pa.array(numbers), np.full(len(numbers), length))
    decided = table[prefixes] != UNDECIDED
    mismatch = np.flatnonzero(decided & (table[prefixes] != kinds))
    assert not len(mismatch), [(numbers[i], int(table[prefixes[i]]), int(kinds[i])) for i in mismatch[:5]]


def test_a_pattern_beyond_digits_gets_no_table():
    with pytest.raises(fastphone._NotDigitsOnly):
        fastphone._widened(r"[^0]\d{4}", "X", every_class=False)
    assert fastphone._widened(r"(?:2[0-2]|3\d)\d{6,7}|9?", "Y", every_class=True) == "(?:[2Y][0-2Y]|[3Y][0-9Y])[0-9Y]{6,7}|[9Y]?"
    assert fastphone._widened(r"(?:2[0-2]|3\d)\d{6,7}|9?", "X", every_class=False) == "(?:2[0-2]|3[0-9X])[0-9X]{6,7}|9?"


@settings(max_examples=200, deadline=None)
@given(cases=st.lists(phone_like(), min_size=1, max_size=60), default=st.sampled_from(REGIONS))
def test_normalise_column_equals_the_rule_book_row_by_row(cases, default):
    texts = [t for t, _ in cases]
    overrides = [r if i % 3 else "" for i, (_, r) in enumerate(cases)]
    phones = classify_column(pa.array(texts), default, pa.array(overrides))
    extensions = phones.extensions if phones.extensions is not None else [None] * len(texts)
    for i, text in enumerate(texts):
        got = (phones.e164[i], REASON_BY_CODE[phones.reasons[i]], extensions[i])
        assert got == classify_phone(text, overrides[i] or default), (text, overrides[i] or default)


def test_the_fast_path_handles_the_common_shapes():
    shapes = ["(415) 555-0132", "415.555.0132", "+1 415 555 0132", "1-415-555-0132", "07911 123456", "+44 20 7946 0958", ""]
    handled = classify_columns(pa.array(shapes), "US", pa.array(["", "", "", "", "GB", "", ""])).handled
    assert handled.all()


def test_digits_only_on_sliced_and_multibyte_input():
    values = pa.array(["x", "(415) 555-0132", "", "é9ü1", "+1 2"])
    assert digits_only(values).to_pylist() == ["", "4155550132", "", "91", "12"]
    assert digits_only(values.slice(1, 3)).to_pylist() == ["4155550132", "", "91"]


def test_digits_only_keeps_the_last_digit_before_trailing_empty_rows():
    # reduceat over row starts: empty rows at the end start where the data ends
    assert digits_only(pa.array(["+1 (415) 555-0132", "", "", "7"])).to_pylist() == ["14155550132", "", "", "7"]
    assert digits_only(pa.array(["", "12", "", ""])).to_pylist() == ["", "12", "", ""]
    assert digits_only(pa.array(["", ""])).to_pylist() == ["", ""]


PLAIN_TEXT = st.text(alphabet=st.sampled_from(list("0123456789 ()-.+\t\r") + ["x", "é", "\u00a0"]), max_size=8)


@settings(max_examples=400, deadline=None)
@given(cells=st.lists(PLAIN_TEXT, min_size=1, max_size=20), start=st.integers(0, 20))
@example(cells=["+ 4155550132", "+  (415)", "+ -1", "+", "+ ", " 415", "\t415\t", "4\t5", "415+", "++1", "(415)", ".5", ""], start=0)
@example(cells=["", ""], start=0)
def test_plain_cells_by_their_bytes_are_what_the_pattern_says(cells, start):
    # the byte-level decision (with RE2 for leading blanks, tabs and '+ ') agrees with RE2 on every cell, sliced too
    column = pa.array(["4155550132", *cells], type=pa.string()).slice(1 + min(start, len(cells) - 1))
    expected = pc.match_substring_regex(column, fastphone.PLAIN).to_numpy(zero_copy_only=False)
    assert fastphone._plain(column).tolist() == expected.tolist()
