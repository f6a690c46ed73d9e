"""The one pipeline as a whole: every row accounted for, chunks rejoin to the input, keys are stable."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numpy as np
import pyarrow as pa

from pipelines.api import load_contacts
from pipelines.errors import UsageError
from pipelines.ingest.chunk import chunk_key, chunk_keys
from pipelines.ingest.options import IngestOptions
from pipelines.ingest.pipeline import run
from pipelines.ingest.sinks import Frames
from pipelines.providers.registry import batch_limit
from tests.conftest import write_delimited


def ingest(paths, options, **skips):
    """The pipeline with a DataFrame sink: (summary, accepted, rejected, duplicates)."""
    frames = Frames()
    summary = run(paths, options, [frames], **skips)
    return summary, frames.accepted(), frames.frame("rejected"), frames.frame("duplicates")

GOOD = ["(415) 555-0132", "+1 212 555 0199", "415.555.0147", "+44 20 7946 0958", "+49 30 901820", "1-800-FLOWERS"]
BAD = ["", "n/a", "555-0100", "4.15555E+09", "+999 1", "12", " "]
phone_cells = st.sampled_from(GOOD + BAD)


@st.composite
def spreadsheets(draw):
    files = draw(st.lists(st.lists(st.tuples(phone_cells, st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=8)), max_size=40), min_size=1, max_size=3))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    size = draw(st.integers(1, 7))
    return files, encoding, delimiter, size


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=spreadsheets())
def test_every_row_is_accounted_for(tmp_path_factory, case):
    files, encoding, delimiter, size = case
    folder = tmp_path_factory.mktemp("sheets")
    paths, expected_rows = [], {}
    for index, rows in enumerate(files):
        cleaned = [[phone, note.encode(encoding, "ignore").decode(encoding, "ignore").replace("\x00", "")] for phone, note in rows]
        path = write_delimited(folder / f"f{index}.csv", [["Phone", "Note"], *cleaned], encoding=encoding, delimiter=delimiter)
        paths.append(path)
        # trailing rows whose every cell is blank are not rows
        while cleaned and not any(c.strip() for c in cleaned[-1]):
            cleaned.pop()
        expected_rows[str(path)] = len(cleaned)
    if not any(expected_rows.values()):
        return
    paths = [p for p in paths if expected_rows[str(p)]]
    summary, accepted, rejected, duplicates = ingest(paths, IngestOptions("prop", batch_size=size), suppressed={"+12125550199"})
    assert summary.rows_read == sum(expected_rows.values())
    assert summary.rows_read == summary.accepted + summary.duplicates + summary.rejected + summary.suppressed
    for counts in summary.files:
        assert counts.rows_read == expected_rows[counts.source_file]
        assert counts.rows_read == counts.accepted + counts.duplicates + counts.rejected + counts.suppressed
    # chunks: none too big, together exactly the accepted contacts in order, keys unique
    assert all(1 <= b.size <= size for b in summary.batches)
    assert sum(b.size for b in summary.batches) == summary.accepted
    assert len({b.key for b in summary.batches}) == len(summary.batches)
    assert accepted["e164"].is_unique
    # the chunks rejoin to the accepted contacts, each keyed by its members
    for plan in summary.batches:
        members = accepted[accepted["chunk_key"] == plan.key]
        assert len(members) == plan.size and set(members["timezone"]) == {plan.timezone}
        assert plan.key == chunk_key("prop", members["e164"].tolist())
    # every reject and duplicate points at a real spreadsheet row (header is row 1)
    for frame in (rejected, duplicates):
        assert (frame["source_row"] >= 2).all()


def test_chunking_is_deterministic_and_keys_depend_on_campaign(tmp_path):
    numbers = [f"+1415555{n:04d}" for n in range(25)]
    path = write_delimited(tmp_path / "c.csv", [["Phone"], *[[n] for n in numbers]])
    plans = ingest([path], IngestOptions("spring", batch_size=10))[0].batches
    again = ingest([path], IngestOptions("spring", batch_size=10))[0].batches
    other = ingest([path], IngestOptions("autumn", batch_size=10))[0].batches
    assert [p.size for p in plans] == [10, 10, 5]
    assert plans == again
    assert {p.key for p in plans}.isdisjoint({p.key for p in other})
    # a key is the hash of the campaign and the chunk's numbers in E.164: pinned, as ledgers hold keys from earlier runs
    assert plans[0].key == chunk_key("spring", numbers[:10]) == "ck" + hashlib.sha256(
        "\n".join(["spring", *numbers[:10]]).encode()).hexdigest()[:16]  # fmt: skip
    digits = pa.array([n[1:] for n in numbers])
    assert chunk_keys("spring", digits, np.array([0, 10, 20, 25])) == [p.key for p in plans]


def test_provider_limits():
    assert batch_limit("batchcall") == 1000 and batch_limit("sandbox") == 1000
    assert batch_limit("magpipe") == 500 and batch_limit("magpipe", 2000) == 500 and batch_limit("batchcall", 50) == 50


def test_duplicates_point_to_the_first_occurrence_across_files(tmp_path):
    a = write_delimited(tmp_path / "a.csv", [["Phone"], ["4155550132"], ["(415) 555-0132"]])
    b = write_delimited(tmp_path / "b.csv", [["Mobile"], ["+1 415 555 0132"]])
    duplicates = ingest([a, b], IngestOptions("dup"))[3]
    assert duplicates[["source_file", "source_row", "duplicate_of_file", "duplicate_of_row"]].values.tolist() == [
        [str(a), 3, str(a), 2],
        [str(b), 2, str(a), 2],
    ]


def test_country_column_overrides_region_and_variables_skip_empty_cells(tmp_path):
    path = write_delimited(
        tmp_path / "c.csv",
        [["Phone", "Country", "First Name", "Plan"], ["07911 123456", "gb", "Ann", ""], ["07911 123457", "", "Bo", "x"], ["1", "ZZ", "", ""]],
    )
    result = load_contacts(path, campaign="c")
    assert result.accepted["e164"].tolist() == ["+447911123456"]
    assert result.accepted["dynamic_variables"].tolist() == [{"first_name": "Ann"}]
    assert result.rejected["reason"].tolist() == ["too_long", "invalid_region"]
    assert result.counts == {"rows_read": 3, "accepted": 1, "duplicates": 0, "rejected": 2}


def test_extension_becomes_a_variable(tmp_path):
    path = write_delimited(tmp_path / "c.csv", [["Phone", "Name"], ["312.555.0188 ext. 204", "Chloe"]])
    result = load_contacts(path)
    row = result.accepted.iloc[0]
    assert (row["e164"], row["name"], row["dynamic_variables"]) == ("+13125550188", "Chloe", {"phone_extension": "204"})
    assert json.loads(json.dumps(row["dynamic_variables"])) == {"phone_extension": "204"}


def test_chunks_are_cut_full_but_the_last_and_never_empty():
    from pipelines.ingest.chunk import cut

    assert cut(0, 1000) == []
    assert cut(1, 1000) == [1]
    assert cut(2500, 1000) == [1000, 2000, 2500]
    assert cut(3000, 1000) == [1000, 2000, 3000]
    with pytest.raises(ValueError):
        cut(5, 0)


def test_the_notebook_api_resolves_settings_as_the_cli_does(tmp_path, monkeypatch):
    """An argument beats the environment, which beats the default — the same resolver as every command."""
    path = write_delimited(tmp_path / "c.csv", [["Phone"], ["07911 123456"]])
    assert load_contacts(path).accepted["e164"].tolist() == []  # US by default: not a US number
    monkeypatch.setenv("CAMPAIGNS_REGION", "GB")
    assert load_contacts(path).accepted["e164"].tolist() == ["+447911123456"]
    assert load_contacts(path, region="US").accepted["e164"].tolist() == []
    monkeypatch.setenv("CAMPAIGNS_REGION", "XX")
    with pytest.raises(UsageError, match="CAMPAIGNS_REGION"):
        load_contacts(path)
