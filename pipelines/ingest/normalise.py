"""Normalise stage: raw text cells → contacts (E.164, name, variables) and rejects (reason).

Phone parsing runs once per distinct (value, region) pair, then maps back to the rows:
contact lists repeat the same spellings, so this is both fast and a pure column operation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from pipelines.ingest.arrow import combined, string_buffers, text_array, text_chunks
from pipelines.ingest.columns import ColumnMap
from pipelines.ingest.fastphone import classify_columns
from pipelines.ingest.read import Cells, RawSheet
from pipelines.ingest.threads import pool
from pipelines.ingest.timezones import canonical_zones, known_zones
from schemas.contacts import EXTENSION_VARIABLE, REASON_BY_CODE, REASON_CODE, RejectReason

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

    Returns (E.164 keys, reason codes, extensions): int64 (0 when rejected), int8 (0 when
    accepted) and an object array holding None where there is no extension.
    """
    seen: dict[tuple[str, str], int] = {}  # each distinct pair numbered in order of first occurrence
    codes = np.fromiter((seen.setdefault(pair, len(seen)) for pair in zip(list(values), list(regions))), dtype=np.intp, count=len(values))
    uniques = list(seen)
    results = [_classify_cached(raw, region) for raw, region in uniques]
    numbers = np.array([int(e164[1:]) if e164 else 0 for e164, _, _ in results], dtype=np.int64)
    reasons = np.array([REASON_CODE[reason] if reason else 0 for _, reason, _ in results], dtype=np.int8)
    extensions = np.empty(len(results), dtype=object)
    extensions[:] = [extension for _, _, extension in results]
    return numbers[codes], reasons[codes], extensions[codes]



# the bytes that can begin or end one of BLANKS in UTF-8: a column with none of them at either end of any cell needs
# no trimming (the common case, checked on the buffers in a few ms)
_LEADS = sorted({c.encode()[0] for c in BLANKS})
_TRAILS = sorted({c.encode()[-1] for c in BLANKS})


CONTROLS = " *[\\x{00}-\\x{1f}\\x{7f}-\\x{9f}\\x{2028}\\x{2029}]+ *"  # C0, C1 controls, line/paragraph separators (RE2)
# invisible characters that only hide or reorder text: zero-width space, word joiner, soft hyphen, a BOM inside a cell,
# bidirectional embeddings, overrides and isolates (ZWJ/ZWNJ and the LRM/RLM marks stay: scripts and emoji need them)
INVISIBLE = "[\\x{200b}\\x{2060}\\x{00ad}\\x{feff}\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}]+"


def _strip(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The column with BLANKS trimmed from both ends of every cell, and every run of C0/C1 control characters inside
    a cell (a line break in a note, a Mac Roman byte read as Latin-1) made one space: none reaches a name or a
    variable."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    if any(_has_controls(chunk) for chunk in chunks):
        array = pc.replace_substring_regex(array.cast(pa.string()), pattern=CONTROLS, replacement=" ")
        array = pc.replace_substring_regex(array, pattern=INVISIBLE, replacement="")
        return pc.utf8_trim(array, characters=BLANKS)
    if any(_needs_trim(chunk) for chunk in chunks):
        return pc.utf8_trim(array, characters=BLANKS)
    return array


def _has_controls(array: pa.Array) -> bool:
    """Whether a cell holds a C0 or C1 control, a line separator or an invisible character (CONTROLS, INVISIBLE),
    judged on the UTF-8 bytes: C0 below 0x20, DEL 0x7F, C1 and the soft hyphen 0xC2 0x80-0x9F / 0xAD, the others
    three bytes from 0xE2 0x80 / 0xE2 0x81 (not dashes or curly quotes, which share those) and a BOM's 0xEF 0xBB 0xBF.

    Two reductions decide the common cases (a control byte anywhere; plain ASCII); only the bytes from 0x7F up are
    looked at one by one.
    """
    if not pa.types.is_string(array.type):
        return True
    offsets, data = string_buffers(array)
    data = data[offsets[0] : offsets[-1]] if len(offsets) else data[:0]
    if not len(data):
        return False
    if data.min() < 0x20:
        return True
    if data.max() < 0x7F:
        return False
    high = np.flatnonzero(data >= 0x7F)
    byte = data[high]
    if (byte == 0x7F).any():
        return True
    second, third = np.take(data, high + 1, mode="clip"), np.take(data, high + 2, mode="clip")  # past the end: no match
    c1 = (byte == 0xC2) & (((second >= 0x80) & (second <= 0x9F)) | (second == 0xAD))
    general = (byte == 0xE2) & (((second == 0x80) & ((third == 0x8B) | _between(third, 0xA8, 0xAE)))
                                | ((second == 0x81) & ((third == 0xA0) | _between(third, 0xA6, 0xA9)))) & (high + 2 < len(data))
    bom = (byte == 0xEF) & (second == 0xBB) & (third == 0xBF) & (high + 2 < len(data))
    return bool(c1.any() or general.any() or bom.any())


def _between(values: np.ndarray, low: int, high: int) -> np.ndarray:
    return (values >= low) & (values <= high)


def _needs_trim(array: pa.Array) -> bool:
    """Whether a cell may begin or end with one of BLANKS, judged by each cell's first and last byte."""
    if not pa.types.is_string(array.type):
        return True
    offsets, data = string_buffers(array)
    if not len(data):
        return False
    if data.min() > 0x20 and data.max() < 0x80:  # no space, no control, no other blank anywhere
        return False
    # an empty cell's "first" byte is the next cell's and its "last" the previous one's (clipped at the ends): real first
    # and last bytes either way, so no cell is judged by a byte from inside another
    first = np.take(data, offsets[:-1], mode="clip")
    last = np.take(data, offsets[1:] - 1, mode="clip")
    return any(bool((first == byte).any()) for byte in _LEADS) or any(bool((last == byte).any()) for byte in _TRAILS)


PARALLEL_MIN_ROWS = 200_000  # below this, one thread is as fast


@dataclass(frozen=True)
class Phones:
    """A phone column after normalising: row i of each array is row i of the column."""

    keys: np.ndarray  # int64 E.164 key (fastphone.e164_keys), 0 where rejected
    reasons: np.ndarray  # int8 code of REASON_BY_CODE, 0 where accepted
    extensions: np.ndarray | None  # object array (None where there is none), or None when no row has one
    kinds: np.ndarray  # int8 fastphone.KIND_* where the columnar path decided the number, KIND_UNKNOWN elsewhere

    @property
    def e164(self) -> list[str | None]:
        """The numbers as E.164 text, None where rejected (for small columns: tests, suppression lists)."""
        return [f"+{key}" if key else None for key in self.keys.tolist()]


def classify_column(raw: pa.Array, default_region: str, overrides: pa.Array | None, meanwhile: Callable[[], None] = lambda: None) -> Phones:
    """Normalise a phone column: the columnar path first, the exact path for what it leaves.

    Halves of a long column are classified on the worker threads (Arrow kernels release
    the GIL); `meanwhile` runs on the calling thread while they do.
    """
    if len(raw) < PARALLEL_MIN_ROWS:
        meanwhile()
        return _classify_part(raw, default_region, overrides)
    half = len(raw) // 2
    futures = [pool().submit(_classify_part, raw.slice(start, length), default_region,
                             overrides.slice(start, length) if overrides is not None else None)
               for start, length in ((0, half), (half, len(raw) - half))]  # fmt: skip
    meanwhile()
    first, second = (future.result() for future in futures)
    extensions = None
    if first.extensions is not None or second.extensions is not None:
        extensions = np.concatenate([part.extensions if part.extensions is not None else np.full(len(part.keys), None, dtype=object)
                                     for part in (first, second)])  # fmt: skip
    return Phones(*(np.concatenate([a, b]) for a, b in ((first.keys, second.keys), (first.reasons, second.reasons))),
                  extensions, np.concatenate([first.kinds, second.kinds]))  # fmt: skip


def _classify_part(raw: pa.Array, default_region: str, overrides: pa.Array | None) -> Phones:
    keys, reasons, handled, kinds = classify_columns(raw, default_region, overrides)
    extensions = None
    rest = np.flatnonzero(~handled)
    if len(rest):  # the exact path, one phonenumbers call per distinct (value, region)
        values = raw.take(pa.array(rest)).to_numpy(zero_copy_only=False)
        if overrides is None:
            regions = np.full(len(rest), default_region, dtype=object)
        else:
            chosen = overrides.take(pa.array(rest)).to_numpy(zero_copy_only=False)
            regions = np.where(chosen == "", default_region, chosen).astype(object)
        keys[rest], reasons[rest], exact_extensions = parse_phones(values, regions)
        if (exact_extensions != None).any():  # noqa: E711 - element-wise, in C
            extensions = np.full(len(raw), None, dtype=object)
            extensions[rest] = exact_extensions
    return Phones(keys, reasons, extensions, kinds)


def country_overrides(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A country column as each row's region for its phone numbers ("" = the default region; a value that names no
    country stays as written, upper-cased, and the row is rejected as invalid_region). Each distinct value is
    looked up once (region_of)."""
    values = pc.utf8_upper(_strip(text_array(column)))
    encoded = pc.dictionary_encode(values)
    names = encoded.dictionary.to_pylist()
    if all(name == "" or name in SUPPORTED_REGIONS for name in names):
        return values
    regions = pa.array([region_of(name) for name in names], pa.string())
    return regions.take(encoded.indices)


# English names ISO 3166 does not use, as people write them (pycountry knows the ISO names, codes and common names)
COUNTRY_ALIASES = {
    "UK": "GB", "GREAT BRITAIN": "GB", "BRITAIN": "GB", "ENGLAND": "GB", "SCOTLAND": "GB", "WALES": "GB",
    "NORTHERN IRELAND": "GB", "UNITED STATES OF AMERICA": "US", "AMERICA": "US", "RUSSIA": "RU", "IVORY COAST": "CI",
    "NORTH KOREA": "KP", "SOUTH KOREA": "KR", "KOREA": "KR", "IRAN": "IR", "SYRIA": "SY", "LAOS": "LA", "BOLIVIA": "BO",
    "VENEZUELA": "VE", "TANZANIA": "TZ", "MOLDOVA": "MD", "TAIWAN": "TW", "MACEDONIA": "MK", "HOLLAND": "NL",
    "THE NETHERLANDS": "NL", "VATICAN": "VA", "PALESTINE": "PS", "BRUNEI": "BN", "CAPE VERDE": "CV", "SWAZILAND": "SZ",
    "BURMA": "MM", "EAST TIMOR": "TL", "CZECHIA": "CZ", "TURKEY": "TR", "UAE": "AE",
}  # fmt: skip


@lru_cache(maxsize=4096)
def region_of(value: str) -> str:
    """A country cell (upper-cased) as the phonenumbers region it names: an ISO 3166 alpha-2 or alpha-3 code, an
    English name or common alias (UK, Great Britain, USA, U.S.), or a country calling code (44, +49, 1 → that code's
    main region). Anything else comes back as it is (not a region: its rows are rejected as invalid_region)."""
    if value == "" or value in SUPPORTED_REGIONS:
        return value
    text = re.sub(r"\s+", " ", value.replace(".", "")).strip()
    if text in SUPPORTED_REGIONS:  # U.S. → US
        return text
    calling = re.fullmatch(r"\+?\s*(\d{1,3})", text)
    if calling:
        region = phonenumbers.region_code_for_country_code(int(calling.group(1)))
        return region if region in SUPPORTED_REGIONS else value
    if text in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[text]
    import pycountry

    try:
        region = pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return value
    return region if region in SUPPORTED_REGIONS else value


@dataclass(frozen=True)
class Normalised:
    """One sheet after the normalise stage, as whole columns: row i of each is row i of the sheet."""

    sheet: RawSheet
    keys: np.ndarray  # int64 E.164 key, 0 for a rejected row
    reasons: np.ndarray  # int8 reason code (REASON_BY_CODE), 0 for an accepted row
    raw: pa.Array  # the phone cells as read: rejects show them
    regions: pa.Array | None  # the country column, upper-cased ("" = the default region), if any
    countries: pa.Array | None  # the country column as written (trimmed), if any: a rejected row's detail names it
    zones: pa.Array | None  # the timezone column in the tz database's spelling ("" = from the number), if any
    zone_texts: pa.Array | None  # the timezone column as written (trimmed), if any: a rejected row's detail names it
    names: pa.Array | pa.ChunkedArray
    variables: dict[str, pa.Array | pa.ChunkedArray]  # variable key → stripped text (the phone extension too, when any row has one)
    kinds: np.ndarray  # int8 fastphone.KIND_* of numbers the columnar path decided (timezones use it)
    phone_headers: tuple[str, ...] = ()  # the phone candidates' headers, in priority order
    phone_source: np.ndarray | None = None  # int8: which candidate each row's number (or raw value) is from; None: the first
    states: pa.Array | None = None  # the state column as written, if any (pipelines.ingest.states reads it)

    def phone_columns(self, rows: np.ndarray) -> pa.Array:
        """The header of the column each of these rows' number came from (accepted.csv's phone_column)."""
        headers = pa.array(self.phone_headers, pa.string())
        if self.phone_source is None:
            return pa.repeat(headers[0], len(rows)) if len(rows) else pa.array([], pa.string())
        return headers.take(pa.array(self.phone_source[rows]))

    @property
    def accepted(self) -> np.ndarray:
        return self.keys != 0


def normalise_columns(sheet: RawSheet, columns: ColumnMap, default_region: str) -> Normalised:
    """Normalise one sheet: every phone to an E.164 key or a reason, names and variables trimmed."""
    cells = sheet.cells
    countries = _strip(text_array(cells[columns.country])) if columns.country is not None else None
    overrides = country_overrides(countries) if countries is not None else None
    trimmed = {}

    def trim() -> None:  # names and variables, on this thread while the workers classify the phones
        trimmed["variables"] = {key: _strip(text_chunks(cells[index])) for key, index in columns.variables.items()}
        trimmed["names"] = _names(cells, columns)

    raws, headers = [], []
    for index in columns.phones:  # a cell of several numbers ("a ::: b", Google Contacts) is one candidate per number
        parts = _several_numbers(text_array(cells[index]))
        raws += parts
        headers += [sheet.headers[index]] * len(parts)
    candidates = [classify_column(raw, default_region, overrides, meanwhile=trim if n == 0 else lambda: None)
                  for n, raw in enumerate(raws)]  # fmt: skip
    phones, raw, source = _first_valid(candidates, raws) if len(raws) > 1 else (candidates[0], raws[0], None)
    keys, reasons = phones.keys, phones.reasons
    if overrides is not None:  # a country that names none rejects the row, even when its number has a +code
        unknown = pc.invert(pc.is_in(overrides, value_set=pa.array(sorted({"", *SUPPORTED_REGIONS})))).to_numpy(zero_copy_only=False)
        bad = unknown & (keys != 0)
        reasons[bad] = REASON_CODE[RejectReason.INVALID_REGION]
        keys[bad] = 0
    variables = trimmed["variables"]
    zones = zone_texts = None
    if columns.timezone is not None:
        zones = zone_texts = _strip(text_array(cells[columns.timezone]))
        named = pc.not_equal(zones, "").to_numpy(zero_copy_only=False)
        zones = canonical_zones(zones)
        known = pc.is_in(zones, value_set=pa.array(sorted(known_zones()))).to_numpy(zero_copy_only=False)
        bad = (keys != 0) & named & ~known
        reasons[bad] = REASON_CODE[RejectReason.INVALID_TIMEZONE]
        keys[bad] = 0
    if phones.extensions is not None and (phones.extensions[keys != 0] != None).any():  # noqa: E711
        variables[EXTENSION_VARIABLE] = pa.array(phones.extensions, type=pa.string()).fill_null("")
    states = text_array(cells[columns.state]) if columns.state is not None else None
    return Normalised(sheet, keys, reasons, raw, overrides, countries, zones, zone_texts, trimmed["names"], variables, phones.kinds,
                      tuple(headers), source, states)  # fmt: skip


EMPTY_DETAIL_ROWS = 10_000  # up to this many `empty` rejects per batch name the text their row holds
REASON_TEXT = np.array([reason.value if reason else "" for reason in REASON_BY_CODE], dtype=object)


MULTI_VALUE = ":::"  # Google Contacts' separator of several values in one cell


def _several_numbers(raw: pa.Array) -> list[pa.Array]:
    """A phone column as candidates: itself, or, when some cell holds several numbers separated by ':::', its first
    numbers, then its second ones, … (a cell with fewer has "" in the later candidates)."""
    if not pc.any(pc.match_substring(raw, MULTI_VALUE)).as_py():
        return [raw]
    values = [value.split(MULTI_VALUE) for value in raw.to_pylist()]
    width = max(len(parts) for parts in values)
    return [pa.array([parts[n].strip() if n < len(parts) else "" for parts in values], pa.string()) for n in range(width)]


def reject_details(done: Normalised, rows: np.ndarray) -> pa.Array:
    """The detail column of these rejected rows: the country or timezone value that names none; for an `empty` phone
    in a row that holds other text (a report's footer, a note), that text; "" where the reason says it all."""
    details = pa.array([""] * len(rows), pa.string())
    empty = done.reasons[rows] == REASON_CODE[RejectReason.EMPTY]
    blank = np.flatnonzero(empty)
    if len(blank) and len(blank) <= EMPTY_DETAIL_ROWS:  # a handful (footers, stray notes), not a column of blank phones
        index = pa.array(rows[blank])
        texts = [combined(done.sheet.cells[i].take(index)).cast(pa.string()).to_pylist() for i in range(len(done.sheet.cells.columns))]
        held = [next((" ".join(str(text).split()) for text in row if text and str(text).strip()), "") for row in zip(*texts)]
        said = [f"no phone number; the row holds '{text[:60]}{'…' if len(text) > 60 else ''}'" if text else "" for text in held]
        details = pc.replace_with_mask(details, pa.array(empty), pa.array(said, pa.string()))
    for column, reason, before, after in ((done.countries, RejectReason.INVALID_REGION, "country '", "' is not a country"),
                                          (done.zone_texts, RejectReason.INVALID_TIMEZONE, "timezone '",
                                           "' is not an IANA timezone name")):  # fmt: skip
        if column is None or not len(rows):
            continue
        bad = done.reasons[rows] == REASON_CODE[reason]
        if bad.any():
            named = pc.binary_join_element_wise(before, combined(column.take(pa.array(rows))), after, "")
            details = pc.if_else(pa.array(bad), named, details)
    return details


def _first_valid(candidates: list[Phones], raws: list[pa.Array]) -> tuple[Phones, pa.Array, np.ndarray]:
    """Several phone columns (in priority order): each row's number is the first candidate holding a valid one; a row
    with none is rejected with the reason of its first non-empty candidate (`empty` if all are blank), and shows that
    cell as its raw value. Also returns which candidate each row took (int8)."""
    rows = len(candidates[0].keys)
    empty = REASON_CODE[RejectReason.EMPTY]
    chosen = np.full(rows, -1, dtype=np.int64)
    for n, phones in enumerate(candidates):
        chosen[(chosen < 0) & (phones.keys != 0)] = n
    shown = chosen.copy()  # the candidate whose cell a rejected row shows
    for n, phones in enumerate(candidates):
        shown[(shown < 0) & (phones.reasons != empty)] = n
    shown[shown < 0] = 0
    every = np.arange(rows)

    def pick(arrays: list[np.ndarray]) -> np.ndarray:
        return np.stack(arrays)[shown, every]

    keys = pick([phones.keys for phones in candidates])
    reasons = pick([phones.reasons for phones in candidates])
    kinds = pick([phones.kinds for phones in candidates])
    extensions = None
    if any(phones.extensions is not None for phones in candidates):
        extensions = pick([phones.extensions if phones.extensions is not None else np.full(rows, None, dtype=object)
                           for phones in candidates])  # fmt: skip
    source = shown.astype(np.int8)
    raw = pc.choose(pa.array(source), *[pc.cast(column, pa.string()) for column in raws])
    return Phones(keys, reasons, extensions, kinds), raw, source


def _names(cells: Cells, columns: ColumnMap) -> pa.Array | pa.ChunkedArray:
    """The name column; or first + last name; a name cell left empty takes first + last name where the file has them
    (Google Contacts: Name, Given Name, Family Name)."""
    names = _strip(text_chunks(cells[columns.name])) if columns.name is not None else None
    if names is not None and not pc.any(pc.equal(names, "")).as_py():
        return names  # whole: first and last names are not needed (the common case, no extra pass)
    parts = [_strip(text_chunks(cells[i])) for i in (columns.first_name, columns.last_name) if i is not None]
    if not parts:
        return names if names is not None else pa.array([""] * len(cells), type=pa.string())
    joined = parts[0] if len(parts) == 1 else pc.utf8_trim(pc.binary_join_element_wise(parts[0], parts[1], " "), characters=" ")
    return joined if names is None else pc.if_else(pc.equal(names, ""), joined, names)


def json_objects(names: list[str], columns: list[pa.Array | pa.ChunkedArray], rows: int) -> pa.Array | pa.ChunkedArray:
    """One JSON object per row, {name: text} for every non-empty cell, exactly as json.dumps(ensure_ascii=False) writes it."""
    parts, redo = json_parts(names, columns, rows)
    objects = join_parts(parts, rows)
    if redo.any():
        objects = pc.replace_with_mask(_as_chunked(objects).combine_chunks(), pa.array(redo), pa.array(exact_json(names, columns, redo), type=pa.string()))
    return objects


def json_parts(names: list[str], columns: list[pa.Array | pa.ChunkedArray], rows: int, quote: str = '"') -> tuple[list, np.ndarray]:
    """Literal text and columns that, joined (join_parts), make each row's JSON object; and the rows that need json.dumps.

    Text needing no escaping is its own JSON, so joining keys and cells is exact, except in
    the rows returned as True: a quote, a backslash or a control character there needs
    json.dumps (exact_json). `quote` stands for every quote character: '""' gives the object
    already escaped for a quoted CSV field. A column filled in every row is its key as
    literal text, then the column: nothing is copied before the final join. A column empty
    in some rows is a member ',"name":"text"' that is null (joined as nothing) where the
    cell is empty; that needs the first present column to be filled in every row, for the
    commas. Otherwise the members are joined by commas skipping the empty ones.
    """
    redo = np.zeros(rows, dtype=bool)
    present = []
    for name, column in zip(names, columns):
        column = pc.fill_null(_as_chunked(column).cast(pa.string()), "")
        empty = _empty_cells(column, redo)
        if not empty.all():
            present.append((name, column, empty))
    if not present:
        return ["{}"], redo
    if present[0][2].any():
        return ["{", _comma_joined(present, rows, quote), "}"], redo
    parts = ["{"]
    for position, (name, column, empty) in enumerate(present):
        key = ("," if position else "") + _json_key(name, quote)
        if empty.any():
            parts.append(_null_where(pc.binary_join_element_wise(key, column, quote, ""), empty))
        else:
            parts += [key, column, quote]
    parts.append("}")
    return parts, redo


def _json_key(name: str, quote: str) -> str:
    """'"name":"' with `quote` for every quote character: what comes before a member's text."""
    return f"{json.dumps(name, ensure_ascii=False)}:".replace('"', quote) + quote


def join_parts(parts: list, rows: int) -> pa.Array | pa.ChunkedArray:
    """Each row's text: literal strings and columns joined in order, a null cell counting as nothing."""
    merged: list = []
    for part in parts:  # neighbouring literals become one: fewer inputs to the join
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    if all(isinstance(part, str) for part in merged):
        return pa.array(["".join(merged)] * rows, type=pa.string())
    return pc.binary_join_element_wise(*merged, "", null_handling="replace", null_replacement="")


def _comma_joined(present: list, rows: int, quote: str) -> pa.ChunkedArray:
    """Each row's members '"name":"text"' joined by commas, empty cells skipped."""
    members = []
    all_empty = np.ones(rows, dtype=bool)
    for name, column, empty in present:
        member = pc.binary_join_element_wise(_json_key(name, quote), column, quote, "")
        members.append(_null_where(member, empty) if empty.any() else member)
        all_empty &= empty
    if all_empty.any():  # pyarrow 26's skipping join drops a row whose inputs are all null: give it one empty member
        members[0] = pc.if_else(pa.array(all_empty), "", members[0])
    body = pc.binary_join_element_wise(*members, ",", null_handling="skip") if len(members) > 1 else members[0]
    if len(body) != rows:
        raise AssertionError("json members lost rows")
    return _as_chunked(body)


def exact_json(names: list[str], columns: list[pa.Array | pa.ChunkedArray], rows: np.ndarray) -> list[str]:
    """json.dumps of the filled cells of the rows marked in `rows`."""
    index = pa.array(np.flatnonzero(rows))
    cells = [pc.fill_null(column.take(index), "").to_pylist() for column in columns]
    return [json.dumps({name: cell[k] for name, cell in zip(names, cells) if cell[k]}, ensure_ascii=False, separators=(",", ":"))
            for k in range(len(index))]  # fmt: skip


def _empty_cells(column: pa.ChunkedArray, redo: np.ndarray) -> np.ndarray:
    """Which cells are empty; marks in `redo` the rows whose text json.dumps would escape."""
    empty, at = np.empty(len(column), dtype=bool), 0
    for chunk in column.chunks:
        offsets, data = string_buffers(chunk)
        empty[at : at + len(chunk)] = offsets[1:] == offsets[:-1]
        odd = np.flatnonzero(needs_escape(data[offsets[0] : offsets[-1]])) + offsets[0]
        if len(odd):
            redo[at + np.searchsorted(offsets, odd, side="right") - 1] = True
        at += len(chunk)
    return empty


def needs_escape(data: np.ndarray) -> np.ndarray:
    """Which bytes json.dumps escapes inside a string: control characters, the quote and the backslash.

    (Three comparisons: ten times faster than looking each byte up in a table.)
    """
    return (data < 0x20) | (data == ord('"')) | (data == ord("\\"))


def _null_where(member: pa.Array | pa.ChunkedArray, empty: np.ndarray) -> pa.ChunkedArray:
    """The member column with nulls where `empty`, made by giving each chunk a validity bitmap (no data copied)."""
    chunks, at = [], 0
    for chunk in _as_chunked(member).chunks:
        bits = np.concatenate([np.ones(chunk.offset, dtype=bool), ~empty[at : at + len(chunk)]])  # a slice reads from its offset
        valid = np.packbits(bits, bitorder="little")
        chunks.append(pa.Array.from_buffers(chunk.type, len(chunk), [pa.py_buffer(valid), *chunk.buffers()[1:]], offset=chunk.offset))
        at += len(chunk)
    return pa.chunked_array(chunks, type=pa.string())


def _as_chunked(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
