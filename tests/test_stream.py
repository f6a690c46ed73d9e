"""The streamed dry run produces exactly what the in-memory ingest produces, batch boundaries or not."""

from __future__ import annotations

import csv
import random

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest import pipeline as stream
from pipelines.ingest.memory import IngestOptions, ingest
from pipelines.ingest.normalise import json_objects
from pipelines.ingest.output import csv_rows
from schemas.contacts import ACCEPTED_COLUMNS, DYNAMIC_VARIABLES
from pipelines.ingest.output import write_outputs
from tests.conftest import write_delimited

PHONES = ["(415) 555-0132", "+1 212 555 0199", "415.555.0147", "+44 20 7946 0958", "", "n/a", "555-0100", "4.15555E+09",
          "212-555-0199", "+49 30 901820", "1-800-FLOWERS", "312.555.0188 ext. 204"]  # fmt: skip


NAMES, NOTES = ["ann", "bo", ""], ["x", "", "=1+2"]
# now and then a cell a CSV or JSON writer must escape: its piece of accepted.csv goes through Arrow's writer
ESCAPED = ['Dwayne "The Rock"', "line\nbreak", 'say "hi"', "back\\slash", "tab\there", "bell\x07"]


def _cell(rng, plain):
    return rng.choice(ESCAPED) if rng.random() < 0.04 else rng.choice(plain)


def _read(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), batch_rows=st.sampled_from([1, 3, 10, 1 << 20]), whole=st.booleans(), size=st.integers(1, 7))
def test_streamed_equals_in_memory(tmp_path_factory, monkeypatch, seed, batch_rows, whole, size):
    rng = random.Random(seed)
    folder = tmp_path_factory.mktemp("s")
    files = []
    for index in range(2):
        rows = [["Phone", "Name", "Note"]] + [[rng.choice(PHONES), _cell(rng, NAMES), _cell(rng, NOTES)] for _ in range(rng.randint(0, 40))]
        if rng.random() < 0.5:
            rows.insert(rng.randint(1, len(rows)), ["", "", ""])  # an interior blank row
        rows += [["", "", ""]] * rng.randint(0, 3)  # trailing blank rows are not rows
        files.append(write_delimited(folder / f"f{index}.csv", rows))
    if not any(len(_read(f)) > 1 and any(any(c.strip() for c in r) for r in _read(f)[1:]) for f in files):
        return
    options = IngestOptions("s", batch_size=size)
    blocked = {"+12125550199"} if seed % 2 else set()  # a do-not-call number, half the time
    # cut files into batches of a few rows, by the whole-file reader or by the streaming one
    monkeypatch.setattr(stream, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(stream, "BATCH_BYTES", min(batch_rows * 64, 1 << 20))
    monkeypatch.setattr(stream, "WHOLE_FILE_BYTES", 1 << 30 if whole else 0)
    try:
        expected_result = ingest(files, options, suppressed=blocked)
    except Exception as exc:  # noqa: BLE001 - both paths must refuse the same input
        with pytest.raises(type(exc)):
            stream.stream_import(files, options, folder / "streamed", suppressed=blocked)
        return
    write_outputs(expected_result, folder / "memory")
    summary = stream.stream_import(files, options, folder / "streamed", suppressed=blocked)
    streamed, in_memory = summary.model_dump(), expected_result.summary().model_dump()
    # chunks complete per timezone as the stream goes, so their order (not their content) may differ
    assert sorted(streamed.pop("batches"), key=str) == sorted(in_memory.pop("batches"), key=str)
    assert streamed == in_memory
    for name in ("rejected.csv", "duplicates.csv", "suppressed.csv"):
        assert _read(folder / "streamed" / name) == _read(folder / "memory" / name), name
    accepted, expected = _read(folder / "streamed" / "accepted.csv"), _read(folder / "memory" / "accepted.csv")
    assert accepted[0] == expected[0] and sorted(accepted[1:]) == sorted(expected[1:])


def _accepted_piece(names, notes, chunks=None, zone_codes=None):
    count = len(names)
    codes = pa.array([0] * count, type=pa.int32())
    chunks = pa.array(chunks or [0] * count, type=pa.int32())
    zone_codes = pa.array(zone_codes, type=pa.int32()) if zone_codes else chunks
    return pa.table({
        "e164": pa.array([f"1415555{i:04d}" for i in range(count)]),  # without the '+': the rows get it
        "name": pa.array(names),
        "source_file": pa.DictionaryArray.from_arrays(codes, pa.array(["in/contacts.csv"])),
        "source_sheet": pa.DictionaryArray.from_arrays(codes, pa.array([""])),
        "source_row": pa.array(range(2, count + 2), type=pa.int64()),
        "timezone": pa.DictionaryArray.from_arrays(zone_codes, pa.array(["America/Los_Angeles", "America/New_York"])),
        "chunk_key": pa.DictionaryArray.from_arrays(chunks, pa.array(["ck0123456789abcdef", "ckfedcba9876543210"])),
        "var:clinic": pa.array(["Mission", "", "Loop", ""][:count]),
        "var:notes": pa.array(notes),
    })  # fmt: skip


@pytest.mark.parametrize("names, notes", [
    (["Ann", "Bo", "Cy", "Di"], ["VIP", "", "", "x"]),  # plain: one Arrow join, and an all-empty row ({})
    (['Dwayne "The Rock"', "Bo", "Cy", "Di"], ["VIP", "", "", "x"]),  # a quote in a name: Arrow's writer
    (["Ann", "Bo", "Cy", "Di"], ['say "hi"', "tab\there", "", "x"]),  # JSON json.dumps must escape: Arrow's writer
])  # fmt: skip
@pytest.mark.parametrize("chunks, zone_codes", [
    (None, None),  # one chunk
    ([0, 0, 1, 1], None),  # two chunks, one zone set each: zone and key joined as one column
    ([0, 0, 1, 1], [1, 1, 1, 1]),  # the zone codes are not the chunk's: zone and key apart
])  # fmt: skip
def test_accepted_rows_are_the_bytes_arrows_writer_makes(names, notes, chunks, zone_codes):
    piece = _accepted_piece(names, notes, chunks, zone_codes)
    variables = ["var:clinic", "var:notes"]
    objects = json_objects(["clinic", "notes"], [piece.column(v) for v in variables], piece.num_rows)
    written = piece.set_column(0, "e164", pa.array([f"+{digits}" for digits in piece.column("e164").to_pylist()]))
    expected = b"".join(b.to_pybytes() for b in csv_rows(ACCEPTED_COLUMNS, written.append_column(DYNAMIC_VARIABLES, objects)))
    assert b"".join(memoryview(b).tobytes() for b in stream._accepted_rows(variables, piece)) == expected
