"""Realistic messy contact files, reproducible from a seed.

Mostly US numbers in every common spelling, some GB/AU/DE/IN/CA numbers written
internationally or nationally with a country column, ~5% duplicates (a number spelled
again, differently), ~7% invalid or empty cells, and 6 variable columns.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import phonenumbers

US_SPELLINGS = [
    "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a} {b} {c}", "{a}{b}{c}", "1{a}{b}{c}", "+1{a}{b}{c}",
    "+1 ({a}) {b}-{c}", "+1 {a}-{b}-{c}", "1-{a}-{b}-{c}", "+1.{a}.{b}.{c}", "1 ({a}) {b} {c}",
]  # fmt: skip
JUNK = ["", "", "", "n/a", "N/A", "none", "unknown", "-", "0", "tbd", "see notes", "call office", "x"]
FIRST = ["Ava", "Liam", "Sofia", "Noah", "Mia", "Lucas", "Emma", "Oliver", "Isla", "Ethan", "Chloe", "Zoë", "José", "Renée"]
LAST = ["Martinez", "Chen", "Okafor", "Schmidt", "Dubois", "Rossi", "Nakamura", "Singh", "Brown", "O'Brien", "Müller"]
CLINICS = ["Mission", "Midtown", "Loop", "Back Bay", "Brickell", "Austin", "Capitol", "Vancouver", "London", "Berlin"]
HEADER = ["First Name", "Last Name", "Phone", "Country", "Appointment Time", "Account ID", "Clinic", "Notes"]


def _us_number(rng: random.Random) -> tuple[str, str, str]:
    # area codes and exchanges that phonenumbers' US metadata accepts
    area = rng.choice(["212", "213", "305", "312", "408", "415", "503", "512", "617", "646", "702", "718", "801", "917"])
    exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
    return area, exchange, f"{rng.randint(0, 9999):04d}"


def _international(rng: random.Random) -> tuple[str, str]:
    region = rng.choice(["GB", "GB", "AU", "DE", "IN", "CA"])
    example = phonenumbers.example_number_for_type(region, rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    national = str(example.national_number)
    digits = list(national)
    for position in range(max(1, len(digits) - 4), len(digits)):  # vary the last digits, keep the prefix valid
        digits[position] = str(rng.randint(0, 9))
    example.national_number = int("".join(digits))
    style = rng.random()
    if style < 0.5:
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL), ""
    if style < 0.8:
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL), region
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164), ""


def _invalid(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        return rng.choice(JUNK)
    if kind < 0.75:
        return f"555-{rng.randint(0, 9999):04d}"  # a local number without its area code
    if kind < 0.9:
        return f"+1 415 555 {rng.randint(0, 9999):04d} {rng.randint(0, 99):02d}"  # too long
    return f"4.{rng.randint(10000, 99999)}E+09"  # Excel's scientific notation


def rows(count: int, seed: int = 20261122):
    """Yield `count` data rows (without the header)."""
    rng = random.Random(seed)
    seen: list[str] = []
    for index in range(count):
        roll = rng.random()
        country = ""
        if roll < 0.05 and seen:
            phone = seen[rng.randrange(len(seen))]  # a duplicate, maybe spelled differently
            if rng.random() < 0.5 and phone.startswith("+1") and len(phone) == 12:
                phone = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
        elif roll < 0.12:
            phone = _invalid(rng)
        elif roll < 0.22:
            phone, country = _international(rng)
        else:
            a, b, c = _us_number(rng)
            phone = rng.choice(US_SPELLINGS).format(a=a, b=b, c=c)
            if len(seen) < 200_000:
                seen.append(f"+1{a}{b}{c}")
        yield [
            rng.choice(FIRST), rng.choice(LAST), phone, country,
            f"2026-12-{rng.randint(1, 28):02d} {rng.randint(8, 19):02d}:{rng.choice(['00', '15', '30', '45'])}",
            f"AC-{index:08d}", rng.choice(CLINICS), rng.choice(["", "", "prefers mornings", "VIP", "spanish"]),
        ]  # fmt: skip


def write(path: Path, count: int, seed: int = 20261122) -> Path:
    """Write a messy CSV with `count` rows (cached: an existing file of the same name is reused)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows(count, seed))
    partial.replace(path)
    return path
