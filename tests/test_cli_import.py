"""`campaigns import --dry-run` as a subprocess: summary, JSON, output files, one-line errors."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import ROOT, run_cli, run_json, write_delimited

SAMPLES = [str(ROOT / "data" / "sample_contacts.csv"), str(ROOT / "data" / "sample_contacts.xlsx")]


def test_dry_run_json_on_the_samples(tmp_home):
    summary = run_json("import", *SAMPLES, "--campaign", "demo", "--dry-run", "--home", str(tmp_home))
    assert {"rows_read", "accepted", "duplicates", "rejected", "reject_reasons", "batches"} <= summary.keys()
    assert summary["rows_read"] == summary["accepted"] + summary["duplicates"] + summary["rejected"] == 42
    assert summary["reject_reasons"]["precision_lost"] == 1
    assert sum(summary["reject_reasons"].values()) == summary["rejected"]
    # one batch per timezone and US state (the samples are small): sizes add up, no group split or mixed
    assert sum(b["size"] for b in summary["batches"]) == summary["accepted"]
    groups = [(b["timezone"], b["us_state"]) for b in summary["batches"]]
    assert len(groups) == len(set(groups)) and ("America/New_York", "NY") in groups and ("Asia/Calcutta", "") in groups


def test_batch_size_is_capped_by_the_provider(tmp_home):
    summary = run_json("import", SAMPLES[0], "--campaign", "d", "--dry-run", "--batch-size", "7", "--provider", "magpipe")
    sizes = [b["size"] for b in summary["batches"]]
    assert max(sizes) <= 7 and sum(sizes) == summary["accepted"] == 21


def test_human_summary_and_output_files(tmp_path, tmp_home):
    sheet = write_delimited(
        tmp_path / "c.csv",
        [["Phone", "Note"], ["4155550132", "=HYPERLINK(\"x\")"], ["=1+2", "@SUM(A1)"], ["4155550132", "-5"], ["+1 212 555 0199", "+ok"]],
    )
    out = tmp_path / "out"
    result = run_cli("import", str(sheet), "--campaign", "c", "--dry-run", "--out", str(out), "--home", str(tmp_home))
    assert result.returncode == 0, result.stderr
    assert "rows read" in result.stdout and "nothing submitted" in result.stdout
    accepted = list(csv.DictReader((out / "accepted.csv").open()))
    rejected = list(csv.DictReader((out / "rejected.csv").open()))
    duplicates = list(csv.DictReader((out / "duplicates.csv").open()))
    assert [r["e164"] for r in accepted] == ["+14155550132", "+12125550199"]  # phone numbers are not escaped
    assert json.loads(accepted[0]["dynamic_variables"]) == {"note": '=HYPERLINK("x")'}
    assert json.loads(accepted[1]["dynamic_variables"]) == {"note": "+ok"}
    assert rejected == [{"source_file": str(sheet), "source_sheet": "", "source_row": "3", "raw_value": "'=1+2", "reason": "not_a_number", "detail": ""}]
    assert duplicates[0]["source_row"] == "4" and duplicates[0]["duplicate_of_row"] == "2"


@pytest.mark.parametrize(
    "setup,args,code,message",
    [
        (None, ["missing.csv"], 3, "file not found"),
        ("binary", ["bin.csv"], 3, "binary content"),
        ("empty", ["empty.csv"], 3, "file is empty"),
        ("nophone", ["nophone.csv"], 3, "no phone column found"),
        ("sheet", ["--sheet", "Nope", str(ROOT / "data" / "sample_contacts.xlsx")], 3, "no sheet named 'Nope'"),
        (None, ["--region", "XX", str(ROOT / "data" / "sample_contacts.csv")], 2, "unknown region 'XX'"),
        (None, ["--batch-size", "0", str(ROOT / "data" / "sample_contacts.csv")], 2, "at least 1"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path, tmp_home, setup, args, code, message):
    files = {"binary": ("bin.csv", bytes(range(256)) * 8), "empty": ("empty.csv", b""), "nophone": ("nophone.csv", b"Name,Email\na,b\n")}
    if setup in files:
        name, content = files[setup]
        (tmp_path / name).write_bytes(content)
    result = run_cli("import", *args, "--campaign", "c", "--dry-run", "--home", str(tmp_home), cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
