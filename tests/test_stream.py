"""The streamed dry run produces exactly what the in-memory ingest produces, batch boundaries or not."""

from __future__ import annotations

import csv
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import stream
from pipelines.ingest import IngestOptions, ingest
from pipelines.output import write_outputs
from tests.conftest import write_delimited

PHONES = ["(415) 555-0132", "+1 212 555 0199", "415.555.0147", "+44 20 7946 0958", "", "n/a", "555-0100", "4.15555E+09",
          "212-555-0199", "+49 30 901820", "1-800-FLOWERS", "312.555.0188 ext. 204"]  # fmt: skip


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
        rows = [["Phone", "Name", "Note"]] + [[rng.choice(PHONES), rng.choice(["ann", "bo", ""]), rng.choice(["x", "", "=1+2"])] for _ in range(rng.randint(0, 40))]
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
