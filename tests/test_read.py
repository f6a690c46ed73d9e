"""Readers keep every cell as the text a person typed, in every format and encoding."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from pipelines.errors import InputError
from pipelines.ingest import read
from pipelines.ingest.read import HeaderRule, read_sheet
from tests.conftest import write_delimited

ROWS = [["Name", "Phone", "Note"], ["Zoë Müller", "0044 20 7946 0958", "café; «quoted»"], ["Ana", "4155550132", "x"]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_in_every_encoding_and_delimiter(tmp_path, encoding, delimiter):
    rows = ROWS if encoding != "latin-1" else [[c.replace("«", "").replace("»", "") for c in r] for r in ROWS]
    path = write_delimited(tmp_path / "contacts.csv", rows, encoding=encoding, delimiter=delimiter)
    sheet = read_sheet(path)
    assert sheet.headers == ["Name", "Phone", "Note"]
    assert sheet.cells[0].to_pylist() == ["Zoë Müller", "Ana"]
    assert sheet.cells[1].to_pylist() == ["0044 20 7946 0958", "4155550132"]  # never 44…, never 4.15e9
    assert sheet.cells[2].to_pylist()[0] == rows[1][2]
    assert sheet.rows.tolist() == [2, 3]


def test_cp1252_after_a_long_ascii_start(tmp_path):
    """The sniffed sample is pure ASCII; a Windows-1252 byte appears far into the file."""
    rows = [["Name", "Phone"]] + [["a", "4155550132"]] * 5000 + [["Renée", "4155550133"]]
    sheet = read_sheet(write_delimited(tmp_path / "late.csv", rows, encoding="cp1252"))
    assert sheet.cells[0][-1].as_py() == "Renée"


def test_tsv_by_extension(tmp_path):
    path = write_delimited(tmp_path / "c.tsv", [["Phone", "A,B"], ["+1 415 555 0132", "1,2"]], delimiter="\t")
    sheet = read_sheet(path)
    assert sheet.headers == ["Phone", "A,B"] and sheet.cells[1].to_pylist() == ["1,2"]


def test_blank_rows_at_the_end_are_not_rows_but_interior_ones_keep_numbering(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("Phone,Name\n4155550132,a\n,\n4155550133,b\n\n,\n\n")
    sheet = read_sheet(path)
    assert sheet.rows.tolist() == [2, 3, 4]
    assert sheet.cells[0].to_pylist() == ["4155550132", "", "4155550133"]


def _workbook(path: Path, rows, title="Contacts", extra_sheet=None) -> Path:
    workbook = Workbook()
    ws = workbook.active
    ws.title = title
    for row in rows:
        ws.append(row)
    if extra_sheet:
        other = workbook.create_sheet(extra_sheet[0])
        for row in extra_sheet[1]:
            other.append(row)
    workbook.save(path)
    return path


def test_xlsx_numbers_become_their_digits_and_text_keeps_zeros(tmp_path):
    path = _workbook(tmp_path / "c.xlsx", [["Phone", "Amount"], [4155550132, 12.5], ["0044 20 7946 0958", 3], [14155550199, None]])
    sheet = read_sheet(path)
    assert sheet.cells[0].to_pylist() == ["4155550132", "0044 20 7946 0958", "14155550199"]
    assert sheet.cells[1].to_pylist() == ["12.5", "3", ""]
    assert sheet.sheet == "Contacts"


def test_xlsx_sheet_choice_and_missing_sheet(tmp_path):
    path = _workbook(tmp_path / "c.xlsx", [["Phone"], ["1"]], extra_sheet=("Second", [[None], ["Mobile"], [2125550199]]))
    sheet = read_sheet(path, sheet="Second")
    assert sheet.headers == ["Mobile"] and sheet.cells[0].to_pylist() == ["2125550199"]
    assert sheet.rows.tolist() == [3]  # the header sits on row 2 of that sheet
    with pytest.raises(InputError, match=r"no sheet named 'Nope' \(sheets: Contacts, Second\)"):
        read_sheet(path, sheet="Nope")


def test_parquet_typed_columns(tmp_path):
    table = pa.table(
        {
            "phone_int": pa.array([4155550132, None], pa.int64()),
            "phone_float": pa.array([4155550133.0, 1.5]),
            "phone_text": pa.array(["0044 20 7946 0958", None]),
        }
    )
    path = tmp_path / "c.parquet"
    pq.write_table(table, path)
    sheet = read_sheet(path)
    assert sheet.cells[0].to_pylist() == ["4155550132", ""]
    assert sheet.cells[1].to_pylist() == ["4155550133", "1.5"]
    assert sheet.cells[2].to_pylist() == ["0044 20 7946 0958", ""]
    assert sheet.rows.tolist() == [1, 2]


def test_jsonl_numbers_keep_their_written_digits(tmp_path):
    path = tmp_path / "c.jsonl"
    lines = ['{"phone": 4155550132, "vip": true}', "", '{"phone": "0044 20 7946 0958", "tags": ["a"]}', '{"phone": 4.15555e9}']
    path.write_text("\n".join(lines) + "\n")
    sheet = read_sheet(path)
    assert sheet.headers == ["phone", "vip", "tags"]
    assert sheet.cells[0].to_pylist() == ["4155550132", "0044 20 7946 0958", "4.15555e9"]
    assert sheet.cells[2].to_pylist() == ["", json.dumps(["a"]), ""]
    assert sheet.rows.tolist() == [1, 3, 4]


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("missing.csv", None, "file not found"),
        ("empty.csv", b"", "file is empty"),
        ("blank.csv", b"\n\n  \n", "no rows"),
        ("image.csv", bytes(range(256)) * 20, "binary content"),
        ("fake.xlsx", b"this is not a workbook", "not a readable Excel workbook"),
        ("fake.parquet", b"PAR1 nope", "not a readable Parquet file"),
        ("bad.jsonl", b'{"phone": 1}\n{nope}\n', "row 2: not valid JSON"),
        ("doc.pdf", b"%PDF-1.4", "unsupported file type '.pdf'"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_sheet(path)


def test_headerless_columns_are_named_by_letter_and_empty_ones_dropped(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("Phone,,,\n4155550132,vip,,\n")
    sheet = read_sheet(path)
    assert sheet.headers == ["Phone", "column_b"]
    assert sheet.cells[1].to_pylist() == ["vip"]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("quoted", [False, True])
def test_block_by_block_reading_agrees_with_the_exact_reader(tmp_path, monkeypatch, line_end, quoted):
    # a file without a quote character is cut into blocks at line breaks, one with quotes by following them: either
    # way, in blocks of a few rows, every cell and row number is what the exact reader finds
    monkeypatch.setattr(read, "WHOLE_FILE_BYTES", 0)
    monkeypatch.setattr(read, "BATCH_BYTES", 64)
    note = '"two\nlines, and a ""quote"""' if quoted else "plain; note"
    lines = ["Phone,Name,Note", *(f"41555501{n:02d},name {n},{note if n % 7 == 3 else n}" for n in range(40)), ",,", "4155550199,last,x"]
    path = tmp_path / "blocks.csv"
    path.write_bytes(line_end.join(lines).encode() + line_end.encode())
    assert read._holds_quote(path) is quoted
    batches = list(read.delimited_batches(path, HeaderRule()))
    exact = read_sheet(path, exact=True)
    assert len(batches) > 1
    assert [row for sheet in batches for row in sheet.rows.tolist()] == exact.rows.tolist()
    for column in range(3):
        assert [cell for sheet in batches for cell in sheet.cells[column].to_pylist()] == exact.cells[column].to_pylist()
