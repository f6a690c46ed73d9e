"""Regenerate the sample spreadsheets in data/ (run: .venv/bin/python data/make_samples.py)."""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).parent
HEADER = ["First Name", "Last Name", "Phone Number", "Appointment Time", "Account ID", "Clinic", "Country"]
# Phone spellings as CRMs export them: every common US format, international numbers,
# extensions, vanity letters, and a handful of rows that must be rejected or deduplicated.
CSV_ROWS = [
    ["Ava", "Martinez", "(415) 555-0132", "2026-12-01 09:30", "AC-10001", "Mission", ""],
    ["Liam", "Chen", "415-555-0147", "2026-12-01 10:00", "AC-10002", "Mission", ""],
    ["Sofia", "Okafor", "+1 212 555 0199", "2026-12-01 10:30", "AC-10003", "Midtown", ""],
    ["Noah", "Schmidt", "+49 30 901820", "2026-12-02 14:00", "AC-10004", "Berlin", ""],
    ["Mia", "Dubois", "0044 20 7946 0958", "2026-12-02 11:15", "AC-10005", "London", "GB"],
    ["Lucas", "Rossi", "07911 123456", "2026-12-02 11:45", "AC-10006", "London", "GB"],
    ["Emma", "Nakamura", "4155550163", "2026-12-03 09:00", "AC-10007", "Mission", ""],
    ["Oliver", "Singh", "+91 98765 43210", "2026-12-03 16:30", "AC-10008", "Pune", ""],
    ["Isla", "Brown", "+61 2 9374 4000", "2026-12-03 08:45", "AC-10009", "Sydney", ""],
    ["Ethan", "Walker", "1-312-555-0175", "2026-12-04 13:00", "AC-10010", "Loop", ""],
    ["Chloe", "Garcia", "312.555.0188 ext. 204", "2026-12-04 13:30", "AC-10011", "Loop", ""],
    ["Jack", "Wilson", "(415) 555-0132", "2026-12-04 14:00", "AC-10012", "Mission", ""],
    ["Grace", "Lee", "tel:+1-646-555-0110", "2026-12-05 09:15", "AC-10013", "Midtown", ""],
    ["Henry", "Kowalski", "1-800-FLOWERS", "2026-12-05 10:45", "AC-10014", "Support", ""],
    ["Zoe", "Müller", "+1 (604) 555-0142", "2026-12-05 15:00", "AC-10015", "Vancouver", ""],
    ["Leo", "Fernández", "4.15555E+09", "2026-12-06 09:00", "AC-10016", "Mission", ""],
    ["Ruby", "Ahmed", "", "2026-12-06 09:30", "AC-10017", "Mission", ""],
    ["Max", "Ivanov", "555-0100", "2026-12-06 10:00", "AC-10018", "Mission", ""],
    ["Ella", "Novak", "call me maybe", "2026-12-06 10:30", "AC-10019", "Loop", ""],
    ["Finn", "O'Brien", "+999 555 0100", "2026-12-06 11:00", "AC-10020", "Loop", ""],
    ["Layla", "Haddad", "+1 415 555 0163 99999", "2026-12-07 09:00", "AC-10021", "Mission", ""],
    ["Arjun", "Patel", "+1 212-555-0199", "2026-12-07 09:30", "AC-10022", "Midtown", ""],
    ["Hannah", "Kim", "202 555 0123", "2026-12-07 10:00", "AC-10023", "Capitol", ""],
    ["Samuel", "Adeyemi", "+234 803 123 4567", "2026-12-07 10:30", "AC-10024", "Lagos", ""],
    ["Nora", "Lindqvist", "+46 8 123 456 78", "2026-12-08 09:00", "AC-10025", "Stockholm", ""],
    ["Theo", "Russo", "617 555 0101", "2026-12-08 09:30", "AC-10026", "Back Bay", ""],
    ["Lily", "Tanaka", "+81 3-1234-5678", "2026-12-08 10:00", "AC-10027", "Tokyo", ""],
    ["Adam", "Cohen", "(305) 555-0177", "2026-12-08 10:30", "AC-10028", "Brickell", ""],
    ["Maya", "Ortiz", "305 555 0177", "2026-12-08 11:00", "AC-10029", "Brickell", ""],
    ["Jonah", "Price", "+1 (512) 555-0166", "2026-12-09 09:00", "AC-10030", "Austin", ""],
]
# The workbook: numbers typed as numbers (Excel drops the leading + and shows digits),
# text cells that keep their leading zeros, and overlap with the CSV (duplicates across files).
XLSX_ROWS = [
    ["Priya", "Raman", 4155550191, "2026-12-10 09:00", "AC-20001", "Mission", ""],
    ["Diego", "Alvarez", 14155550192, "2026-12-10 09:30", "AC-20002", "Mission", ""],
    ["Hana", "Yilmaz", "0044 7911 123458", "2026-12-10 10:00", "AC-20003", "London", "GB"],
    ["Omar", "Farouk", "+44 7700 900456", "2026-12-10 10:30", "AC-20004", "London", ""],
    ["Ivy", "Chen", "415-555-0147", "2026-12-10 11:00", "AC-20005", "Mission", ""],
    ["Kai", "Nguyen", 2125550143, "2026-12-11 09:00", "AC-20006", "Midtown", ""],
    ["Lena", "Weber", "030 901820", "2026-12-11 09:30", "AC-20007", "Berlin", "DE"],
    ["Rosa", "Lopez", 5551234, "2026-12-11 10:00", "AC-20008", "Mission", ""],
    ["Ben", "Carter", "(718) 555-0114", "2026-12-11 10:30", "AC-20009", "Brooklyn", ""],
    ["Aria", "Moreau", "+33 1 42 68 53 00", "2026-12-11 11:00", "AC-20010", "Paris", ""],
    ["Sam", "Harris", "(617) 555-0101", "2026-12-12 09:00", "AC-20011", "Back Bay", ""],
    ["Yara", "Saleh", "not provided", "2026-12-12 09:30", "AC-20012", "Loop", ""],
]


def main() -> None:
    with (HERE / "sample_contacts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(CSV_ROWS)

    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Contacts"
    sheet.append(HEADER)
    for row in XLSX_ROWS:
        sheet.append(row)
    notes = workbook.create_sheet("Notes")
    notes.append(["Exported from the clinic CRM; phone column typed as numbers by Excel."])
    workbook.save(HERE / "sample_contacts.xlsx")


if __name__ == "__main__":
    main()
