"""CRM exports (issue 20): country columns holding names, alpha-3 codes, aliases or calling codes, and several phone
columns per contact. Accepted numbers are compared with phonenumbers itself, through the CLI as a subprocess."""

from __future__ import annotations

import csv
import json

import duckdb
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
        writer.writerow(["narnian+", "+49 30 12345678", "Narnia"])  # a +code does not make an unknown country right
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
        rejected = [(row["source_row"], row["reason"], row["detail"]) for row in csv.DictReader(handle)]
    assert ("15", "invalid_region", "country 'Narnia' is not a country") in rejected
    assert ("16", "invalid_region", "country 'Narnia' is not a country") in rejected
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == summary["accepted"] + summary["rejected"] + summary["duplicates"]
    real = run_cli("import", str(path), "--campaign", "c", "--home", str(tmp_path / "real"))  # the ledger and DuckDB keep it
    assert real.returncode == 0, real.stderr
    with duckdb.connect(str(tmp_path / "real" / "campaigns.duckdb"), read_only=True) as db:
        assert db.execute("SELECT source_row, detail FROM rejects WHERE reason = 'invalid_region' ORDER BY 1").fetchall() == [
            (15, "country 'Narnia' is not a country"), (16, "country 'Narnia' is not a country")]


def test_a_contact_s_number_is_its_first_valid_phone_column_mobiles_first(tmp_path):
    """Outlook's Business/Home/Mobile Phone: the mobile when it is valid, else the next candidate left to right; a row
    with none is rejected with the reason of its first non-empty candidate; no phone column becomes a variable."""
    path = tmp_path / "outlook.csv"
    rows = [
        ["First Name", "Business Phone", "Home Phone", "Mobile Phone", "E-mail Address"],
        ["Ann", "(212) 555-0101", "(212) 555-0102", "(415) 555-0103", "ann@example.com"],  # the mobile
        ["Bob", "(212) 555-0111", "", "", "bob@example.com"],  # only a business number
        ["Cy", "", "(312) 555-0121", "12", "cy@example.com"],  # the mobile is junk: the home number
        ["Di", "", "", "", "di@example.com"],  # nothing at all
        ["Ed", "n/a", "", "555", "ed@example.com"],  # nothing valid: the mobile's reason (the first non-empty, mobiles first)
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "o", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    accepted = {row["name"]: (row["e164"], json.loads(row["dynamic_variables"])) for row in lines}
    assert {name: e164 for name, (e164, _) in accepted.items()} == {"Ann": "+14155550103", "Bob": "+12125550111", "Cy": "+13125550121"}
    assert {row["name"]: row["phone_column"] for row in lines} == {"Ann": "Mobile Phone", "Bob": "Business Phone", "Cy": "Home Phone"}
    assert all(set(variables) == {"first_name", "e_mail_address"} for _, variables in accepted.values())
    with (out / "rejected.csv").open(newline="", encoding="utf-8") as handle:
        rejected = {row["source_row"]: (row["raw_value"], row["reason"]) for row in csv.DictReader(handle)}
    assert rejected == {"5": ("", "empty"), "6": ("555", "too_short")}

    from pipelines.api import load_contacts

    notebook = load_contacts([path], campaign="o")  # the notebook path reads the same
    assert dict(zip(notebook.accepted["name"], notebook.accepted["e164"])) == {n: e for n, (e, _) in accepted.items()}
    assert dict(zip(notebook.accepted["name"], notebook.accepted["phone_column"])) == {row["name"]: row["phone_column"] for row in lines}


def test_variables_and_exclude_column_choose_what_the_agent_is_sent(tmp_path):
    path = tmp_path / "c.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["First Name", "Phone", "E-mail", "Clinic", "Notes"],
                                      ["Ann", "(212) 555-0101", "ann@example.com", "Mission", "VIP"]])  # fmt: skip

    def variables(*flags: str, cwd=None) -> dict:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        result = run_cli("import", str(path), "--campaign", "v", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"),
                         *flags, cwd=cwd)  # fmt: skip
        assert result.returncode == 0, result.stderr
        with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
            return json.loads(next(csv.DictReader(handle))["dynamic_variables"])

    assert variables() == {"first_name": "Ann", "e_mail": "ann@example.com", "clinic": "Mission", "notes": "VIP"}
    assert variables("--variables", "clinic,First Name") == {"first_name": "Ann", "clinic": "Mission"}
    assert variables("--exclude-column", "E-mail", "--exclude-column", "notes") == {"first_name": "Ann", "clinic": "Mission"}
    (tmp_path / "campaigns.toml").write_text('exclude_column = ["e_mail"]\nvariables = "clinic,notes,e-mail"\n')
    assert variables(cwd=tmp_path) == {"clinic": "Mission", "notes": "VIP"}
    missing = run_cli("import", str(path), "--campaign", "v", "--dry-run", "--home", str(tmp_path / "h"), "--variables", "shoe size")
    assert missing.returncode == 3 and "none of the --variables columns is in the file" in missing.stderr


def test_typed_cells_reach_the_agent_as_a_person_would_write_them(tmp_path):
    """Booleans true/false, dates YYYY-MM-DD, datetimes ISO 8601 without an empty fraction, nested JSON as compact text
    (numbers as written) — from Parquet, JSON Lines and a workbook alike."""
    import datetime as dt

    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({
        "phone": ["+12125550101"], "vip": [True], "due": pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us")),
        "seen": pa.array([dt.datetime(2026, 1, 2, 9, 30)], pa.timestamp("us")), "meta": [{"a": 1, "b": [1, 2]}],
    }), tmp_path / "p.parquet")  # fmt: skip
    (tmp_path / "j.jsonl").write_text(json.dumps({"phone": "+12125550102", "vip": False, "meta": {"x": [1.50, None]}})
                                      .replace("1.5", "1.50") + "\n")  # fmt: skip
    book = openpyxl.Workbook()
    book.active.append(["phone", "vip", "due", "seen"])
    book.active.append(["+12125550103", True, dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2, 9, 30)])
    book.save(tmp_path / "w.xlsx")
    got = {}
    for name in ("p.parquet", "j.jsonl", "w.xlsx"):
        out = tmp_path / f"out-{name}"
        result = run_cli("import", str(tmp_path / name), "--campaign", "t", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
        assert result.returncode == 0, result.stderr
        with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
            got[name] = json.loads(next(csv.DictReader(handle))["dynamic_variables"])
    assert got["p.parquet"] == {"vip": "true", "due": "2026-01-01", "seen": "2026-01-02T09:30:00", "meta": '{"a":1,"b":[1,2]}'}
    assert got["j.jsonl"] == {"vip": "false", "meta": '{"x":[1.50,null]}'}
    assert got["w.xlsx"] == {"vip": "true", "due": "2026-01-01", "seen": "2026-01-02T09:30:00"}


def test_name_country_and_timezone_columns_detection_cannot_find_can_be_named(tmp_path):
    path = tmp_path / "odd.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["Kunde", "Tel", "Land", "Zone", "Notiz"],
                                      ["Jonas Weber", "030 12345678", "Germany", "Europe/Berlin", "x"],
                                      ["Ann Lee", "(212) 555-0101", "USA", "America/Chicago", "y"]])  # fmt: skip
    out = tmp_path / "out"
    args = ["import", str(path), "--campaign", "o", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h")]
    result = run_cli(*args, "--name-column", "Kunde", "--country-column", "land", "--timezone-column", "Zone")
    assert result.returncode == 0, result.stderr
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        rows = {row["e164"]: (row["name"], row["timezone"], json.loads(row["dynamic_variables"])) for row in csv.DictReader(handle)}
    assert rows == {"+493012345678": ("Jonas Weber", "Europe/Berlin", {"notiz": "x"}),
                    "+12125550101": ("Ann Lee", "America/Chicago", {"notiz": "y"})}  # fmt: skip
    wrong = run_cli(*args, "--country-column", "Staat")
    assert wrong.returncode == 3 and "--country-column 'Staat': no column named so" in wrong.stderr


def test_named_phone_columns_come_first_and_the_others_stay_candidates_never_variables(tmp_path):
    path = tmp_path / "hub.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["Name", "Phone Number", "Mobile Phone Number", "Work Phone", "Timezone"],
                                      ["Ann", "(212) 555-0101", "(415) 555-0102", "(312) 555-0103", ""],
                                      ["Bob", "", "(415) 555-0112", "", ""],
                                      ["Cy", "", "", "(312) 555-0123", "Mars/Olympus"]])  # fmt: skip
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "n", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"),
                     "--phone-column", "Work Phone")  # fmt: skip
    assert result.returncode == 0, result.stderr
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        accepted = {row["name"]: (row["e164"], json.loads(row["dynamic_variables"])) for row in csv.DictReader(handle)}
    assert accepted == {"Ann": ("+13125550103", {}), "Bob": ("+14155550112", {})}  # Work Phone first, then the mobile
    with (out / "rejected.csv").open(newline="", encoding="utf-8") as handle:
        rejected = [(row["reason"], row["detail"]) for row in csv.DictReader(handle)]
    assert rejected == [("invalid_timezone", "timezone 'Mars/Olympus' is not an IANA timezone name")]
    phone = run_cli("import", str(path), "--campaign", "n", "--dry-run", "--home", str(tmp_path / "h"), "--variables", "phone number")
    assert phone.returncode == 3 and "'Phone Number' is the phone, name, country or timezone, not variables" in phone.stderr


def test_json_lines_integral_numbers_become_digits_and_others_keep_their_text(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"phone": 2125550148.0, "acct": 4155550132.0, "n": 3.0, "e": 1E+3, "price": 19.90}\n')
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "j", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["e164"] == "+12125550148"
    assert json.loads(row["dynamic_variables"]) == {"acct": "4155550132", "n": "3", "e": "1E+3", "price": "19.90"}


NAMES = ["José Müller", "Renée Bäcker", "François Ødegård", "Çağla Ñúñez", "Zoë Åström"]


@pytest.mark.parametrize("encoding", ["cp1252", "mac_roman"])
def test_european_names_in_windows_1252_and_mac_roman_are_read_right(tmp_path, encoding):
    path = tmp_path / f"{encoding}.csv"
    text = "Name,Phone\n" + "".join(f"{name},+1212555{n:04d}\n" for n, name in enumerate(NAMES) if name.encode(encoding, "ignore").decode(encoding) == name)
    path.write_bytes(text.encode(encoding))
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "e", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    assert names == [line.split(",")[0] for line in text.splitlines()[1:]] and len(names) >= 3
    assert not any(0x80 <= ord(ch) <= 0x9F or ord(ch) < 0x20 for name in names for ch in name)  # no C1/C0 controls


def test_a_utf8_file_with_some_windows_1252_lines_is_read_as_utf8_and_says_so(tmp_path):
    path = tmp_path / "two-exports.csv"
    head = "Name,Phone\n" + "".join(f"José {n},+1212555{n:04d}\n" for n in range(5_000))  # beyond the first 64 KB
    path.write_bytes(head.encode("utf-8") + "Renée,+13125550199\nBjörn,+13125550198\n".encode("cp1252"))
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "m", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"), "--json",
                     env={"CAMPAIGNS_RULES": ""})  # the shipped state rules, as a user has them: no warning of their own
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["warnings"] == [f"2 line(s) of {path} were not UTF-8 and were read as Windows-1252, the first at row 5002"]
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        names = {row["source_row"]: row["name"] for row in csv.DictReader(handle)}
    assert names["2"] == "José 0" and names["5001"] == "José 4999" and names["5002"] == "Renée" and names["5003"] == "Björn"
    plain = run_cli("import", str(path), "--campaign", "m", "--dry-run", "--home", str(tmp_path / "h"))
    assert "Warning: 2 line(s)" in plain.stdout + plain.stderr


def test_encoding_overrides_detection_and_a_wrong_one_is_one_line(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes("Name,Phone\nJosé Müller,+12125550101\n".encode("mac_roman"))
    out = tmp_path / "out"
    args = ["import", str(path), "--campaign", "e", "--dry-run", "--home", str(tmp_path / "h")]
    latin = run_cli(*args, "--out", str(out), "--encoding", "latin-1")  # as asked, even when it reads worse
    assert latin.returncode == 0, latin.stderr
    with (out / "accepted.csv").open(newline="", encoding="utf-8") as handle:
        # as asked, even when it reads worse; the C1 controls Latin-1 makes of Mac Roman's é and ü never reach the name
        assert next(csv.DictReader(handle))["name"] == "Jos M ller"
    wrong = run_cli(*args, "--encoding", "utf-8")
    assert wrong.returncode == 3 and "line 2 is not utf-8 text" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    unknown = run_cli(*args, "--encoding", "klingon")
    assert unknown.returncode == 2 and "unknown encoding 'klingon'" in unknown.stderr


SALESFORCE = (  # a report as Salesforce exports it: a title, a "Generated" line and a blank row above the header
    "Leads with phone numbers\n"
    "Generated 2026-12-01 09:00 by Admin, Acme Inc.\n"
    "\n"
    "First Name,Last Name,Phone,Email,Company,Status,Owner,Notes\n"
    "Ana,Díaz,(415) 555-0101,ana@example.com,Acme,Open,Bob,\n"
    'Ben,Li,415-555-0102,ben@example.com,Acme,Open,Bob,"call, after 5"\n'
    "Cy,Wu,(415) 555-0103,cy@example.com,Acme,Open,Bob,late, really late\n"  # an unquoted comma: 9 fields
    "Dee,Ng,415 555 0104,dee@example.com,Acme\n"  # 5 fields: the rest empty
    "Eve,Ode,4155550105,eve@example.com,Acme,Open,Bob,,\n"  # an empty 9th field is no data
)


def _e164(phone: str, region: str = "US") -> str:
    return phonenumbers.format_number(phonenumbers.parse(phone, region), phonenumbers.PhoneNumberFormat.E164)


def _read(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_title_rows_above_the_header_are_skipped_and_a_ragged_row_is_rejected_alone(tmp_path):
    path = tmp_path / "salesforce.csv"
    path.write_text(SALESFORCE, encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "sf", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["rows_read"], summary["accepted"], summary["rejected"]) == (5, 4, 1)  # the title rows are not rows
    accepted = {row["e164"]: row for row in _read(out / "accepted.csv")}
    assert set(accepted) == {_e164(p) for p in ("(415) 555-0101", "415-555-0102", "415 555 0104", "4155550105")}
    assert [accepted[_e164(p)]["source_row"] for p in ("(415) 555-0101", "415 555 0104", "4155550105")] == ["5", "8", "9"]
    assert accepted[_e164("(415) 555-0101")]["name"] == "Ana Díaz"
    assert json.loads(accepted[_e164("415-555-0102")]["dynamic_variables"])["notes"] == "call, after 5"
    assert json.loads(accepted[_e164("415 555 0104")]["dynamic_variables"])["company"] == "Acme"
    [rejected] = _read(out / "rejected.csv")
    assert (rejected["source_row"], rejected["reason"], rejected["detail"]) == ("7", "malformed_row", "9 fields, the header has 8")
    assert rejected["raw_value"] == "Cy,Wu,(415) 555-0103,cy@example.com,Acme,Open,Bob,late, really late"
    real = run_cli("import", str(path), "--campaign", "sf", "--home", str(tmp_path / "real"))  # the ledger and DuckDB keep it
    assert real.returncode == 0, real.stderr
    with duckdb.connect(str(tmp_path / "real" / "campaigns.duckdb"), read_only=True) as db:
        assert db.execute("SELECT source_row, reason FROM rejects").fetchall() == [(7, "malformed_row")]
        assert db.execute("SELECT count(*) FROM contacts").fetchone() == (4,)


def test_a_title_row_above_the_header_of_a_fast_path_file_and_of_a_semicolon_file(tmp_path):
    """Without ragged rows the file takes the fast (Arrow) path: the header is found there the same way."""
    comma = tmp_path / "comma.csv"
    comma.write_text("Leads\n\nName,Mobile Phone,Notes\n" + "".join(f"n{i},(415) 555-{i:04d},x\n" for i in range(100, 130)), encoding="utf-8")
    semi = tmp_path / "semi.csv"
    semi.write_text("Bericht: Kunden;;\nName;Telefon;Notiz\nAna;+49 30 1234567;x, y\n", encoding="utf-8")
    for path, phones, first_row in ((comma, [f"(415) 555-{i:04d}" for i in range(100, 130)], "4"), (semi, ["+49 30 1234567"], "3")):
        out = tmp_path / f"out-{path.stem}"
        extra = ("--phone-column", "Telefon") if path is semi else ()
        result = run_cli("import", str(path), "--campaign", "t", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"), *extra)
        assert result.returncode == 0, result.stderr
        rows = _read(out / "accepted.csv")
        assert [row["e164"] for row in rows] == [_e164(p) for p in phones]
        assert rows[0]["source_row"] == first_row
    assert json.loads(_read(tmp_path / "out-semi" / "accepted.csv")[0]["dynamic_variables"]) == {"notiz": "x, y"}


def test_header_row_names_the_header_when_detection_would_pick_another(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("Exported,Phone\nName,Tel\nAna,4155550101\n", encoding="utf-8")  # row 1 names a phone column too
    out = tmp_path / "out"
    found = run_cli("import", str(path), "--campaign", "h", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"), "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["rejected"] == 1  # row 1 taken: row 2's "Tel" is no number
    named = run_cli("import", str(path), "--campaign", "h", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"),
                    "--header-row", "2")  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert [(r["e164"], r["name"], r["source_row"]) for r in _read(out / "accepted.csv")] == [("+14155550101", "Ana", "3")]
    beyond = run_cli("import", str(path), "--campaign", "h", "--dry-run", "--home", str(tmp_path / "h"), "--header-row", "9")
    assert beyond.returncode == 3 and beyond.stderr.count("\n") == 1 and "--header-row 9" in beyond.stderr, beyond.stderr
    zero = run_cli("import", str(path), "--campaign", "h", "--dry-run", "--home", str(tmp_path / "h"), "--header-row", "0")
    assert zero.returncode == 2, zero.stderr


def test_a_workbook_whose_header_is_in_row_3_and_the_notebook_path_agree(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from pipelines.api import load_contacts

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Contacts for December"])
    sheet.append([])
    sheet.append(["Full Name", "Business Phone", "Mobile Phone"])
    sheet.append(["Ana Díaz", "(415) 555-0101", None])
    sheet.append(["Ben Li", None, 4155550102])
    path = tmp_path / "outlook.xlsx"
    workbook.save(path)
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "x", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    rows = [(r["e164"], r["name"], r["source_row"]) for r in _read(out / "accepted.csv")]
    assert rows == [(_e164("(415) 555-0101"), "Ana Díaz", "4"), ("+14155550102", "Ben Li", "5")]
    notebook = load_contacts(path, campaign="x")
    assert sorted(zip(notebook.accepted["e164"], notebook.accepted["source_row"].astype(int))) == [(e164, int(row)) for e164, _, row in rows]


def test_no_control_character_reaches_a_name_or_a_variable(tmp_path):
    path = tmp_path / "controls.csv"
    path.write_text('Name,Phone,Note,Company\n"Jos\u0085e\x01 Smith",4155550101,"line one\r\nline two\tend",Acme\u2028Inc\n'
                    'Ana\u202e,4155550102,\x7fplain,ze\u200bro\u00adwidth\n', encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "c", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    rows = _read(out / "accepted.csv")
    texts = [row["name"] for row in rows] + [value for row in rows for value in json.loads(row["dynamic_variables"]).values()]
    assert not [text for text in texts if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u202e\u200b\u00ad"
                                              for ch in text)], texts  # fmt: skip
    assert [row["name"] for row in rows] == ["Jos e Smith", "Ana"]
    assert json.loads(rows[0]["dynamic_variables"]) == {"note": "line one line two end", "company": "Acme Inc"}
    assert json.loads(rows[1]["dynamic_variables"]) == {"note": "plain", "company": "zerowidth"}


def test_a_stray_nul_in_a_cell_is_text_and_a_binary_file_says_where(tmp_path):
    text = tmp_path / "nul.csv"
    text.write_bytes(b"Name,Phone\nAna\x00Lee,4155550101\nBen,4155550102\n")
    out = tmp_path / "out"
    result = run_cli("import", str(text), "--campaign", "n", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in _read(out / "accepted.csv")] == ["Ana Lee", "Ben"]
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"Name,Phone\n" + b"\x00\x00\x01\xff" * 100)
    refused = run_cli("import", str(binary), "--campaign", "n", "--dry-run", "--home", str(tmp_path / "h"))
    assert refused.returncode == 3 and "a NUL byte on line 2" in refused.stderr and refused.stderr.count("\n") == 1


def test_inspect_shows_how_an_import_would_read_a_file_and_imports_nothing(tmp_path):
    path = tmp_path / "salesforce.csv"
    path.write_text("Leads with phone numbers\nGenerated 2026-12-01\n\nFirst Name,Last Name,Phone,Mobile,Email\n"
                    "Ana,Díaz,(415) 555-0101,12,ana@example.com\nBen,Li,415-555-0102,,ben@example.com\n"
                    "Cy,Wu,415-555-0103,,cy@example.com,late, really\n", encoding="utf-8")  # fmt: skip
    home = tmp_path / "home"
    result = run_cli("inspect", str(path), "--json", "--home", str(home))
    assert result.returncode == 0, result.stderr
    [found] = json.loads(result.stdout)["files"]
    assert (found["header_row"], found["format"], found["encoding"], found["delimiter"]) == (4, "CSV", "utf-8", ",")
    assert found["phone_columns"] == ["Mobile", "Phone"] and found["name_columns"] == ["First Name", "Last Name"]
    assert found["variables"]["email"] == "Email" and "Phone" not in found["variables"].values()
    assert found["malformed_rows"] == [7] and found["rows"] == 2
    first = found["preview"][0]
    assert (first["row"], first["e164"], first["name"]) == (5, _e164("(415) 555-0101"), "Ana Díaz")  # the mobile is junk
    assert not home.exists()  # nothing imported, nothing created
    text = run_cli("inspect", str(path), "--rows", "2", "--home", str(home))
    assert text.returncode == 0, text.stderr
    assert "header row  4" in text.stdout and "Mobile, Phone  (in priority order)" in text.stdout
    assert text.stdout.count(" row ") >= 2 and "->  +14155550101" in text.stdout
    typo = run_cli("inspect", str(path), "--exclude-column", "Emial", "--json")  # the pre-flight check says it too
    assert json.loads(typo.stdout)["files"][0]["notes"] == [f"--exclude-column 'Emial' names no column of {path}"]
    missing = run_cli("inspect", str(tmp_path / "nope.csv"))
    assert missing.returncode == 3 and missing.stderr.count("\n") == 1


def test_google_contacts_cells_with_several_numbers_and_a_misspelt_exclude_column(tmp_path):
    path = tmp_path / "google.csv"
    path.write_text("Name,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value,Phone 2 - Value\n"
                    "Ana,ana@example.com,Mobile,12 ::: +1 415-555-0101,\n"  # the first number is junk: the second
                    "Ben,ben@example.com,Work,+1 415-555-0102 ::: +1 415-555-0103,\n"  # the first valid one
                    "Cy,cy@example.com,,,+44 20 7946 0958\n"  # only the second column
                    "Di,di@example.com,,junk ::: 55,\n", encoding="utf-8")  # nothing valid: the first cell's reason  # fmt: skip
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "g", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"),
                     "--exclude-column", "E-mail 1 - Value", "--exclude-column", "Emial", "--json", env={"CAMPAIGNS_RULES": ""})  # fmt: skip
    assert result.returncode == 0, result.stderr
    accepted = {row["name"]: (row["e164"], row["phone_column"], json.loads(row["dynamic_variables"])) for row in _read(out / "accepted.csv")}
    assert accepted == {"Ana": (_e164("+1 415-555-0101"), "Phone 1 - Value", {"phone_1_type": "Mobile"}),
                        "Ben": (_e164("+1 415-555-0102"), "Phone 1 - Value", {"phone_1_type": "Work"}),
                        "Cy": (_e164("+44 20 7946 0958"), "Phone 2 - Value", {})}  # fmt: skip
    assert [(row["source_row"], row["raw_value"], row["reason"]) for row in _read(out / "rejected.csv")] == [("5", "junk", "not_a_number")]
    assert json.loads(result.stdout)["warnings"] == [f"--exclude-column 'Emial' names no column of {path}"]


def test_an_empty_name_cell_takes_given_and_family_name(tmp_path):
    path = tmp_path / "google.csv"
    path.write_text("Name,Given Name,Family Name,Phone 1 - Value\nAna Díaz,Ana,Díaz,4155550101\n,Ben,Li,4155550102\n,,,4155550103\n",
                    encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "g", "--dry-run", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in _read(out / "accepted.csv")] == ["Ana Díaz", "Ben Li", ""]
    shown = run_cli("inspect", str(path))
    assert "name        Name (where it is empty: Given Name + Family Name)" in shown.stdout, shown.stdout
