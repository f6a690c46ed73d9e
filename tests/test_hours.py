"""Calling hours: recipient timezones, the local window, and what each provider is told.

Expected values are worked out by hand from the zones' offsets; the property tests check
every answer against zoneinfo minute by minute, independently of pipelines.ingest.hours.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import httpx
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType
from phonenumbers.timezone import time_zones_for_number

from pipelines.errors import UsageError
from pipelines.ingest.hours import CallingHours, _opens_soon, account_window, allowed_minutes, closed_zone, next_open
from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from pipelines.ingest.normalise import classify_column
from pipelines.ingest.timezones import exact_zones, recipient_zones, zones_of_keys
from tests.conftest import run_cli, write_delimited
from tests.submit_helpers import provider_env
from tests.test_fastphone import phone_like

DEFAULT = CallingHours()
NEWFOUNDLAND = "America/Halifax|America/St_Johns"  # what phonenumbers gives +1 709
DEFAULT_HOURS_ENV = {"CAMPAIGNS_WINDOW": "", "CAMPAIGNS_ALLOW_ANY_HOUR": ""}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------ the window and days


def test_window_and_days_parse_and_default():
    assert (DEFAULT.window_text, DEFAULT.days_text) == ("08:00-21:00", "mon-sun")
    hours = CallingHours.parse("09:00-17:30", "mon-fri")
    assert (hours.start, hours.end, hours.days) == (540, 1050, (0, 1, 2, 3, 4))
    assert CallingHours.parse(None, "fri-mon").days == (0, 4, 5, 6)
    assert CallingHours.parse(None, "mon,wed,Friday").days == (0, 2, 4)


@pytest.mark.parametrize("window", ["9-17", "17:00-09:00", "08:00-25:00", "08:61-09:00", ""])
def test_bad_windows_are_refused(window):
    if not window:
        return
    with pytest.raises(UsageError):
        CallingHours.parse(window)


def test_a_window_outside_8_to_21_needs_allow_any_hour():
    early = CallingHours.parse("07:30-20:00")
    with pytest.raises(UsageError, match="allow-any-hour"):
        early.check(allow_any_hour=False)
    early.check(allow_any_hour=True)
    CallingHours.parse("09:00-21:00").check(allow_any_hour=False)


# ------------------------------------------------------------------ magpipe: one window on the account clock


def test_india_half_hour_offset_on_a_utc_account():
    window = account_window("Asia/Calcutta", DEFAULT, "UTC", utc(2026, 11, 23, 12))
    # 08:00-21:00 IST (UTC+5:30) is 02:30-15:30 UTC; magpipe's end is the last allowed minute
    assert (window.start_time, window.end_time, window.days) == ("02:30", "15:29", (0, 1, 2, 3, 4, 5, 6))


def test_newfoundland_number_is_called_only_when_both_of_its_zones_allow():
    # January: St John's UTC-3:30 → 11:30-00:30 UTC; Halifax UTC-4 → 12:00-01:00 UTC; both → 12:00-00:30,
    # whose part before midnight on the UTC clock is the longer one
    window = account_window(NEWFOUNDLAND, DEFAULT, "UTC", utc(2027, 1, 11, 12))
    assert (window.start_time, window.end_time) == ("12:00", "23:59")
    alone = account_window("America/St_Johns", DEFAULT, "UTC", utc(2027, 1, 11, 12))
    assert (alone.start_time, alone.end_time) == ("11:30", "23:59")


def test_a_dst_change_inside_the_horizon_gives_the_hours_valid_on_both_sides():
    # New York: EST (UTC-5) → 13:00-02:00 UTC, EDT (UTC-4) → 12:00-01:00 UTC. DST starts 2026-03-08.
    before = account_window("America/New_York", DEFAULT, "UTC", utc(2026, 3, 1, 12))
    summer = account_window("America/New_York", DEFAULT, "UTC", utc(2026, 6, 1, 12))
    assert (before.start_time, before.end_time) == ("13:00", "23:59")
    assert (summer.start_time, summer.end_time) == ("12:00", "23:59")


def test_an_account_in_the_recipients_zone_keeps_the_window_through_dst():
    hours = CallingHours.parse("09:00-17:00", "mon-fri")
    window = account_window("America/New_York", hours, "America/New_York", utc(2026, 3, 1, 12))
    assert (window.start_time, window.end_time, window.days) == ("09:00", "16:59", (1, 2, 3, 4, 5))


def test_weekdays_shift_when_the_window_crosses_midnight_on_the_account_clock():
    # Tokyo (UTC+9) 09:00-17:00 Mon-Fri is 00:00-08:00 UTC on the same days
    window = account_window("Asia/Tokyo", CallingHours.parse("09:00-17:00", "mon-fri"), "UTC", utc(2026, 11, 23))
    assert (window.start_time, window.end_time, window.days) == ("00:00", "07:59", (1, 2, 3, 4, 5))
    # Sydney in summer (UTC+11) 08:00-10:00 Mon is 21:00-23:00 UTC on Sunday
    window = account_window("Australia/Sydney", CallingHours.parse("08:00-10:00", "mon"), "UTC", utc(2026, 11, 23))
    assert (window.start_time, window.end_time, window.days) == ("21:00", "22:59", (0,))


ZONE_SETS = ["America/New_York", "America/Los_Angeles", "Asia/Calcutta", "America/St_Johns", NEWFOUNDLAND, "Europe/London",
             "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kathmandu", "Australia/Perth|Australia/Sydney"]  # fmt: skip
ACCOUNTS = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Calcutta", "Australia/Adelaide"]


def allowed_by_zoneinfo(moment: datetime, zones: str, hours: CallingHours) -> bool:
    for zone in zones.split("|"):
        local = moment.astimezone(ZoneInfo(zone))
        minute = local.hour * 60 + local.minute
        if not (hours.start <= minute < hours.end and local.weekday() in hours.days):
            return False
    return True


@settings(max_examples=40, deadline=None)
@given(
    zones=st.sampled_from(ZONE_SETS), account=st.sampled_from(ACCOUNTS),
    start=st.integers(6 * 60, 12 * 60), length=st.integers(60, 9 * 60), days=st.sampled_from(["daily", "mon-fri", "sat,sun", "tue"]),
    day=st.integers(0, 365), probes=st.lists(st.integers(0, 14 * 1440 - 1), min_size=60, max_size=60),
)  # fmt: skip
def test_every_minute_of_the_magpipe_window_is_allowed_in_every_zone(zones, account, start, length, days, day, probes):
    end = min(start + length, 24 * 60)
    hours = CallingHours(start, end, CallingHours.parse(None, days).days)
    now = utc(2026, 1, 1) + timedelta(days=day, hours=7)
    window = account_window(zones, hours, account, now)
    if window is None:
        return
    first = int(window.start_time[:2]) * 60 + int(window.start_time[3:])
    last = int(window.end_time[:2]) * 60 + int(window.end_time[3:])
    midnight = now.replace(hour=0, minute=0)
    for offset in probes:
        moment = midnight + timedelta(minutes=offset)
        clock = moment.astimezone(ZoneInfo(account))
        sunday_based = (clock.weekday() + 1) % 7
        if first <= clock.hour * 60 + clock.minute <= last and sunday_based in window.days:
            assert allowed_by_zoneinfo(moment, zones, hours), (moment, clock, window)


# the days clocks change in 2026, in zones west and far east of UTC and one with a half-hour change
DST_DAYS = [("Pacific/Auckland", utc(2026, 4, 5)), ("Pacific/Auckland", utc(2026, 9, 27)), ("America/New_York", utc(2026, 3, 8)),
            ("America/New_York", utc(2026, 11, 1)), ("Europe/London", utc(2026, 10, 25)), ("Australia/Lord_Howe", utc(2026, 4, 5)),
            ("America/St_Johns", utc(2026, 3, 8))]  # fmt: skip


@pytest.mark.parametrize("zone, day", DST_DAYS)
def test_every_minute_around_a_clock_change_is_judged_in_the_zones_own_time(zone, day):
    # the offset is the one in force at each instant, not the one at the same wall-clock reading
    start = int((day - timedelta(days=1)).timestamp() // 60)
    allowed = allowed_minutes(zone, DEFAULT, start, 3 * 1440)
    for minute in range(0, 3 * 1440):
        moment = datetime.fromtimestamp((start + minute) * 60, UTC)
        assert allowed[minute] == allowed_by_zoneinfo(moment, zone, DEFAULT), moment.astimezone(ZoneInfo(zone))


def test_the_morning_auckland_falls_back_opens_at_eight_local_not_seven():
    # 2026-04-05 03:00 NZDT becomes 02:00 NZST; at 06:00 NZST the next legal minute is 08:00 NZST = 20:00 UTC
    assert next_open("Pacific/Auckland", DEFAULT, utc(2026, 4, 4, 18)) == utc(2026, 4, 4, 20)


# ------------------------------------------------------------------ batchcall: when to trigger


def test_trigger_waits_for_the_morning_in_the_recipients_zone():
    # Monday 03:00 UTC is Sunday 22:00 in New York: the next 08:00 there is 13:00 UTC
    assert next_open("America/New_York", DEFAULT, utc(2026, 11, 23, 3)) == utc(2026, 11, 23, 13)
    now = utc(2026, 11, 23, 15, 7, 30)  # 10:07 in New York: now
    assert next_open("America/New_York", DEFAULT, now) == now


def test_trigger_skips_a_window_with_less_than_an_hour_left_and_the_weekend():
    # 20:30 IST (15:00 UTC): half an hour left → tomorrow 08:00 IST = 02:30 UTC
    assert next_open("Asia/Calcutta", DEFAULT, utc(2026, 11, 23, 15)) == utc(2026, 11, 24, 2, 30)
    # Saturday, Mon-Fri only → Monday 09:00 in New York (EST) = 14:00 UTC
    assert next_open("America/New_York", CallingHours.parse("09:00-17:00", "mon-fri"), utc(2026, 11, 28, 15)) == utc(2026, 11, 30, 14)


def test_trigger_on_the_morning_clocks_spring_forward():
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT; 08:00 EDT is 12:00 UTC, not 13:00
    assert next_open("America/New_York", DEFAULT, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 12)
    # Newfoundland the same morning: St John's 08:00 NDT = 10:30 UTC, Halifax 08:00 ADT = 11:00 UTC
    assert next_open(NEWFOUNDLAND, DEFAULT, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 11)


def test_a_window_that_never_opens_in_all_zones_is_none():
    # Perth is 3 hours behind Sydney in summer: 09:00-10:00 in both never overlaps
    assert next_open("Australia/Perth|Australia/Sydney", CallingHours.parse("09:00-10:00"), utc(2026, 11, 23)) is None


@settings(max_examples=150, deadline=None)
@given(
    zones=st.sampled_from([*ZONE_SETS, "Australia/Perth|Australia/Sydney", "Pacific/Auckland|America/Los_Angeles"]),
    start=st.integers(0, 23 * 60), length=st.integers(1, 10 * 60), days=st.sampled_from(["daily", "mon-fri", "sat,sun", "tue", "sun"]),
    minutes=st.integers(0, 366 * 1440),
)  # fmt: skip
def test_the_quick_proof_of_an_open_window_agrees_with_the_minute_grid(zones, start, length, days, minutes):
    hours = CallingHours(start, min(start + length, 24 * 60), CallingHours.parse(None, days).days)
    now = utc(2026, 1, 1) + timedelta(minutes=minutes)
    grid_open = next_open(zones, hours, now) is not None
    if _opens_soon(zones, hours, now):
        assert grid_open  # a proof is never wrong; without one the grid decides
    assert (closed_zone([zones], hours, now) is None) == grid_open


# ------------------------------------------------------------------ recipient timezones


REGIONS = ["US", "CA", "GB", "AU", "IN", "DE", "MX", "BR", "FR", "JP", "RU", "IT", "AR", "CN", "ID"]
TYPES = [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
         PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.FIXED_LINE_OR_MOBILE]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(REGIONS), st.sampled_from(TYPES), st.integers(0, 99_999)), min_size=20, max_size=80))
def test_recipient_zones_agree_with_phonenumbers(samples):
    numbers = []
    for region, kind, tail in samples:
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        digits = str(example.national_number)
        varied = digits[: -len(str(tail))] + str(tail) if len(digits) > 6 else digits
        number = phonenumbers.parse(f"+{example.country_code}{varied}")
        if phonenumbers.is_valid_number(number):
            numbers.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    numbers += ["+17095551234", "+18005550100", "+61412345678", "+919876543210", "+447911123456", "+5215512345678"]
    numbers = [n for n in numbers if phonenumbers.is_valid_number(phonenumbers.parse(n))]  # only valid numbers are accepted
    got = recipient_zones(pa.array(numbers)).to_pylist()
    for number, zones in zip(numbers, got):
        expected = "|".join(sorted(time_zones_for_number(phonenumbers.parse(number))))
        assert zones == expected, number


ALL_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@st.composite
def spelled_numbers(draw):
    """A number of any region and type that is mostly valid, written internationally or nationally (with its country)."""
    region = draw(st.sampled_from(ALL_REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(TYPES))) or phonenumbers.example_number(region)
    if example is None:
        return "", ""
    digits = str(example.national_number)
    tail = str(draw(st.integers(0, 999))).zfill(3)
    example.national_number = int(digits[:-3] + tail) if len(digits) > 5 else example.national_number
    style = draw(st.sampled_from([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL,
                                  phonenumbers.PhoneNumberFormat.E164]))  # fmt: skip
    return phonenumbers.format_number(example, style), region if style == phonenumbers.PhoneNumberFormat.NATIONAL else ""


@settings(max_examples=100, deadline=None)
@given(cases=st.lists(st.one_of(spelled_numbers(), phone_like()), min_size=1, max_size=80))
@example(cases=[("+80045000899", "US")])  # international freephone: phonenumbers knows no zone, UTC is the fallback
def test_zones_from_the_normalise_stage_agree_with_phonenumbers(cases):
    # the number types validation decided spare the timezone stage its own patterns; same answers as phonenumbers,
    # where a number it places nowhere ("Etc/Unknown") takes its country's zones, else UTC (exact_zones)
    phones = classify_column(pa.array([text for text, _ in cases]), "US", pa.array([region for _, region in cases]))
    accepted = phones.keys != 0
    codes, names = zones_of_keys(phones.keys[accepted], phones.kinds[accepted])
    for key, code in zip(phones.keys[accepted].tolist(), codes.tolist()):
        zones = time_zones_for_number(phonenumbers.parse(f"+{key}"))
        expected = exact_zones(f"+{key}") if "Etc/Unknown" in zones else "|".join(sorted(zones))
        assert names[code] == expected, key


# ------------------------------------------------------------------ the CLI


def test_a_timezone_column_overrides_the_number_and_bad_names_are_rejected(tmp_path):
    rows = [["Phone", "Timezone", "Name"], ["+12125550101", "", "a"], ["+12125550102", "america/chicago", "b"],
            ["+12125550103", "Mars/Olympus", "c"], ["+919876543210", "", "d"]]  # fmt: skip
    path = write_delimited(tmp_path / "tz.csv", rows)
    result = run_cli("import", str(path), "--campaign", "tz", "--dry-run", "--json", "--out", str(tmp_path / "out"),
                     "--home", str(tmp_path / "home"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["reject_reasons"] == {"invalid_timezone": 1}
    assert sorted(b["timezone"] for b in summary["batches"]) == ["America/Chicago", "America/New_York", "Asia/Calcutta"]
    rejected = list(csv.DictReader((tmp_path / "out" / "rejected.csv").open(newline="")))
    assert [(r["source_row"], r["raw_value"], r["reason"]) for r in rejected] == [("4", "+12125550103", "invalid_timezone")]


def test_chunks_never_mix_timezones(tmp_path):
    phones = [f"+1212555{n:04d}" for n in range(5)] + [f"+1415555{n:04d}" for n in range(5)] + ["+17095550100"]
    path = write_delimited(tmp_path / "mix.csv", [["Phone"]] + [[p] for p in phones[::-1]])
    result = run_cli("import", str(path), "--campaign", "mix", "--dry-run", "--json", "--batch-size", "3",
                     "--out", str(tmp_path / "out"), "--home", str(tmp_path / "home"))  # fmt: skip
    summary = json.loads(result.stdout)
    assert sorted(b["size"] for b in summary["batches"]) == [1, 2, 2, 3, 3]
    zones_per_chunk = {}
    for row in csv.DictReader((tmp_path / "out" / "accepted.csv").open(newline="")):
        zones_per_chunk.setdefault(row["chunk_key"], set()).add(row["timezone"])
    assert all(len(z) == 1 for z in zones_per_chunk.values()) and len(zones_per_chunk) == 5


def test_an_early_window_is_refused_in_one_line_unless_allowed(tmp_path):
    path = write_delimited(tmp_path / "c.csv", [["Phone"], ["+12125550101"]])
    args = ["import", str(path), "--campaign", "early", "--home", str(tmp_path / "home"), "--window", "07:00-20:00"]
    refused = run_cli(*args, env=DEFAULT_HOURS_ENV)
    assert refused.returncode == 2 and "allow-any-hour" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "home" / "ledger.sqlite").exists()
    allowed = run_cli(*args, "--allow-any-hour", env=DEFAULT_HOURS_ENV)  # submits to the embedded sandbox
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: campaign early: calling window 07:00-20:00 reaches outside 08:00-21:00" in allowed.stderr


def test_rows_the_window_never_opens_for_are_rejected_and_the_rest_imported(tmp_path):
    """+1 800 spans the whole NANP (Guam to Hawaii): 09:00-10:00 is never open in all of it at once."""
    path = write_delimited(tmp_path / "c.csv", [["Phone"], ["+12125550101"], ["+18005550100"], ["+13125550102"],
                                                ["(800) 555-0199"]])  # fmt: skip
    home, out = tmp_path / "home", tmp_path / "out"
    result = run_cli("import", str(path), "--campaign", "narrow", "--home", str(home), "--window", "09:00-10:00", "--dry-run",
                     "--out", str(out), "--json", env=DEFAULT_HOURS_ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["rows_read"], summary["accepted"], summary["rejected"]) == (4, 2, 2)
    with (out / "rejected.csv").open(newline="", encoding="utf-8") as handle:
        rejected = [(row["source_row"], row["raw_value"], row["reason"], row["detail"]) for row in csv.DictReader(handle)]
    assert [row[:3] for row in sorted(rejected)] == [("3", "+18005550100", "never_callable"), ("5", "(800) 555-0199", "never_callable")]
    assert all(row[3].startswith("calling window 09:00-10:00") and "Pacific/Guam" in row[3] for row in rejected)
    assert summary["reject_reasons"]["never_callable"] == 2


@pytest.mark.parametrize("dialect", ["magpipe", "batchcall"])
def test_each_provider_is_told_the_recipients_hours(tmp_path, dialect):
    """Default hours, real HTTP: magpipe gets a window on the account clock, batchcall a timezone and trigger time."""
    rows = [["Phone"], ["+17095550100"], ["+17095550101"], ["+919876543210"]]
    path = write_delimited(tmp_path / "c.csv", rows)
    with running(SandboxConfig(speed=50)) as sandbox:
        env = {**provider_env(dialect, sandbox.url), **DEFAULT_HOURS_ENV}
        before = datetime.now(UTC)
        result = run_cli("import", str(path), "--campaign", "hours", "--home", str(tmp_path / "home"), "--provider", dialect,
                         "--account-timezone", "UTC", "--json", env=env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert sorted(b["timezone"] for b in summary["batches"]) == ["America/Halifax|America/St_Johns", "Asia/Calcutta"]
        with duckdb.connect(str(tmp_path / "home" / "campaigns.duckdb"), read_only=True) as db:
            planned = db.sql("SELECT timezone, calling_window, calling_days FROM batches ORDER BY timezone").fetchall()
        assert planned == [(NEWFOUNDLAND, "08:00-21:00", "mon-sun"), ("Asia/Calcutta", "08:00-21:00", "mon-sun")]
        if dialect == "magpipe":
            listed = httpx.post(sandbox.url + "/functions/v1/batch-calls", json={"action": "list"},
                                headers={"Authorization": "Bearer sandbox-key"}).json()["batches"]  # fmt: skip
            assert len(listed) == 2
            for batch in listed:
                zones = NEWFOUNDLAND if batch["total_recipients"] == 2 else "Asia/Calcutta"
                first = int(batch["window_start_time"][:2]) * 60 + int(batch["window_start_time"][3:])
                last = int(batch["window_end_time"][:2]) * 60 + int(batch["window_end_time"][3:])
                assert last - first >= 9 * 60  # most of the day survives the conversion
                for day in range(14):  # every minute the window allows (UTC clock) is allowed in every zone
                    for minute in range(first, last + 1, 7):
                        moment = before.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=day, minutes=minute)
                        if (moment.weekday() + 1) % 7 in batch["window_days"]:
                            assert allowed_by_zoneinfo(moment, zones, DEFAULT), (batch["name"], moment)
        else:
            listed = httpx.get(sandbox.url + "/batch-call", headers={"X-API-KEY": "sandbox-key", "X-API-SECRET": "sandbox-secret"}).json()["data"]
            assert sorted(b["timezone"] for b in listed) == ["America/Halifax", "Asia/Calcutta"]
            for batch in listed:
                zones = NEWFOUNDLAND if batch["timezone"] == "America/Halifax" else "Asia/Calcutta"
                trigger = datetime.fromtimestamp(batch["scheduled_timestamp"] / 1000, UTC)
                assert trigger >= before - timedelta(seconds=1)
                assert allowed_by_zoneinfo(trigger, zones, DEFAULT) and allowed_by_zoneinfo(trigger + timedelta(minutes=59), zones, DEFAULT)
                assert trigger <= before + timedelta(days=1)


def test_a_ledger_from_an_older_version_gains_the_new_columns(tmp_path):
    import sqlite3

    from pipelines.ledger import Ledger

    path = tmp_path / "ledger.sqlite"
    Ledger(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE alembic_version")  # a release from before the migrations
        for column in ("timezone", "window", "days", "kind", "not_before"):
            db.execute(f'ALTER TABLE chunks DROP COLUMN "{column}"')
        db.execute("INSERT INTO chunks (key, campaign, provider, dialect, batch_name, size, state, import_id, attempts, created_at, "
                   "updated_at) VALUES ('ck1', 'old', 'sandbox', 'batchcall', 'old [ck1]', 1, 'planned', 1, 0, '2026-01-01', '2026-01-01')")  # fmt: skip
    with Ledger(f"sqlite:///{path}") as ledger:
        (chunk,) = ledger.chunks("old")
    assert (chunk.timezone, chunk.window, chunk.days, chunk.kind, chunk.not_before) == ("UTC", "08:00-21:00", "mon-sun", "import", None)


def test_a_batch_started_outside_its_calling_hours_says_when_dialling_begins(tmp_path):
    """The submit line of a batch the provider holds until its window opens names that moment, in UTC and local time."""
    from tests.conftest import run_cli
    from tests.submit_helpers import closed_new_york_window, contacts_file

    start, opens = closed_new_york_window()
    path, _ = contacts_file(tmp_path, count=2)  # +1212…: New York
    result = run_cli("import", str(path), "--campaign", "later", "--home", str(tmp_path / "home"),
                     "--window", f"{start:02d}:00-{start + 2:02d}:00", "--allow-any-hour")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("started 1/1:")]
    when = opens.astimezone(UTC)
    assert line.endswith(f", dialling from {when:%Y-%m-%d %H:%M} UTC ({opens:%Y-%m-%d} {start:02d}:00 America/New_York)"), line


def test_a_provider_on_the_account_clock_is_told_the_first_minute_inside_its_window():
    """magpipe dials only inside the window it is sent (account clock): the start it is told — and the time the
    console names — is the first minute the people's hours and that window are both open, not before."""
    from pipelines.ingest.hours import first_in_window
    from schemas.provider import AccountWindow

    window = AccountWindow("00:00", "09:59", (1, 2, 3, 4, 5))  # Mon-Fri, UTC account
    monday_21 = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    assert first_in_window(window, "UTC", monday_21) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert first_in_window(window, "UTC", datetime(2026, 12, 1, 5, 30, tzinfo=UTC)) == datetime(2026, 12, 1, 5, 30, tzinfo=UTC)
    friday_late = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert first_in_window(window, "UTC", friday_late) == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # after the weekend
    assert first_in_window(AccountWindow("08:00", "20:59", (0,)), "America/New_York", monday_21) == datetime(
        2026, 12, 6, 13, 0, tzinfo=UTC)  # Sunday 08:00 in New York
    assert first_in_window(AccountWindow("08:00", "20:59", ()), "UTC", monday_21) is None
