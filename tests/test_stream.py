"""The one pipeline agrees with a naive row-by-row reference, batch boundaries or not, and writes exactly its CSV files."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest import pipeline as stream
from pipelines.ingest import read
from pipelines.ingest.normalise import json_objects
from pipelines.ingest.options import IngestOptions
from pipelines.ingest.output import csv_rows, excel_safe_array
from pipelines.ingest.sinks import CsvFiles, Frames, _accepted_rows
from schemas.contacts import ACCEPTED_COLUMNS, DYNAMIC_VARIABLES
from tests.conftest import write_delimited
from tests.reference import reference

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


def _safe(text: str) -> str:
    return excel_safe_array(pa.array([text])).to_pylist()[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), batch_rows=st.sampled_from([1, 3, 10, 1 << 20]), whole=st.booleans(), size=st.integers(1, 7))
def test_the_pipeline_decides_every_row_as_the_reference_does(tmp_path_factory, monkeypatch, seed, batch_rows, whole, size):
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
    blocked = {"+12125550199"} if seed % 2 else set()  # a do-not-call number, half the time
    # cut files into batches of a few rows, by the whole-file reader or by the streaming one
    monkeypatch.setattr(read, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(read, "BATCH_BYTES", min(batch_rows * 64, 1 << 20))
    monkeypatch.setattr(read, "WHOLE_FILE_BYTES", 1 << 30 if whole else 0)
    expected = reference(files, suppressed=blocked)
    frames = Frames()
    summary = stream.run(files, IngestOptions("s", batch_size=size), [frames, CsvFiles(folder / "out")], suppressed=blocked)

    assert {f.source_file: f.model_dump(include=set(expected.counts[f.source_file])) for f in summary.files} == expected.counts
    rejected = frames.frame("rejected")
    assert list(rejected.itertuples(index=False, name=None)) == [(f, "", r, raw, reason, detail) for f, r, raw, reason, detail in expected.rejected]
    duplicates = frames.frame("duplicates")
    assert list(duplicates.itertuples(index=False, name=None)) == [(f, "", r, e, f0, r0) for f, r, e, f0, r0 in expected.duplicates]
    assert list(frames.frame("suppressed").itertuples(index=False, name=None)) == [(f, "", r, e) for f, r, e in expected.suppressed]
    accepted = frames.accepted()
    got = {(row.source_file, row.source_row): (row.e164, row.name, json.loads(row.dynamic_variables), row.timezone)
           for row in accepted.itertuples()}  # fmt: skip
    assert got == {(f, r): (e, n, v, z) for f, r, e, n, v, z in expected.accepted}
    # chunks: per zone set, in arrival order, cut every `size`; each keyed by its members
    by_zone = defaultdict(list)
    for f, r, e, n, v, z in expected.accepted:
        by_zone[z].append((f, r))
    cut = defaultdict(list)
    for plan in summary.batches:
        members = accepted[accepted["chunk_key"] == plan.key]
        assert len(members) == plan.size <= size and set(members["timezone"]) == {plan.timezone}
        cut[plan.timezone] += list(zip(members["source_file"], members["source_row"]))
    assert dict(cut) == dict(by_zone)
    assert all(plan.size == size for zone in by_zone for plan in [p for p in summary.batches if p.timezone == zone][:-1])
    # the files say the same, escaped for Excel
    assert _read(folder / "out" / "rejected.csv")[1:] == [[_safe(f), "", str(r), _safe(raw), reason, _safe(detail)] for f, r, raw, reason, detail in expected.rejected]
    assert _read(folder / "out" / "duplicates.csv")[1:] == [[_safe(f), "", str(r), e, _safe(f0), str(r0)] for f, r, e, f0, r0 in expected.duplicates]
    written = {(row[2], int(row[4])): (row[0], row[1]) for row in _read(folder / "out" / "accepted.csv")[1:]}
    assert written == {(_safe(f), r): (e, _safe(n)) for f, r, e, n, v, z in expected.accepted}


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
        "phone_column": pa.array(["Phone", "Mobile Phone", "Phone", "Phone"][:count]),
        "timezone": pa.DictionaryArray.from_arrays(zone_codes, pa.array(["America/Los_Angeles", "America/New_York"])),
        "state": pa.DictionaryArray.from_arrays(chunks, pa.array(["CA", ""])),
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
    ([0, 0, 1, 1], None),  # two chunks, one zone set and state each: zone, state and key joined as one column
    ([0, 0, 1, 1], [1, 1, 1, 1]),  # the zone codes are not the chunk's: zone, state and key apart
])  # fmt: skip
def test_accepted_rows_are_the_bytes_arrows_writer_makes(names, notes, chunks, zone_codes):
    piece = _accepted_piece(names, notes, chunks, zone_codes)
    variables = ["var:clinic", "var:notes"]
    objects = json_objects(["clinic", "notes"], [piece.column(v) for v in variables], piece.num_rows)
    written = piece.set_column(0, "e164", pa.array([f"+{digits}" for digits in piece.column("e164").to_pylist()]))
    expected = b"".join(b.to_pybytes() for b in csv_rows(ACCEPTED_COLUMNS, written.append_column(DYNAMIC_VARIABLES, objects)))
    assert b"".join(memoryview(b).tobytes() for b in _accepted_rows(variables, piece)) == expected


@pytest.mark.parametrize("first", ["plain.csv", "ragged.csv", "sheet.jsonl"])
def test_a_read_started_ahead_gives_what_run_reads_itself(tmp_path, first):
    # the dry run starts reading the first file while the pipeline's modules load: same rows, counts and chunks, whether
    # the streaming reader takes that file, declines it (ragged rows: the exact reader) or it is no delimited text
    from pipelines.ingest import ahead

    (tmp_path / "plain.csv").write_text("Phone,Name\n4155550132,a\n4155550133,b\n4155550132,c\nnope,d\n")
    (tmp_path / "ragged.csv").write_text("Phone,Name\n4155550134,a,extra\n4155550135,b\n")
    (tmp_path / "sheet.jsonl").write_text('{"Phone": "4155550136", "Name": "e"}\n{"Phone": "4155550133", "Name": "f"}\n')
    paths = [tmp_path / first, *(tmp_path / name for name in ("plain.csv", "ragged.csv", "sheet.jsonl") if name != first)]
    options = IngestOptions("s", batch_size=2)
    results = []
    hashed = ahead.start(paths, options, hashed=True)  # a real import's: every file hashed first, then the first read
    for started in (None, ahead.start(paths, options), hashed):
        frames = Frames()
        summary = stream.run(paths, options, [frames], ahead=started)
        results.append((summary.model_dump(), frames.accepted().to_dict("records"), frames.frame("rejected").to_dict("records")))
    assert results[0] == results[1] == results[2]
    assert results[0][0]["rows_read"] == 8 and results[0][0]["duplicates"] == 2
    assert hashed.hashes(paths) == [ahead.file_sha256(path) for path in paths] == ahead.Ahead(None, None).hashes(paths)


def test_a_cancelled_read_ahead_stops_hashing_and_never_reads(tmp_path):
    """A command that fails after starting its read ahead (the campaign's lock is held) leaves at once: the hashing
    stops at its next megabyte and the read is not begun."""
    import threading
    from concurrent.futures import CancelledError, Future

    from pipelines.ingest import ahead

    big = tmp_path / "big.csv"
    big.write_bytes(b"Phone\n" + b"4155550132\n" * 200_000)  # 2.2 MB: three blocks to hash
    stop = threading.Event()
    assert ahead.file_sha256(big, stop) == ahead.file_sha256(big)
    stop.set()
    with pytest.raises(CancelledError):
        ahead.file_sha256(big, stop)
    started = ahead.Ahead(big, None, Future())
    started.cancel()
    with pytest.raises(CancelledError):  # the task that would hash and then read ends at the first block
        ahead._hash_then_read([big], big, None, started)
    with pytest.raises(CancelledError):
        started.digests.result()
