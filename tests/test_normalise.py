"""Phone normalisation rules, each with a named fixture saying why it matters."""

from __future__ import annotations

import json

import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ingest.normalise import BLANKS, INTEGRAL_DECIMAL, SCIENTIFIC, _strip, classify_phone, json_objects
from schemas.contacts import RejectReason
from tests.reference import _text

US_PARENS = ("(415) 555-0132", "US", "+14155550132")  # the most common CRM spelling
UK_NUMBER_NO_PLUS = ("07911 123456", "GB", "+447911123456")  # national format, region from the row
UK_WITH_00 = ("0044 20 7946 0958", "GB", "+442079460958")  # 00 international prefix
US_WITH_011 = ("011 44 20 7946 0958", "US", "+442079460958")  # 011 international prefix from the US
TEL_URI = ("tel:+1-646-555-0110", "US", "+16465550110")  # copied from a web page
VANITY = ("1-800-FLOWERS", "US", "+18003569377")  # letters on the keypad
FULL_WIDTH = ("４１５５５５０１３２", "US", "+14155550132")  # typed with an IME
NBSP = ("415\u00a0555\u00a00132", "US", "+14155550132")  # non-breaking spaces from Word
INTEGRAL_FLOAT_TEXT = ("4155550132.0", "US", "+14155550132")  # pandas/database float export
EXACT_SCIENTIFIC = ("4.155550132E+09", "US", "+14155550132")  # every digit still present


@pytest.mark.parametrize(
    "raw,region,e164",
    [US_PARENS, UK_NUMBER_NO_PLUS, UK_WITH_00, US_WITH_011, TEL_URI, VANITY, FULL_WIDTH, NBSP, INTEGRAL_FLOAT_TEXT, EXACT_SCIENTIFIC],
)
def test_valid_numbers_become_e164(raw, region, e164):
    assert classify_phone(raw, region) == (e164, None, None)


EXTENSION = ("312.555.0188 ext. 204", "US")  # extensions are kept as a variable


def test_extension_is_returned_separately():
    assert classify_phone(*EXTENSION) == ("+13125550188", None, "204")


EXCEL_FLOAT_PHONE = "4.15555E+09"  # Excel wrote a long number into CSV: four digits are gone


@pytest.mark.parametrize(
    "raw,region,reason",
    [
        (EXCEL_FLOAT_PHONE, "US", RejectReason.PRECISION_LOST),
        ("4.15555e9", "US", RejectReason.PRECISION_LOST),
        ("", "US", RejectReason.EMPTY),
        ("  \u00a0 ", "US", RejectReason.EMPTY),
        ("call me maybe", "US", RejectReason.NOT_A_NUMBER),
        ("+999 555 0100", "US", RejectReason.INVALID_COUNTRY_CODE),
        ("12", "US", RejectReason.TOO_SHORT),
        ("+1 415 555 0163 99999", "US", RejectReason.TOO_LONG),
        ("555-0100", "US", RejectReason.INVALID),
        ("0044 20 7946 0958", "US", RejectReason.TOO_LONG),  # 00 is not the US exit code: never guessed
        ("4155550132", "XX", RejectReason.INVALID_REGION),
    ],
)
def test_rejects_carry_a_reason(raw, region, reason):
    e164, got, extension = classify_phone(raw, region)
    assert (e164, got, extension) == (None, reason, None)


REGIONS = ["US", "GB", "DE", "IN", "AU", "CA", "FR", "BR"]


@settings(max_examples=300, deadline=None)
@given(region=st.sampled_from(REGIONS), data=st.data())
def test_normalising_an_accepted_number_again_gives_itself(region, data):
    example = phonenumbers.example_number_for_type(region, data.draw(st.sampled_from([0, 1, 2])))
    if example is None:
        return
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    e164, reason, _ = classify_phone(national, region)
    assert reason is None
    again, reason_again, _ = classify_phone(e164, data.draw(st.sampled_from(REGIONS)))
    assert (again, reason_again) == (e164, None)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="0123456789+-() .extEXT:tel#*abc\u00a0", max_size=30), region=st.sampled_from(REGIONS))
def test_agrees_with_phonenumbers_on_validity(text, region):
    """Whatever we accept, phonenumbers formats identically; whatever it validates, we accept."""
    e164, reason, _ = classify_phone(text, region)
    if SCIENTIFIC.fullmatch(text.strip()) or INTEGRAL_DECIMAL.fullmatch(text.strip()):
        return  # documented rules: spreadsheet numbers are read as numbers, not as keypad letters
    try:
        number = phonenumbers.parse(text, region)
        valid = phonenumbers.is_valid_number(number)
    except phonenumbers.NumberParseException:
        valid = False
    if valid:
        assert e164 == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    elif e164 is not None:  # only our documented rewrites (integral decimals) may accept more
        assert text.strip().endswith(".0") or "e" in text.lower()


JSON_TEXT = st.text(alphabet=st.sampled_from(['a', 'Z', ' ', 'é', '😀', '"', '\\', '\n', '\t', '\x00', '\x1f', '\x7f', '\u2028', ',', '}', ':']), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    table=st.integers(1, 4).flatmap(lambda width: st.lists(st.lists(st.one_of(st.just(""), JSON_TEXT), min_size=width, max_size=width), min_size=1, max_size=30)),
    cut=st.integers(0, 30),
)
def test_json_objects_are_json_dumps_of_the_filled_cells(table, cut):
    # as json.dumps(ensure_ascii=False) writes them, empty cells left out; chunked input too
    names = [f"var_{i}" for i in range(len(table[0]))]
    columns = [[row[i] for row in table] for i in range(len(names))]
    arrays = [pa.chunked_array([c[:cut], c[cut:]], type=pa.string()) if cut < len(c) else pa.array(c) for c in columns]
    expected = [json.dumps({n: v for n, v in zip(names, row) if v}, ensure_ascii=False, separators=(",", ":")) for row in table]
    assert json_objects(names, arrays, len(table)).to_pylist() == expected


# every byte _strip's quick checks look at: blanks (and the bytes they share with dashes, quotes and accents), C0 and C1
# controls, DEL, line separators, invisible characters, plain letters and spaces inside a cell; each example uses a few
# of them, so that one odd character alone in a column is tried too
CELL_CHARACTERS = ["a", "Z", " ", "é", "Ø", "\u00a0", "\u2007", "\u202f", "\ufeff", "\t", "\r", "\n", "\x00", "\x1f", "\x7f", "\x85",
                   "\x9f", "\u00ad", "\u00c2", "\u2028", "\u200b", "\u2060", "\u202e", "\u2069", "\u2013", "\u201c", "\u20ac",
                   "\uffef", "😀"]  # fmt: skip
CELLS = st.lists(st.sampled_from(CELL_CHARACTERS), min_size=1, max_size=3).flatmap(
    lambda chosen: st.lists(st.one_of(st.just(""), st.text(alphabet=st.sampled_from(["a", *chosen]), max_size=5)), min_size=1, max_size=12))


@settings(max_examples=500, deadline=None)
@given(cells=CELLS, start=st.integers(0, 12))
def test_strip_cleans_every_cell_as_the_reference_does(cells, start):
    # the quick byte checks that let a clean column through untouched never let a cell that needs cleaning through,
    # sliced arrays (an offset into the buffers) included
    column = pa.array(["  pad  ", *cells], type=pa.string()).slice(1 + min(start, len(cells) - 1))
    expected = [_text(cell) for cell in cells[min(start, len(cells) - 1) :]]
    assert _strip(column).to_pylist() == expected


@pytest.mark.parametrize("odd", [*BLANKS, *"\x00\x1f\x7f\x80\x85\x9f\u00ad\u2028\u2029\u200b\u2060\u202a\u202e\u2066\u2069\ufeff"])
@pytest.mark.parametrize("spelling", ["{}ab", "ab{}", "a{}b"])
def test_strip_finds_one_odd_character_alone_in_a_column(odd, spelling):
    # each blank at either end and each control or invisible character anywhere, the only one in its column
    cells = ["Zoë", "Jean\u2013Luc", spelling.format(odd), "", "x \u201cQ\u201d y"]
    assert _strip(pa.array(cells, type=pa.string())).to_pylist() == [_text(cell) for cell in cells]


def test_strip_leaves_a_clean_column_as_it_is():
    # no copy when nothing needs cleaning: accents, and dashes and curly quotes inside a cell (they share their first
    # byte with blanks and invisible characters)
    column = pa.array(["Zoë", "Jean\u2013Luc", "a \u201cQ\u201d b", "", "Ann Lee", "\u00d8"], type=pa.string())
    assert _strip(column) is column
