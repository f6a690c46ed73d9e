"""Country columns as CRMs export them: names, alpha-3 codes, aliases and calling codes choose each row's region
(issue 20, item 3). Accepted numbers are compared with phonenumbers itself, through the CLI as a subprocess."""

from __future__ import annotations

import csv
import json

import phonenumbers
import pytest

from pipelines.ingest.normalise import region_of
from tests.conftest import run_cli

ROWS = [  # phone as written, the country cell, the region a person means
    ("020 7946 0958", "United Kingdom", "GB"), ("030 12345678", "Germany", "DE"), ("(415) 555-0132", "USA", "US"),
    ("0151 496 0000", "UK", "GB"), ("0161 496 0000", "u.k.", "GB"), ("030 23125000", "DEU", "DE"),
    ("01 44 55 66 77", "france", "FR"), ("020 7946 0000", "44", "GB"), ("0301234567", "+49", "DE"),
    ("212 555 0100", "1", "US"), ("0131 496 0000", "Great Britain", "GB"), ("(312) 555-0101", "U.S.", "US"),
    ("(646) 555-0111", "", "US"),
]  # fmt: skip


@pytest.mark.parametrize("written, region", [("GBR", "GB"), ("gb", "GB"), ("Deutschland", "Deutschland"), ("Narnia", "Narnia"),
                                             ("999", "999"), ("Korea, Republic of", "KR"), ("Russia", "RU")])  # fmt: skip
def test_a_country_cell_names_a_region_or_nothing(written, region):
    assert region_of(written.upper()) == region.upper()


def test_hubspot_style_country_names_choose_each_row_s_region(tmp_path):
    path = tmp_path / "hubspot.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["First Name", "Phone Number", "Country/Region"])
        writer.writerows([[f"n{i}", phone, country] for i, (phone, country, _) in enumerate(ROWS)])
        writer.writerow(["narnian", "020 7946 0000", "Narnia"])
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "c", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"), "--json")
    assert result.returncode == 0, result.stderr
    expected = {}
    for phone, _, region in ROWS:
        number = phonenumbers.parse(phone, region)
        if phonenumbers.is_valid_number(number):
            expected[phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)] = region
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        accepted = {row["e164"] for row in csv.DictReader(handle)}
    assert accepted == set(expected) and len(accepted) >= 11
    with (out / "rejected.csv").open(newline="", encoding="utf-8") as handle:
        rejected = [(row["source_row"], row["reason"]) for row in csv.DictReader(handle)]
    assert ("15", "invalid_region") in rejected
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == summary["accepted"] + summary["rejected"] + summary["duplicates"]
