"""US states: the state a number's area code suggests, and the calling rules each state adds to the federal ones.

The state of a number comes from its area code, through the table `us_area_codes.csv`
shipped beside this module. The table is made from phonenumbers' geocoding data (the
English description of each +1 NPA prefix: "Florida", "Chicago, IL", "Washington State")
by `python -m pipelines.ingest.states`, and tests/test_state_rules.py fails when the
pinned phonenumbers says otherwise: upgrading phonenumbers and rerunning the script is how
it is kept up to date. (Loading phonenumbers' geocoding data costs half a second per
process; the table costs a millisecond.) Only the 50 states and DC are states here.

The rules are data: `calling_rules.toml` beside this module (every rule with its source),
a user's file on top of it (`--rules FILE` / `rules = "FILE"`: its states replace or add
to the shipped ones), or none at all (`--rules none`). See the README's "State calling
rules".
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import UsageError
from pipelines.ingest.hours import CallingHours, parse_days, parse_window

HERE = Path(__file__).parent
AREA_CODES = HERE / "us_area_codes.csv"
SHIPPED_RULES = HERE / "calling_rules.toml"
STATE_NAMES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii",
    "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip
STATES: tuple[str, ...] = ("", *sorted(STATE_NAMES))  # a state's code in a column is its index here; 0: no state
STATE_CODE = {state: code for code, state in enumerate(STATES)}
NANP_MIN, NANP_MAX = 10**10, 2 * 10**10  # E.164 keys of +1 numbers: 1NPANXXXXXX


# ------------------------------------------------------------------ a number's state


@lru_cache(maxsize=1)
def area_code_table() -> np.ndarray:
    """For each area code 0–999, its state's code in STATES (0: not a US state's)."""
    table = np.zeros(1000, dtype=np.int8)
    with AREA_CODES.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            table[int(row["area_code"])] = STATE_CODE[row["state"]]
    return table


def states_of_keys(keys: np.ndarray) -> np.ndarray:
    """The state code of each E.164 key (int8; 0 for numbers outside the US states' area codes)."""
    keys = np.asarray(keys, dtype=np.int64)
    nanp = (keys >= NANP_MIN) & (keys < NANP_MAX)
    area = np.where(nanp, keys // 10**7 % 1000, 0)
    return np.where(nanp, area_code_table()[area], 0).astype(np.int8)


@lru_cache(maxsize=1)
def _spellings() -> tuple[pa.Array, pa.Array]:
    """Every way a state cell may name a state, lower-cased (code, name, 'US-FL'), and the state code of each."""
    words, codes = [], []
    for state, name in STATE_NAMES.items():
        for word in (state, name, f"us-{state}", f"us {state}"):
            words.append(word.casefold())
            codes.append(STATE_CODE[state])
    words += ["washington dc", "washington d.c.", "d.c."]
    codes += [STATE_CODE["DC"]] * 3
    return pa.array(words, pa.string()), pa.array(codes, pa.int8())


def states_of_text(cells: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A state column's cells ("FL", "Florida", "us-fl") → (state codes, which non-empty cells name no US state)."""
    words, codes = _spellings()
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(cells.cast(pa.string()).fill_null("")))
    found = pc.index_in(lowered, value_set=words)
    state = codes.take(found.fill_null(0)).to_numpy(zero_copy_only=False).copy()
    named = found.is_valid().to_numpy(zero_copy_only=False)
    state[~named] = 0
    unknown = ~named & pc.not_equal(lowered, "").to_numpy(zero_copy_only=False)
    return state.astype(np.int8), unknown


def area_codes_from_phonenumbers() -> dict[int, str]:
    """Area code → state, as the pinned phonenumbers' geocoding data says (what us_area_codes.csv must hold)."""
    from phonenumbers.geodata import GEOCODE_DATA  # half a second to load: only the script and its test use it

    by_name = {name.casefold(): state for state, name in STATE_NAMES.items()}
    by_name |= {"washington d.c.": "DC", "washington state": "WA"}

    def state_of(description: str) -> str | None:
        if description.casefold() in by_name:
            return by_name[description.casefold()]
        if description[-4:-2] == ", " and description[-2:] in STATE_NAMES:  # "Chicago, IL"
            return description[-2:]
        return None

    longer: dict[int, set] = {}  # area codes described only by longer prefixes (exchanges): their states
    for prefix, names in GEOCODE_DATA.items():
        if prefix.startswith("1") and len(prefix) > 4 and prefix[:4] not in GEOCODE_DATA:
            longer.setdefault(int(prefix[1:4]), set()).add(state_of(names.get("en", "")))
    found = {}
    for area in range(200, 1000):
        if f"1{area}" in GEOCODE_DATA:
            state = state_of(GEOCODE_DATA[f"1{area}"].get("en", ""))
        else:  # one state for every exchange, or none
            states = longer.get(area, set())
            state = next(iter(states)) if len(states) == 1 else None
        if state is not None:
            found[area] = state
    return found


def write_area_codes(path: Path = AREA_CODES) -> int:
    table = area_codes_from_phonenumbers()
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["area_code", "state"])
        writer.writerows(sorted(table.items()))
    return len(table)


# ------------------------------------------------------------------ the rules


def holidays_text(spec: str) -> str:
    """'US-LA,2026-12-24' → "LA's legal holidays, 2026-12-24"."""
    return ", ".join(f"{item[3:]}'s legal holidays" if item.startswith("US-") else item for item in spec.split(",") if item)


@dataclass(frozen=True)
class StateRule:
    """What one state adds to the federal rules: a narrower window, fewer days, holidays, a cap on calls per 24 hours."""

    state: str
    source: str
    window: tuple[int, int] | None = None  # local [start, end) in minutes after midnight
    days: tuple[int, ...] | None = None  # Monday-based weekdays calls are allowed on
    holidays: str = ""  # CallingHours.holidays: "US-LA" (the state's legal holidays) and/or ISO dates
    cap: int | None = None  # calls to one number in any rolling 24 hours, counted across campaigns

    def describe(self) -> str:
        """'FL: 08:00-20:00, 3 calls per 24 h (Fla. Stat. § 501.616(6))'."""
        hours = CallingHours(*(self.window or (0, 24 * 60)), self.days or tuple(range(7)))
        parts = [hours.window_text] if self.window else []
        if self.days is not None and len(self.days) < 7:
            parts.append(hours.days_text)
        if self.holidays:
            parts.append(f"not on {holidays_text(self.holidays)}")
        if self.cap is not None:
            parts.append(f"{self.cap} calls per 24 h")
        return f"{self.state}: {', '.join(parts) or 'no limits'} ({self.source})"


class Rules:
    """Every state's rule; the hours and cap each state's recipients get."""

    def __init__(self, by_state: dict[str, StateRule]):
        self.by_state = by_state
        self._hours: dict[tuple[CallingHours, str], CallingHours] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.by_state)

    def rule(self, state: str) -> StateRule | None:
        return self.by_state.get(state)

    def hours(self, campaign: CallingHours, state: str) -> CallingHours:
        """The campaign's hours narrowed by the state's rule (the same hours where the state has none)."""
        key = (campaign, state)
        if key not in self._hours:
            rule = self.by_state.get(state)
            self._hours[key] = campaign if rule is None else campaign.narrowed(rule.window, rule.days, rule.holidays)
        return self._hours[key]

    def caps(self) -> np.ndarray:
        """For each state code (STATES), its cap on calls per rolling 24 hours (0: none)."""
        caps = np.zeros(len(STATES), dtype=np.int64)
        for state, rule in self.by_state.items():
            if rule.cap is not None:
                caps[STATE_CODE[state]] = rule.cap
        return caps

    def capped_states(self) -> bool:
        return any(rule.cap is not None for rule in self.by_state.values())


NO_RULES = Rules({})


def rules_off(hours: CallingHours) -> str:
    """The warning every run planning without state rules gives."""
    return (f"state calling rules are off (rules: none): every state gets the campaign's window {hours.window_text} "
            f"{hours.days_text}, no holidays, no cap on calls per 24 hours")


def over_cap(keys: np.ndarray, states: np.ndarray, calls: tuple[np.ndarray, np.ndarray], caps: np.ndarray) -> np.ndarray:
    """Which numbers already have as many calls as their state allows in 24 hours (Rules.caps), given every number's
    recent calls (Ledger.recent_calls: sorted keys, counts): one more call would exceed the cap."""
    called, times = calls
    keys = np.asarray(keys, dtype=np.int64)
    if not len(called) or not len(keys):
        return np.zeros(len(keys), dtype=bool)
    limit = caps[np.asarray(states, dtype=np.int64)]
    at = np.minimum(np.searchsorted(called, keys), len(called) - 1)
    made = np.where(called[at] == keys, times[at], 0)
    return (limit > 0) & (made >= limit)


def load_rules(spec: str | None) -> Rules:
    """The shipped rules (spec None), none ("none"), or the shipped rules with a user's file on top."""
    if spec is not None and spec.strip().casefold() == "none":
        return NO_RULES
    rules = _read(SHIPPED_RULES)
    if spec is None:
        return Rules(rules)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UsageError(f"rules file {spec}: no such file (--rules / rules / CAMPAIGNS_RULES take a TOML file of state rules, or none)")
    return Rules(rules | _read(path))


def _read(path: Path) -> dict[str, StateRule]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"rules file {path}: {exc}") from None
    states = data.get("states")
    if not isinstance(states, dict):
        raise UsageError(f"rules file {path}: no [states.XX] tables (see the README's State calling rules)")
    other = sorted(set(data) - {"states"})
    if other:
        raise UsageError(f"rules file {path}: unknown key {other[0]!r} (a rules file holds [states.XX] tables only)")
    return {code.upper(): _rule(path, code, entry) for code, entry in states.items()}


KEYS = {"window", "days", "holidays", "cap", "source", "name", "note"}


def _rule(path: Path, code: str, entry) -> StateRule:
    state = code.upper()
    where = f"rules file {path}: [states.{code}]"
    if state not in STATE_NAMES:
        raise UsageError(f"{where}: not a US state's two-letter code")
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: must be a table of window, days, holidays, cap and source, not {entry!r}")
    if set(entry) - KEYS:
        raise UsageError(f"{where}: unknown keys {', '.join(sorted(set(entry) - KEYS))} (allowed: {', '.join(sorted(KEYS))})")
    if not isinstance(entry.get("source", ""), str) or not entry.get("source", "").strip():
        raise UsageError(f"{where}: every rule needs its source (the statute or regulation), as source = \"…\"")
    cap = entry.get("cap")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise UsageError(f"{where}: cap must be a whole number of calls ≥ 1")
    try:
        window = parse_window(str(entry["window"])) if "window" in entry else None
        days = parse_days(str(entry["days"])) if "days" in entry else None
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return StateRule(state=state, source=entry["source"].strip(), window=window, days=days,
                     holidays=_holidays(where, state, entry.get("holidays")), cap=cap)  # fmt: skip


def _holidays(where: str, state: str, value) -> str:
    """holidays = "legal" (the state's legal holidays, from the holidays library) and/or a list of dates."""
    if value is None or value is False:
        return ""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item == "legal" or item is True:
            out.append(f"US-{state}")
        elif isinstance(item, date):
            out.append(item.isoformat())
        elif isinstance(item, str):
            try:
                out.append(date.fromisoformat(item).isoformat())
            except ValueError:
                raise UsageError(f"{where}: holidays: {item!r} is neither \"legal\" nor a date (YYYY-MM-DD)") from None
        else:
            raise UsageError(f"{where}: holidays: {item!r} is neither \"legal\" nor a date (YYYY-MM-DD)")
    return ",".join(out)


if __name__ == "__main__":
    print(f"{write_area_codes()} area codes written to {AREA_CODES}")
