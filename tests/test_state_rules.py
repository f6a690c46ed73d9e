"""State calling rules: the state of a number, the hours its state allows, Sundays and holidays, and the cap on calls
per 24 hours across imports, retries and campaigns.

Hours are judged at fixed moments (in-process: the functions the submitter calls, with the moment given) and checked
against zoneinfo and the holidays library minute by minute, independently of pipelines.ingest.hours; what the CLI
plans and sends goes through the sandbox over loopback.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import holidays
import httpx
import numpy as np
import pytest

from pipelines.errors import UsageError
from pipelines.ingest.hours import CallingHours, account_window, closed_zone, next_open
from pipelines.ingest.states import (
    AREA_CODES, STATE_CODE, area_code_table, area_codes_from_phonenumbers, load_rules, over_cap, states_of_keys, states_of_text,
)  # fmt: skip
from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.conftest import run_cli, write_delimited
from tests.submit_helpers import provider_env

RULES = load_rules(None)
FEDERAL = CallingHours()
FLORIDA = RULES.hours(FEDERAL, "FL")
LOUISIANA = RULES.hours(FEDERAL, "LA")


@pytest.fixture(autouse=True)
def shipped_rules(monkeypatch):
    """The shipped state rules for every command run here (the rest of the suite turns them off: tests/conftest.py)."""
    monkeypatch.setenv("CAMPAIGNS_RULES", "")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def allowed(moment: datetime, zone: str, window: tuple[int, int], days: set[int], state: str | None = None) -> bool:
    """Independently of the code under test: may someone in `zone` be called at `moment`?"""
    local = moment.astimezone(ZoneInfo(zone))
    if state is not None and local.date() in holidays.US(subdiv=state, years=local.year):
        return False
    return local.weekday() in days and window[0] <= local.hour * 60 + local.minute < window[1]


# ------------------------------------------------------------------ a number's state


def test_the_shipped_area_code_table_is_what_phonenumbers_says():
    """us_area_codes.csv is made from the pinned phonenumbers (python -m pipelines.ingest.states); after an upgrade of
    phonenumbers this fails until the table is made again."""
    with AREA_CODES.open(newline="") as file:
        shipped = {int(row["area_code"]): row["state"] for row in csv.DictReader(file)}
    assert shipped == area_codes_from_phonenumbers()
    assert {305: "FL", 405: "OK", 918: "OK", 301: "MD", 504: "LA", 212: "NY", 203: "CT", 202: "DC", 206: "WA"}.items() <= shipped.items()
    assert not {416, 604, 800, 787} & set(shipped)  # Canada, toll-free, Puerto Rico: no US state


def test_states_of_numbers_and_of_state_cells():
    keys = np.array([13055550101, 14055550102, 18005550103, 14165550104, 447700900123, 12035550105])
    assert list(states_of_keys(keys)) == [STATE_CODE[s] if s else 0 for s in ("FL", "OK", "", "", "", "CT")]
    import pyarrow as pa

    codes, unknown = states_of_text(pa.array(["FL", " florida ", "US-OK", "", "Ontario", None, "Washington DC"]))
    assert list(codes) == [STATE_CODE["FL"], STATE_CODE["FL"], STATE_CODE["OK"], 0, 0, 0, STATE_CODE["DC"]]
    assert list(unknown) == [False, False, False, False, True, False, False]
    assert area_code_table()[305] == STATE_CODE["FL"]


# ------------------------------------------------------------------ hours, days and holidays at fixed moments


def test_the_shipped_rules_narrow_the_federal_window():
    assert (FLORIDA.window_text, FLORIDA.days_text, FLORIDA.holidays) == ("08:00-20:00", "mon-sun", "")
    assert (LOUISIANA.window_text, LOUISIANA.days_text, LOUISIANA.holidays) == ("08:00-20:00", "mon-sat", "US-LA")
    assert RULES.hours(FEDERAL, "NY") == FEDERAL  # no state rule: the campaign's hours
    assert RULES.hours(CallingHours.parse("09:00-21:00", "mon-fri"), "FL") == CallingHours(540, 1200, (0, 1, 2, 3, 4))
    assert [rule.cap for rule in map(RULES.rule, ("FL", "OK", "MD", "LA"))] == [3, 3, 3, None]


def test_a_florida_number_at_2030_local_is_not_called_until_the_morning():
    at_2030 = utc(2026, 12, 1, 1, 30)  # Monday 20:30 in Miami (EST)
    assert allowed(at_2030, "America/New_York", (480, 21 * 60), set(range(7)))  # federal hours would call now
    assert next_open("America/New_York", FLORIDA, at_2030) == utc(2026, 12, 1, 13)  # Tuesday 08:00 EST
    assert next_open("America/New_York", FLORIDA, utc(2026, 12, 1, 22, 59)) == utc(2026, 12, 1, 22, 59)  # 17:59: an hour left


def test_a_louisiana_number_is_not_called_on_a_sunday_or_a_legal_holiday():
    sunday = utc(2026, 12, 6, 16)  # Sunday 10:00 in New Orleans (CST)
    assert next_open("America/Chicago", LOUISIANA, sunday) == utc(2026, 12, 7, 14)  # Monday 08:00 CST
    christmas = utc(2026, 12, 25, 15)  # Friday 2026-12-25 09:00 CST: a legal holiday
    assert next_open("America/Chicago", LOUISIANA, christmas) == utc(2026, 12, 26, 14)  # Saturday 08:00
    mardi_gras = utc(2027, 2, 9, 15)  # Tuesday 2027-02-09: Mardi Gras, a Louisiana holiday only
    assert next_open("America/Chicago", LOUISIANA, mardi_gras) == utc(2027, 2, 10, 14)
    assert next_open("America/Chicago", FEDERAL, mardi_gras) == mardi_gras


@pytest.mark.parametrize("state, zone, start", [
    ("LA", "America/Chicago", utc(2026, 12, 17)),  # Christmas within the horizon
    ("LA", "America/Chicago", utc(2026, 11, 20)),  # Thanksgiving
    ("FL", "America/New_York", utc(2026, 10, 28)),  # clocks fall back on 2026-11-01
    ("FL", "America/New_York", utc(2027, 3, 3)),  # clocks spring forward on 2027-03-14
    ("OK", "America/Chicago", utc(2027, 3, 10)),
])  # fmt: skip
@pytest.mark.parametrize("account", ["UTC", "America/New_York", "Europe/Berlin"])
def test_every_minute_of_the_magpipe_window_is_inside_the_states_hours(state, zone, start, account):
    """magpipe is told one window and weekdays on the account clock for two weeks: each minute of it, on each of those
    days, is inside the state's hours, on a day that is neither excluded nor a holiday — DST changes included."""
    hours = RULES.hours(FEDERAL, state)
    window = account_window(zone, hours, account, start)
    assert window is not None
    first = int(window.start_time[:2]) * 60 + int(window.start_time[3:])
    last = int(window.end_time[:2]) * 60 + int(window.end_time[3:])
    assert last - first >= 6 * 60, window  # most of the day survives
    clock = ZoneInfo(account)
    holiday_state = state if hours.holidays else None
    for day in range(14):
        midnight = datetime.combine((start.astimezone(clock) + timedelta(days=day)).date(), datetime.min.time(), clock)
        if (midnight.weekday() + 1) % 7 not in window.days:
            continue
        for minute in range(first, last + 1, 5):
            moment = midnight + timedelta(minutes=minute)
            assert allowed(moment, zone, (hours.start, hours.end), set(hours.days), holiday_state), (window, moment)


@pytest.mark.parametrize("state, zone", [("FL", "America/New_York"), ("LA", "America/Chicago"), ("MD", "America/New_York")])
def test_batchcall_is_triggered_inside_the_states_hours_with_an_hour_left(state, zone):
    hours = RULES.hours(FEDERAL, state)
    holiday_state = state if hours.holidays else None
    for hour in range(0, 24 * 21, 5):  # three weeks, DST and holidays included, from many moments
        now = utc(2026, 10, 25) + timedelta(hours=hour, minutes=13)
        trigger = next_open(zone, hours, now)
        assert trigger is not None and trigger >= now
        for minutes in (0, 59):
            assert allowed(trigger + timedelta(minutes=minutes), zone, (hours.start, hours.end), set(hours.days), holiday_state), now


# ------------------------------------------------------------------ rules files


def test_a_users_rules_file_replaces_and_adds_states(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[states.FL]\nwindow = "09:00-18:00"\nsource = "our counsel, 2026"\n\n'
                    '[states.TX]\nwindow = "09:00-21:00"\ndays = "mon-sat"\nholidays = ["2026-12-24"]\ncap = 2\nsource = "Tex. Bus. & Com. Code § 301.051"\n')  # fmt: skip
    rules = load_rules(str(path))
    assert rules.hours(FEDERAL, "FL") == CallingHours(540, 1080)  # replaced: no cap any more
    assert rules.rule("FL").cap is None and rules.rule("OK").cap == 3  # the others stay
    texas = rules.hours(FEDERAL, "TX")
    assert (texas.window_text, texas.days_text, texas.holidays, rules.rule("TX").cap) == ("09:00-21:00", "mon-sat", "2026-12-24", 2)
    assert next_open("America/Chicago", texas, utc(2026, 12, 24, 16)) == utc(2026, 12, 25, 15)  # not on the 24th: Friday 09:00
    assert not load_rules("none").enabled


def test_next_open_skips_a_dated_holiday_only():
    texas = CallingHours.parse("09:00-21:00", "mon-sat", "2026-12-24")
    assert next_open("America/Chicago", texas, utc(2026, 12, 24, 16)) == utc(2026, 12, 25, 15)  # Friday 09:00 CST


@pytest.mark.parametrize("text, message", [
    ('[states.XX]\nsource = "x"\n', "not a US state"),
    ('[states.FL]\nwindow = "08:00-20:00"\n', "needs its source"),
    ('[states.FL]\nsource = "x"\ncap = 0\n', "cap must be"),
    ('[states.FL]\nsource = "x"\nholidays = ["someday"]\n', "neither"),
    ('[states.FL]\nsource = "x"\nhours = "08:00-20:00"\n', "unknown keys hours"),
    ('[states.FL]\nsource = "x"\nwindow = "20:00-08:00"\n', "calling window"),
    ("states = [", "rules file"),
    ("[other]\n", "no [states.XX]"),
])  # fmt: skip
def test_a_bad_rules_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        load_rules(str(path))


def test_caps_are_counted_per_number_and_state():
    calls = (np.array([14055550101, 14055550102, 13055550103]), np.array([3, 2, 5]))
    caps = RULES.caps()
    keys = np.array([14055550101, 14055550102, 13055550103, 12125550104])
    states = np.array([STATE_CODE["OK"], STATE_CODE["OK"], STATE_CODE["NY"], STATE_CODE["NY"]])
    assert list(over_cap(keys, states, calls, caps)) == [True, False, False, False]  # NY has no cap, however many calls


def test_a_window_the_state_rule_closes_is_never_callable():
    assert closed_zone(["America/New_York"], RULES.hours(CallingHours.parse("20:00-21:00"), "FL"), utc(2026, 12, 1)) is not None
    assert closed_zone(["America/New_York"], RULES.hours(CallingHours.parse("20:00-21:00"), "NY"), utc(2026, 12, 1)) is None


# ------------------------------------------------------------------ the CLI, as a user types it


def _dry_run(tmp_path, rows, *args):
    path = write_delimited(tmp_path / "c.csv", rows)
    result = run_cli("import", str(path), "--campaign", "s", "--dry-run", "--out", str(tmp_path / "out"), "--json", *args,
                     "--home", str(tmp_path / "home"))  # fmt: skip
    return result


def _read(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_each_contacts_state_is_in_accepted_csv_and_batches_never_mix_states(tmp_path):
    rows = [["Phone", "State"]]
    rows += [[f"+1305555{n:04d}", ""] for n in range(5)]  # Florida
    rows += [[f"+1212555{n:04d}", ""] for n in range(5)]  # New York: the same zone as Florida's east
    rows += [["+12125559999", "fl"], ["+14165550100", ""], ["+442079460958", ""]]  # a state cell over the area code; Canada; UK
    result = _dry_run(tmp_path, rows, "--batch-size", "100")
    assert result.returncode == 0, result.stderr
    accepted = _read(tmp_path / "out" / "accepted.csv")
    state = {row["e164"]: row["state"] for row in accepted}
    assert state["+13055550000"] == "FL" and state["+12125550000"] == "NY" and state["+12125559999"] == "FL"
    assert state["+14165550100"] == "" and state["+442079460958"] == ""
    per_chunk = {}
    for row in accepted:
        per_chunk.setdefault(row["chunk_key"], set()).add((row["timezone"], row["state"]))
    assert all(len(pairs) == 1 for pairs in per_chunk.values())
    assert sorted(pair for pairs in per_chunk.values() for pair in pairs) == [
        ("America/New_York", "FL"), ("America/New_York", "NY"), ("America/Toronto", ""), ("Europe/London", "")]
    summary = json.loads(result.stdout)
    assert sorted((b["timezone"], b["us_state"], b["size"]) for b in summary["batches"])[:2] == [
        ("America/New_York", "FL", 6), ("America/New_York", "NY", 5)]


def test_a_window_no_state_rule_leaves_open_is_rejected_naming_the_rule(tmp_path):
    rows = [["Phone"], ["+13055550100"], ["+12125550100"], ["+15045550100"]]
    result = _dry_run(tmp_path, rows, "--window", "20:00-21:00")
    assert result.returncode == 0, result.stderr
    rejected = _read(tmp_path / "out" / "rejected.csv")
    assert [(r["raw_value"], r["reason"]) for r in rejected] == [("+13055550100", "never_callable"), ("+15045550100", "never_callable")]
    assert "FL: 08:00-20:00" in rejected[0]["detail"] and "Fla. Stat. § 501.616(6)" in rejected[0]["detail"]
    assert "LA: 08:00-20:00, mon-sat, not on LA's legal holidays (La. R.S. 45:811)" in rejected[1]["detail"]
    assert [r["e164"] for r in _read(tmp_path / "out" / "accepted.csv")] == ["+12125550100"]
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == summary["accepted"] + summary["rejected"] == 3


def test_rules_none_warns_and_a_users_file_applies(tmp_path):
    rows = [["Phone"], ["+13055550100"]]
    off = _dry_run(tmp_path, rows, "--window", "20:00-21:00", "--rules", "none")
    assert off.returncode == 0 and json.loads(off.stdout)["accepted"] == 1
    assert any("state calling rules are off" in warning for warning in json.loads(off.stdout)["warnings"])
    mine = tmp_path / "mine.toml"
    mine.write_text('[states.FL]\nwindow = "08:00-21:00"\nsource = "ours"\n')
    (tmp_path / "campaigns.toml").write_text(f'rules = "{mine}"\n')
    ours = run_cli("import", str(tmp_path / "c.csv"), "--campaign", "s", "--dry-run", "--json", "--window", "20:00-21:00",
                   "--home", str(tmp_path / "home"), cwd=tmp_path)  # fmt: skip
    assert ours.returncode == 0 and json.loads(ours.stdout)["accepted"] == 1, ours.stderr
    bad = _dry_run(tmp_path, rows, "--rules", str(tmp_path / "missing.toml"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing.toml" in bad.stderr, bad.stderr


OKLAHOMA = [f"+1405555{n:04d}" for n in range(12)]


def test_a_fourth_call_within_24_hours_to_an_oklahoma_number_is_never_planned(tmp_path):
    """Three campaigns call the same Oklahoma and New York numbers; a fourth import plans only the New York ones, and
    once the calls are over for a day it plans the rest."""
    path = write_delimited(tmp_path / "c.csv", [["Phone"], *([n] for n in [*OKLAHOMA[:3], "+12125550100"])])
    home = tmp_path / "home"
    with running(SandboxConfig(speed=400, seed=3)) as sandbox:
        env = provider_env("magpipe", sandbox.url)
        for campaign in ("a", "b", "c"):
            result = run_cli("import", str(path), "--campaign", campaign, "--home", str(home), "--provider", "magpipe", "--json", env=env)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["state_capped"] == 0
        fourth = run_cli("import", str(path), "--campaign", "d", "--home", str(home), "--provider", "magpipe", "--json", env=env)
        assert fourth.returncode == 0, fourth.stderr
        summary = json.loads(fourth.stdout)
        assert (summary["accepted"], summary["state_capped"], sum(b["size"] for b in summary["batches"])) == (4, 3, 1)
        calls = Counter(r["phone_number"] for r in httpx.get(sandbox.url + "/_sandbox/recipients", timeout=10).json())
        assert all(calls[n] == 3 for n in OKLAHOMA[:3]) and calls["+12125550100"] == 4
        text = run_cli("import", str(path), "--campaign", "d", "--home", str(home), env=env)
        assert "Called as often in 24 hours as their state allows, skipped (a later import plans them): 3" in text.stdout + text.stderr

        with sqlite3.connect(home / "ledger.sqlite") as db:  # a day later: every call is over and was synced a day ago
            day_ago = datetime.now(UTC) - timedelta(hours=25)
            db.execute("UPDATE chunks SET state = 'finished', updated_at = ?", (day_ago.strftime("%Y-%m-%d %H:%M:%S.%f"),))
        later = run_cli("import", str(path), "--campaign", "d", "--home", str(home), "--json", env=env)
        assert later.returncode == 0, later.stderr
        assert sum(b["size"] for b in json.loads(later.stdout)["batches"]) == 3
    with duckdb.connect(str(home / "campaigns.duckdb"), read_only=True) as db:
        assert db.sql("SELECT sum(state_capped) FROM import_files WHERE campaign = 'd' AND counted").fetchall() == [(0,)]
        assert dict(db.sql("SELECT e164, state FROM recipient_outcomes WHERE campaign = 'd'").fetchall())[OKLAHOMA[0]] == "OK"
        assert set(db.sql("SELECT DISTINCT us_state FROM batches").fetchall()) == {("OK",), ("NY",)}


def test_retry_never_plans_a_call_over_the_states_cap(tmp_path, monkeypatch):
    # Oklahoma's cap with its hours all day: the first calls must end within the test, whatever the hour in Oklahoma
    rules = tmp_path / "rules.toml"
    rules.write_text('[states.OK]\nwindow = "00:00-24:00"\ncap = 3\nsource = "the test"\n')
    monkeypatch.setenv("CAMPAIGNS_RULES", str(rules))
    path = write_delimited(tmp_path / "c.csv", [["Phone"], *([n] for n in OKLAHOMA)])
    home = tmp_path / "home"
    with running(SandboxConfig(speed=400, seed=11)) as sandbox:
        env = provider_env("magpipe", sandbox.url)
        assert run_cli("import", str(path), "--campaign", "r", "--home", str(home), "--provider", "magpipe", env=env).returncode == 0
        assert run_cli("sync", "--campaign", "r", "--wait", "60", "--home", str(home), env=env).returncode == 0
        unconnected = {r["phone_number"] for r in httpx.get(sandbox.url + "/_sandbox/recipients", timeout=10).json()
                       if r["status"] in ("busy", "no_answer", "failed")}  # fmt: skip
        assert unconnected
        dry = run_cli("retry", "--campaign", "r", "--min-gap", "0", "--dry-run", "--json", "--home", str(home), env=env)
        assert json.loads(dry.stdout)["retried_contacts"] == len(unconnected), dry.stderr
        for campaign in ("x", "y"):  # two more calls to each in the same 24 hours
            assert run_cli("import", str(path), "--campaign", campaign, "--home", str(home), env=env).returncode == 0
        result = run_cli("retry", "--campaign", "r", "--min-gap", "0", "--json", "--home", str(home), env=env)
        assert result.returncode == 0, result.stderr
        outcome = json.loads(result.stdout)
        assert outcome["retried_contacts"] == 0 and outcome["not_retried"]["state_cap"] == len(unconnected)
        text = run_cli("retry", "--campaign", "r", "--min-gap", "0", "--home", str(home), env=env)
        assert "state_cap" in text.stdout + text.stderr


@pytest.mark.parametrize("dialect", ["magpipe", "batchcall"])
def test_each_provider_is_told_no_sunday_no_holiday_and_the_states_hours(tmp_path, dialect):
    """Real HTTP: a Louisiana batch reaches magpipe as 08:00-19:59 without Sunday (nor a holiday's weekday) on an
    account clock in Chicago, and batchcall with a trigger inside Louisiana's hours on a day that is neither."""
    path = write_delimited(tmp_path / "c.csv", [["Phone"], ["+15045550100"], ["+15045550101"]])
    chicago = ZoneInfo("America/Chicago")
    with running(SandboxConfig(speed=50)) as sandbox:
        env = provider_env(dialect, sandbox.url)
        before = datetime.now(UTC)
        result = run_cli("import", str(path), "--campaign", "la", "--home", str(tmp_path / "home"), "--provider", dialect,
                         "--account-timezone", "America/Chicago", "--json", env=env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert [(b["us_state"], b["size"]) for b in json.loads(result.stdout)["batches"]] == [("LA", 2)]
        if dialect == "magpipe":
            (batch,) = httpx.post(sandbox.url + "/functions/v1/batch-calls", json={"action": "list"},
                                  headers={"Authorization": "Bearer sandbox-key"}, timeout=10).json()["batches"]  # fmt: skip
            assert (batch["window_start_time"], batch["window_end_time"]) == ("08:00", "19:59")
            today = before.astimezone(chicago).date()
            off = {(day.weekday() + 1) % 7 for day in holidays.US(subdiv="LA", years=[today.year, today.year + 1])
                   if today <= day < today + timedelta(days=14)}  # fmt: skip
            assert set(batch["window_days"]) == {1, 2, 3, 4, 5, 6} - off  # 0 = Sunday
        else:
            (batch,) = httpx.get(sandbox.url + "/batch-call", headers={"X-API-KEY": "sandbox-key", "X-API-SECRET": "sandbox-secret"},
                                 timeout=10).json()["data"]  # fmt: skip
            trigger = datetime.fromtimestamp(batch["scheduled_timestamp"] / 1000, UTC)
            for moment in (trigger, trigger + timedelta(minutes=59)):
                assert allowed(moment, "America/Chicago", (480, 1200), set(range(6)), "LA"), moment.astimezone(chicago)
    with duckdb.connect(str(tmp_path / "home" / "campaigns.duckdb"), read_only=True) as db:
        assert db.sql("SELECT us_state, calling_window, calling_days, calling_holidays FROM batches").fetchall() == [
            ("LA", "08:00-20:00", "mon-sat", "US-LA")]


def test_inspect_names_the_state_column(tmp_path):
    path = write_delimited(tmp_path / "c.csv", [["Phone", "Mailing State"], ["+12125550100", "FL"]])
    result = run_cli("inspect", str(path))
    assert result.returncode == 0, result.stderr
    assert "US state    Mailing State (over the area code's)" in result.stdout


@pytest.mark.parametrize("dialect", ["magpipe", "batchcall"])
@pytest.mark.parametrize("state, zone, now, trigger", [
    ("FL", "America/New_York", utc(2026, 12, 1, 1, 30), utc(2026, 12, 1, 13)),  # Monday 20:30 in Miami → Tuesday 08:00
    ("LA", "America/Chicago", utc(2026, 12, 6, 16), utc(2026, 12, 7, 14)),  # Sunday 10:00 in New Orleans → Monday 08:00
    ("LA", "America/Chicago", utc(2026, 12, 25, 15), utc(2026, 12, 26, 14)),  # Christmas → Saturday 08:00
])  # fmt: skip
def test_the_submitter_at_a_fixed_moment_schedules_a_batch_inside_its_states_hours(dialect, state, zone, now, trigger):
    """What the submitter tells each provider for a batch planned under a state's rule, its clock fixed."""
    from pipelines.providers.retry import RetryPolicy
    from pipelines.submit import Submitter
    from schemas.ledger import ChunkRecord

    hours = RULES.hours(FEDERAL, state)
    chunk = ChunkRecord(key="ck1", campaign="c", provider=dialect, dialect=dialect, batch_name="c [ck1]", size=1, import_id=1,
                        created_at=now, updated_at=now, timezone=zone, us_state=state, window=hours.window_text,
                        days=hours.days_text, holidays=hours.holidays)  # fmt: skip
    client = type("Client", (), {"dialect": dialect})()
    schedule = Submitter(None, client, policy=RetryPolicy(), clock=lambda: now, account_timezone=zone)._schedule(chunk)
    assert schedule.trigger_at == trigger
    if dialect == "magpipe":
        assert (schedule.window.start_time, schedule.window.end_time) == ("08:00", "19:59")
        assert (0 in schedule.window.days) == (state == "FL")  # Sunday (0) only where the state allows it


def test_a_number_its_hours_never_open_for_is_never_callable_even_at_its_cap(tmp_path):
    """A number that can never be called is rejected, whether or not it was called lately: never counted as capped."""
    path = write_delimited(tmp_path / "c.csv", [["Phone"], ["+13055550100"], ["+12125550100"]])
    home = tmp_path / "home"
    for campaign in ("a", "b", "c"):
        assert run_cli("import", str(path), "--campaign", campaign, "--home", str(home), "--hold").returncode == 0
    summary = json.loads(run_cli("import", str(path), "--campaign", "d", "--home", str(home), "--dry-run", "--json",
                                 "--window", "20:00-21:00").stdout)  # fmt: skip
    assert (summary["reject_reasons"], summary["state_capped"], summary["accepted"]) == ({"never_callable": 1}, 0, 1)
    capped = json.loads(run_cli("import", str(path), "--campaign", "d", "--home", str(home), "--dry-run", "--json").stdout)
    assert (capped["state_capped"], sum(b["size"] for b in capped["batches"])) == (1, 1)


def test_state_columns_a_named_one_wins_several_are_warned_about_and_bad_cells_named(tmp_path):
    named = _dry_run(tmp_path, [["Phone", "Region Code"], ["2125550199", "Florida"]], "--state-column", "Region Code")
    assert named.returncode == 0 and json.loads(named.stdout)["accepted"] == 1, named.stdout  # not read as a country
    assert _read(tmp_path / "out" / "accepted.csv")[0]["state"] == "FL"
    several = _dry_run(tmp_path, [["Phone", "State", "Mailing State"], ["2125550199", "Florida", "Texas"]])
    warnings = json.loads(several.stdout)["warnings"]
    assert any("several columns could be the US state ('State', 'Mailing State')" in w for w in warnings), warnings
    assert _read(tmp_path / "out" / "accepted.csv")[0]["state"] == "NY"
    bad = _dry_run(tmp_path, [["Phone", "State"], ["2125550199", "Narnia"], ["2125550198", "Gondor"], ["4165550100", "Ontario"]])
    assert json.loads(bad.stdout)["warnings"] == [f"{tmp_path / 'c.csv'}: state 'Narnia' (row 2, and 1 more row(s)) names no US state; "
                                                  "the area code decides their state's calling rules"]  # the Canadian's province is no news


def test_a_rules_file_names_itself_and_the_state_in_every_error(tmp_path):
    path = tmp_path / "rules.toml"
    for text, message in [('[states.TX]\nsource = "x"\nwindow = "9-25"\n', r"\[states.TX\]: calling window '9-25'"),
                          ('[states.TX]\nsource = "x"\ndays = "funday"\n', r"\[states.TX\]: calling days 'funday'"),
                          ('foo = 1\n[states.TX]\nsource = "x"\n', "unknown key 'foo'"),
                          ('[states]\nTX = 3\n', r"\[states.TX\]: must be a table")]:  # fmt: skip
        path.write_text(text)
        with pytest.raises(UsageError, match=f"rules file {path}.*{message}"):
            load_rules(str(path))
