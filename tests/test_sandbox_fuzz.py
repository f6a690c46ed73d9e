"""Property tests: the sandbox never answers 5xx and never half-applies a refused change.

A sandbox runs in-process on loopback with its clock frozen, so what a client sees is a
function of the stored rows alone and cannot drift between two snapshots. Every endpoint
of both dialects is driven with odd bodies, headers, query and path parameters:

- Hypothesis properties: mostly near-valid bodies (a valid one with one to three fields
  replaced by a wrong-typed, null, huge, nested or odd value, removed, or joined by an
  unknown field), so most cases reach the deep checks; some plain garbage; credentials and
  other headers with odd bytes; a few requests in a row against one prepared batch.
- A sweep: every field of every endpoint, one at a time, set to every wrong type and
  every value at the edge of what the field accepts.

For every request:
- the status is below 500, and a JSON answer has the dialect's own shape;
- a refusal (any non-2xx) leaves the store exactly as it was (every stored row; the
  properties also compare `/_sandbox/recipients` and both dialects' batch lists);
- a 400 says which field, or what about the body, is wrong (the sweep: that very field);
- after a success, every batch still reads back (nothing was stored that cannot be answered).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.sandbox_helpers import AGENT, BC_HEADERS, BEARER, CALLER, MAGPIPE

T0 = datetime(2030, 1, 2, 12, 0, tzinfo=UTC).timestamp()  # a Wednesday noon: the sandbox's frozen "now"
DAY = 86400
OTHER_CALLER = "+14157774444"
MAX_MS = 221_845_392_000_000  # 9000-01-01 in Unix ms: the sandbox's upper bound for times
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example, HealthCheck.filter_too_much],
)

# ------------------------------------------------------------------ the running sandbox


@pytest.fixture(scope="module")
def sandbox():
    with running(SandboxConfig(seed=11)) as handle:  # no faults
        handle.sandbox.store.clock = lambda: T0
        with httpx.Client(base_url=handle.url, timeout=30) as client:
            yield handle, client


def snapshot(handle, client: httpx.Client):
    """Everything a refused request must leave as it was: stored rows and what clients see."""
    views = (
        client.get("/_sandbox/recipients").json(),
        client.post(MAGPIPE, json={"action": "list", "limit": 1000}, headers=BEARER).json(),
        client.get("/batch-call", params={"limit": 1000}, headers=BC_HEADERS).json(),
    )
    return handle.sandbox.store.snapshot(), views


def everything_reads_back(client: httpx.Client) -> None:
    """After a success: the inspection view, both lists and every batch still answer 200."""
    assert client.get("/_sandbox/recipients").status_code == 200
    listed = client.post(MAGPIPE, json={"action": "list", "limit": 1000}, headers=BEARER)
    assert listed.status_code == 200, listed.text
    for batch in listed.json()["batches"]:
        got = client.post(MAGPIPE, json={"action": "get", "batch_id": batch["id"]}, headers=BEARER)
        assert got.status_code == 200, got.text
    listed = client.get("/batch-call", params={"limit": 1000}, headers=BC_HEADERS)
    assert listed.status_code == 200, listed.text
    for data in listed.json()["data"]:
        got = client.get(f"/batch-call/{data['batch_call_id']}", headers=BC_HEADERS)
        assert got.status_code == 200, got.text


def prepare(client: httpx.Client, dialect: str, state: str) -> str:
    """Forget everything, then create one batch in `state`; its id (or an unknown one)."""
    assert client.post("/_sandbox/reset").status_code == 200
    if state == "unknown":
        return "batch_call_0123456789abcdef" if dialect == "batchcall" else "00000000-0000-4000-8000-000000000000"
    if dialect == "magpipe":
        extra = {"scheduled": {"status": "scheduled", "scheduled_at": iso(T0 + DAY)}}.get(state, {"status": state})
        response = client.post(MAGPIPE, json=MP_VALID | {"name": "target"} | extra, headers=BEARER)
        assert response.status_code == 200, response.text
        return response.json()["batch"]["id"]
    extra = {"draft": {}, "scheduled": {"status": "scheduled", "trigger_timestamp": int((T0 + DAY) * 1000)}, "sent": {"status": "sent"}}[state]
    response = client.post("/batch-call", json=BC_VALID | {"name": "target"} | extra, headers=BC_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["data"]["batch_call_id"]


def iso(ts: float, suffix: str = "Z") -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S") + suffix


# ------------------------------------------------------------------ fields, and what a 400 must name

MP_VALID = {"action": "create", "name": "n", "caller_id": CALLER, "recipients": [{"phone_number": "+14155550100"}]}
BC_VALID = {"from_number": OTHER_CALLER, "tasks": [{"to_number": "+14155550100"}], "name": "n"}
MP_WINDOW_FIELDS = (
    "agent_id", "send_now", "scheduled_at", "window_start_time", "window_end_time", "window_days", "reserved_concurrency",
    "max_concurrency", "purpose", "goal", "status",
)  # fmt: skip
MP_CREATE_FIELDS = ("name", "caller_id", "recipients", *MP_WINDOW_FIELDS)
MP_UPDATE_FIELDS = ("batch_id", *MP_CREATE_FIELDS)
MP_LIST_FIELDS = ("action", "status", "limit", "offset")
BC_FIELDS = ("from_number", "tasks", "name", "trigger_timestamp", "agent_id", "timezone", "status", "send_now", "organization_id")
MAGPIPE_FIELDS = (*MP_UPDATE_FIELDS, "action", "phone_number", "contact_id", "limit", "offset")
BATCHCALL_FIELDS = (*BC_FIELDS, "to_number", "dynamic_variables", "max_retries", "limit", "offset")
ABOUT_THE_REQUEST = ("request body", "Unknown action", "Only draft batches", "only draft or scheduled")


def names_what_was_sent(message: str, content: bytes | None) -> bool:
    """Is the message "<path>: <what is wrong>" with the path starting at a field the body carries (known or not)?"""
    prefix, sep, _ = message.partition(": ")
    if not sep or not content:
        return False
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # too deep for the parser: look for the first key as it was sent
        return json.dumps(prefix.split(".")[0]).encode() in content
    clipped = prefix.endswith("…")  # the sandbox clips long paths
    return isinstance(body, dict) and any(
        prefix == key or prefix.startswith(f"{key}.") or (clipped and key.startswith(prefix[:-1])) for key in body
    )


def assert_answer(response: httpx.Response, dialect: str, content: bytes | None = None) -> str:
    """Below 500, in the dialect's own shape; a 400 names a field or says what is wrong. The error message, if any."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code in (301, 302, 307, 308):  # "/batch-call/" redirects to "/batch-call"
        return ""
    answer = response.json()
    if dialect == "magpipe":
        if response.status_code >= 400:
            assert set(answer) == {"error"} and isinstance(answer["error"], str) and answer["error"], answer
        else:
            assert isinstance(answer, dict) and "error" not in answer, answer
        message, fields = answer.get("error", ""), MAGPIPE_FIELDS
    else:
        assert set(answer) == {"message", "status", "error", "data"}, answer
        if response.status_code >= 400:
            assert answer["status"] == "error" and answer["data"] is None and answer["error"] == answer["message"], answer
        else:
            assert answer["status"] == "success" and answer["error"] is None, answer
        message, fields = answer["error"] or "", BATCHCALL_FIELDS
    if response.status_code == 400:
        named = any(re.search(rf"\b{f}\b", message) for f in fields) or names_what_was_sent(message, content)
        assert named or any(p in message for p in ABOUT_THE_REQUEST), message
    return message


class Session:
    """Requests in a row against one prepared sandbox, each checked against the snapshot before it."""

    def __init__(self, sandbox):
        self.handle, self.client = sandbox
        self.before = snapshot(self.handle, self.client)

    def send(self, dialect: str, method: str, path: str, *, content: bytes | None, headers: dict, params=None) -> None:
        note(f"{method} {path} params={params!r} headers={headers!r} body={(content or b'')[:400]!r}")
        response = self.client.request(method, path, content=content, headers=headers, params=params)
        note(f"→ {response.status_code} {response.text[:300]}")
        assert_answer(response, dialect, content)
        if 200 <= response.status_code < 300:
            everything_reads_back(self.client)
            self.before = snapshot(self.handle, self.client)
        else:
            assert snapshot(self.handle, self.client) == self.before, "a refused request changed the store"


# ------------------------------------------------------------------ values

DEEP = {"@@DEEP33@@": 33, "@@DEEP20@@": 20, "@@DEEP3000@@": 3000, "@@DEEP100000@@": 100_000}  # placeholders for nesting


def encode(value) -> bytes:
    """JSON text (ASCII: lone surrogates travel as \\ud800 escapes; NaN as NaN), deep nesting spliced in."""
    text = json.dumps(value, allow_nan=True)
    for marker, depth in DEEP.items():
        text = text.replace(json.dumps(marker), "[" * depth + "]" * depth)
    return text.encode()


# Every field gets these: the wrong JSON types, null, empty, huge, nested, not Unicode text.
WRONG_TYPES = [
    None, {}, [], {"a": "b"}, ["x"], [None], "", "x", "\ud800", "\x00", 0, -1, 2**31, 10**20, -(10**20), 10**300, 1.5,
    True, False, float("nan"), float("inf"), "@@DEEP33@@", "@@DEEP3000@@", "@@DEEP100000@@",
]  # fmt: skip
# Values at the edges of what each field accepts: they get past the type check and reach the deeper ones.
EDGE_VALUES = {
    "action": ["explode", "CREATE", "list ", "é✓"],
    "batch_id": ["00000000-0000-4000-8000-000000000000", "batch_call_nope", "x" * 300],
    "trigger_timestamp": [2**63, 2**64, MAX_MS, MAX_MS - 1, 10**11 - 1, 10**11, 1735718400, -(2**63)],
    "scheduled_at": ["9999-12-31T23:59:59-23:00", "9999-12-31T23:59:59Z", "9000-01-01T00:00:00Z", "8999-12-31T23:59:59+00:00",
                     "0001-01-01T00:00:00+14:00", "0001-01-01", "2030-02-30T00:00:00Z", "2030-01-01T25:00:00Z", "tomorrow",
                     "2030-01-03T00:00:00+24:00", "2020-01-01T00:00:00Z", "2030-01-03"],
    "window_days": [[7], [-1], [10**20], [0, 0, 0], [True], [0.0], ["1"], list(range(7)) * 3, [None]],
    "window_start_time": ["24:00", "9:00", "09:60", "0900", "09:00:00", "23:59"],
    "window_end_time": ["24:00", "00:00", "9am", "23:59"],
    "max_concurrency": [2**31 - 1, -(2**31), -(2**31) - 1, 2**63],
    "reserved_concurrency": [2**31 - 1, -(2**31) - 1, 2**63],
    "limit": [1000, 1001, 2**63],
    "offset": [2**31 - 1, 2**63],
    "timezone": ["Mars/Olympus", "utc", "America/New_York", "Etc/GMT+5", "../../etc/passwd"],
    "from_number": [CALLER, "+15005550006", "14157774444", "+0123", "+1" + "5" * 20],
    "caller_id": [OTHER_CALLER, "+15005550006", "4157774444"],
    "name": ["x" * 255, "x" * 256, "é✓ 漢字"],
    "agent_id": [AGENT, AGENT.upper(), "agent_", AGENT[6:]],
    "status": ["draft", "scheduled", "sent", "running", "in_progress", "completed", "cancelled", "paused", "recurring"],
    "send_now": ["true", 1],
    "tasks": [[{"to_number": "+14155550100"}] * 1001, [{}], ["+14155550100"], [{"to_number": None}], [{"to_number": "213-777-4445"}],
              [{"to_number": "+14155550100", "dynamic_variables": []}], [{"to_number": "+14155550100", "dynamic_variables": {"a": "@@DEEP33@@"}}],
              [{"to_number": "+14155550100", "dynamic_variables": {"a": {"b": [1, {"c": "@@DEEP20@@"}]}, "\ud800": 1}}],
              [{"to_number": "+14155550100", "dynamic_variables": {"a": None, "b": 10**300}}],
              [{"to_number": "+14155550100", "max_retries": 11}], [{"to_number": "+14155550100", "max_retries": 2**63}]],
    "recipients": [[{"phone_number": "+14155550100"}] * 501, [{}], ["+14155550100"], [{"phone_number": None}], [{"phone_number": "415 555"}],
                   [{"phone_number": "+14155550100", "name": {"a": 1}}], [{"phone_number": "+14155550100", "contact_id": 5}],
                   [{"phone_number": "+14155550100", "name": "\ud800"}]],
}  # fmt: skip
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), st.text(max_size=12)
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
ALL_ODD = WRONG_TYPES + ["é✓ 漢字", "null", "5", "+14155550100", "agent_x", "UTC", "draft", "99:99"] + [v for vs in EDGE_VALUES.values() for v in vs]
odd_values = st.one_of(st.sampled_from(ALL_ODD), json_values).map(copy.deepcopy)  # copies: bodies are changed in place


def odd_for(key) -> st.SearchStrategy:
    """An odd value for the field named `key`: often one at its edges, otherwise anything."""
    if key in EDGE_VALUES:
        edges = st.sampled_from(EDGE_VALUES[key]).map(copy.deepcopy)
        return st.one_of(edges, edges, odd_values)
    return odd_values


def weighted(*pairs) -> st.SearchStrategy:
    """sampled_from with weights ((value, weight), …): Hypothesis favours the ends of an integer range."""
    return st.sampled_from([value for value, weight in pairs for _ in range(weight)])


# ------------------------------------------------------------------ valid bodies

phones = st.integers(0, 9999).map(lambda n: f"+1415555{n:04d}")
short_text = st.text(max_size=20)  # any Unicode but surrogates


@st.composite
def optional(draw, fields: dict) -> dict:
    """Some of the given optional fields, each with a valid value."""
    return {key: draw(strategy) for key, strategy in fields.items() if draw(st.booleans())}


scheduled_ats = st.sampled_from([iso(T0 + DAY), iso(T0 + 3 * DAY, "+02:00"), iso(T0 + DAY, ""), "2030-01-05", iso(T0 - 365 * DAY), "8999-12-31T00:00:00Z"])
mp_statuses = st.sampled_from(["draft", "scheduled", "running", "paused", "completed", "cancelled", "failed", "recurring"])
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
mp_window = {
    "agent_id": short_text,
    "send_now": st.booleans(),
    "scheduled_at": scheduled_ats,
    "window_start_time": hhmm,
    "window_end_time": hhmm,
    "window_days": st.lists(st.integers(0, 6), min_size=1, max_size=7),
    "reserved_concurrency": st.integers(-5, 50),
    "max_concurrency": st.integers(-5, 50),
    "purpose": short_text,
    "goal": short_text,
    "status": mp_statuses,
}
mp_recipient = st.builds(lambda phone, extra: {"phone_number": phone} | extra, phones, optional({"name": short_text, "contact_id": short_text}))
mp_recipients = st.lists(mp_recipient, min_size=1, max_size=3)
mp_create = st.builds(
    lambda name, caller, recipients, extra: {"action": "create", "name": name, "caller_id": caller, "recipients": recipients} | extra,
    st.text(min_size=1, max_size=20),
    st.sampled_from([CALLER, OTHER_CALLER]),
    mp_recipients,
    optional(mp_window),
)
mp_update_fields = optional(mp_window | {"name": st.text(min_size=1, max_size=20), "caller_id": st.just(CALLER), "recipients": mp_recipients})
mp_list = st.builds(lambda extra: {"action": "list"} | extra, optional({"limit": st.integers(1, 1000), "offset": st.integers(0, 5), "status": mp_statuses}))

bc_task = st.builds(
    lambda phone, extra: {"to_number": phone} | extra,
    phones,
    optional({"dynamic_variables": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3), "max_retries": st.integers(0, 10)}),
)
bc_fields = {
    "name": st.text(max_size=30),
    "trigger_timestamp": st.sampled_from([int((T0 + DAY) * 1000), int((T0 - DAY) * 1000), 10**11, MAX_MS - 1]),
    "agent_id": st.just(AGENT),
    "timezone": st.sampled_from(["UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata"]),
    "status": st.sampled_from(["draft", "scheduled", "sent"]),
    "send_now": st.booleans(),
    "organization_id": short_text,
}
bc_create = st.builds(
    lambda sender, tasks, extra: {"from_number": sender, "tasks": tasks} | extra,
    st.sampled_from([CALLER, OTHER_CALLER]),
    st.lists(bc_task, min_size=1, max_size=3),
    optional(bc_fields),
)
bc_update = optional(bc_fields | {"from_number": st.sampled_from([CALLER, OTHER_CALLER]), "tasks": st.lists(bc_task, min_size=1, max_size=3)})


# ------------------------------------------------------------------ near-valid bodies


def paths(value, prefix=()) -> list[tuple]:
    """Every place inside a body a value sits at (dict keys and list items), to depth 4."""
    found = []
    if len(prefix) < 4 and isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            found.append((*prefix, key))
            found += paths(item, (*prefix, key))
    return found


def containers(value, prefix=()) -> list[tuple]:
    """Every object inside a body (where an unknown field can be added)."""
    found = [prefix] if isinstance(value, dict) else []
    if isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            found += containers(item, (*prefix, key))
    return found


def at(body, path: tuple):
    for key in path:
        body = body[key]
    return body


@st.composite
def near_valid(draw, valid, fields: tuple[str, ...]):
    """A valid body, then 0–3 changes: a field replaced (or added) with an odd value, removed, or an unknown field added.

    `action` is left alone (the dispatch on it has its own cases): changing it would mostly
    test "Unknown action" again instead of the checks behind each action.
    """
    body = copy.deepcopy(draw(valid))
    for _ in range(draw(weighted((0, 1), (1, 4), (2, 2), (3, 1)))):
        kind = draw(weighted(("field", 3), ("replace", 3), ("remove", 1), ("unknown", 1)))
        if kind == "field":  # a top-level field of this endpoint, present or not
            field = draw(st.sampled_from(fields))
            body[field] = draw(odd_for(field))
        elif kind == "unknown":
            target = at(body, draw(st.sampled_from(containers(body))))
            target[draw(st.sampled_from(["extra", "__proto__", "", "ünknown", "id"]))] = draw(odd_values)
        elif candidates := [p for p in paths(body) if p != ("action",)]:
            path = draw(st.sampled_from(candidates))
            parent = at(body, path[:-1])
            if kind == "remove" and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(odd_for(path[-1]))
    return body


GARBAGE = {  # by name, so that a failure report shows the name rather than 200 kB
    "empty": b"", "blank": b"  ", "null": b"null", "array": b"[]", "string": b'"create"', "1e999": b"1e999", "NaN": b"NaN",
    "cut short": b'{"action":', "python dict": b"{'action': 'list'}", "utf-16 bom": b"\xff\xfe{\x00}\x00",
    "utf-16": '{"action":"list"}'.encode("utf-16"), "deep array": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "long integer": b'{"limit":' + b"9" * 5000 + b"}",
    "surrogate key": b'{"\\ud800":1}', "duplicate keys": b'{"action":"list","action":"get"}',
}  # fmt: skip


def body_for(draw, valid, fields) -> bytes:
    """Near-valid five times in six, garbage otherwise."""
    if draw(weighted(("near", 5), ("garbage", 1))) == "garbage":
        kind = draw(st.sampled_from(["bytes", "named", "json"]))
        if kind == "named":
            return GARBAGE[draw(st.sampled_from(sorted(GARBAGE)), label="garbage")]
        return draw(st.binary(min_size=1, max_size=40) if kind == "bytes" else json_values.map(encode))
    return encode(draw(near_valid(valid, fields)))


# ------------------------------------------------------------------ headers

header_bytes = st.lists(st.integers(0x21, 0xFF).filter(lambda b: b != 0x7F), max_size=24).map(bytes)  # what h11 lets through
content_types = st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", "multipart/form-data; boundary=x", "*/*"])


@st.composite
def extra_headers(draw) -> dict:
    headers = {}
    if (content_type := draw(content_types)) is not None:
        headers["Content-Type"] = content_type
    if draw(weighted((False, 4), (True, 1))):
        headers[draw(st.sampled_from(["Content-Type", "X-Odd", "Accept", "Host"]))] = draw(header_bytes)
    return headers


@st.composite
def magpipe_auth(draw) -> dict:
    """The right key most of the time (so bodies get read); otherwise missing, wrong or odd bytes."""
    if draw(weighted((True, 7), (False, 1))):
        return dict(BEARER)
    odd = draw(st.sampled_from([None, b"", b"Bearer", b"Bearer sandbox-key\xe9", "Bearer clé".encode("latin-1"), "Bearer ключ".encode(), b"bearer sandbox-key"]))
    return {} if odd is None else {"Authorization": odd}


@st.composite
def batchcall_auth(draw) -> dict:
    if draw(weighted((True, 7), (False, 1))):
        return dict(BC_HEADERS)
    key = draw(st.sampled_from([b"sandbox-key", None, b"", b"sandbox-key\xff", "clé".encode("latin-1"), "ключ".encode()]))
    secret = draw(st.one_of(st.sampled_from([b"sandbox-secret", None, b"", "sécret".encode("latin-1")]), header_bytes))
    return {name: value for name, value in (("X-API-KEY", key), ("X-API-SECRET", secret)) if value is not None}


# ------------------------------------------------------------------ the properties

REQUESTS = weighted((1, 1), (2, 1), (3, 1), (4, 1))  # in a row per prepared sandbox: a refusal leaves the snapshot for the next


@SETTINGS
@given(st.data())
def test_magpipe_every_action(sandbox, data):
    draw = data.draw
    state = draw(weighted(("draft", 3), ("running", 1), ("scheduled", 1), ("cancelled", 1), ("completed", 1), ("unknown", 1)), label="state")
    batch_id = prepare(sandbox[1], "magpipe", state)
    session = Session(sandbox)
    for _ in range(draw(REQUESTS)):
        action = draw(weighted(("create", 3), ("update", 3), ("list", 1), ("get", 1), ("start", 1), ("cancel", 1), ("unknown", 1)), label="action")
        valid, fields = {
            "create": (mp_create, MP_CREATE_FIELDS),
            "update": (mp_update_fields.map(lambda body: {"action": "update", "batch_id": batch_id} | body), MP_UPDATE_FIELDS),
            "list": (mp_list, MP_LIST_FIELDS),
            "unknown": (st.builds(lambda action: {"action": action}, st.one_of(st.sampled_from(EDGE_VALUES["action"]), short_text, odd_values)), ("batch_id",)),
        }.get(action, (st.just({"action": action, "batch_id": batch_id}), ("batch_id",)))
        content = body_for(draw, valid, fields)
        headers = draw(magpipe_auth(), label="auth") | draw(extra_headers(), label="headers")
        session.send("magpipe", "POST", MAGPIPE, content=content, headers=headers)


@SETTINGS
@given(st.data())
def test_batchcall_create_and_update(sandbox, data):
    draw = data.draw
    state = draw(weighted(("draft", 2), ("scheduled", 2), ("sent", 1), ("unknown", 1)), label="state")
    batch_id = prepare(sandbox[1], "batchcall", state)
    session = Session(sandbox)
    for _ in range(draw(REQUESTS)):
        if draw(weighted(("POST", 1), ("PUT", 2)), label="method") == "POST":
            method, path, valid = "POST", "/batch-call", bc_create
        else:
            ident = draw(st.one_of(short_text, st.just("")), label="id") if draw(weighted((False, 7), (True, 1))) else batch_id
            method, path, valid = "PUT", f"/batch-call/{quote(ident, safe='')}", bc_update
        content = body_for(draw, valid, BC_FIELDS)
        headers = draw(batchcall_auth(), label="auth") | draw(extra_headers(), label="headers")
        session.send("batchcall", method, path, content=content, headers=headers)


odd_query = st.one_of(
    st.integers(-5, 2000).map(str),
    st.sampled_from(["", " 5", "+5", "1_0", "1.5", "٣", "9" * 30, "9" * 5000, "-0", "0x10", "2147483647", "2147483648", "draft", "running"]),
    short_text,
)
query_params = st.fixed_dictionaries(
    {},
    optional={
        "limit": st.one_of(st.integers(1, 1000).map(str), odd_query),
        "offset": st.one_of(st.integers(0, 3).map(str), odd_query),
        "name": st.one_of(st.just("target"), short_text),
        "status": st.one_of(st.sampled_from(["draft", "scheduled", "in_progress", "completed"]), odd_query),
        "other": odd_query,
    },
)


@SETTINGS
@given(st.data())
def test_batchcall_reads(sandbox, data):
    draw = data.draw
    state = draw(st.sampled_from(["draft", "scheduled", "sent", "unknown"]), label="state")
    batch_id = prepare(sandbox[1], "batchcall", state)
    session = Session(sandbox)
    for _ in range(draw(REQUESTS)):
        headers = draw(batchcall_auth(), label="auth") | draw(extra_headers(), label="headers")
        if draw(st.booleans()):
            session.send("batchcall", "GET", "/batch-call", content=None, headers=headers, params=draw(query_params, label="params"))
        else:
            ident = draw(weighted((batch_id, 2), ("%", 1), ("batch_call_", 1), ("a/b", 1), ("x?y#z", 1), ("", 1), (None, 2)), label="id")
            ident = draw(short_text, label="text id") if ident is None else ident
            session.send("batchcall", "GET", f"/batch-call/{quote(ident, safe='')}", content=None, headers=headers)


# ------------------------------------------------------------------ the sweep: every field, every odd value

SWEEPS = {  # endpoint: dialect, state of the prepared batch, method, path, valid body, fields to spoil
    "magpipe create": ("magpipe", "draft", "POST", lambda _: MAGPIPE, lambda _: MP_VALID, MP_CREATE_FIELDS),
    "magpipe update": ("magpipe", "draft", "POST", lambda _: MAGPIPE, lambda i: {"action": "update", "batch_id": i, "name": "u"}, MP_UPDATE_FIELDS),
    "magpipe list": ("magpipe", "draft", "POST", lambda _: MAGPIPE, lambda _: {"action": "list"}, MP_LIST_FIELDS),
    "magpipe get": ("magpipe", "draft", "POST", lambda _: MAGPIPE, lambda i: {"action": "get", "batch_id": i}, ("batch_id",)),
    "magpipe start": ("magpipe", "draft", "POST", lambda _: MAGPIPE, lambda i: {"action": "start", "batch_id": i}, ("batch_id",)),
    "magpipe cancel": ("magpipe", "running", "POST", lambda _: MAGPIPE, lambda i: {"action": "cancel", "batch_id": i}, ("batch_id",)),
    "batchcall create": ("batchcall", "draft", "POST", lambda _: "/batch-call", lambda _: BC_VALID, BC_FIELDS),
    "batchcall update": ("batchcall", "scheduled", "PUT", lambda i: f"/batch-call/{i}", lambda _: {"name": "u"}, BC_FIELDS),
}


@pytest.mark.parametrize("endpoint", SWEEPS)
def test_every_field_with_every_odd_value(sandbox, endpoint):
    """One field at a time set to each wrong type and edge value: never 5xx, a 400 names that field, a refusal changes nothing.

    The batch is prepared again only after a success (a refusal changed nothing, by the
    test). Stored rows are compared: with the clock frozen, every view follows from them.
    """
    handle, client = sandbox
    dialect, state, method, path, valid, fields = SWEEPS[endpoint]
    failures, batch_id = [], None
    for field in fields:
        for value in WRONG_TYPES + EDGE_VALUES.get(field, []):
            if batch_id is None:
                batch_id = prepare(client, dialect, state)
            before = handle.sandbox.store.snapshot()
            body = valid(batch_id) | {field: copy.deepcopy(value)}
            headers = BEARER if dialect == "magpipe" else BC_HEADERS
            try:
                response = client.request(method, path(batch_id), content=encode(body), headers=headers)
            except httpx.TransportError as exc:  # the server dropped the connection: it crashed
                failures.append(f"{field}={str(value)[:60]!r}: no answer ({exc!r})")
                batch_id = None
                continue
            try:
                message = assert_answer(response, dialect, encode(body))
                if 200 <= response.status_code < 300:
                    everything_reads_back(client)
                    batch_id = None
                else:
                    assert handle.sandbox.store.snapshot() == before, "a refused request changed the store"
                if response.status_code == 400:
                    assert field in message, f"the message does not name {field}"
            except AssertionError as exc:
                failures.append(f"{field}={str(value)[:60]!r}: {response.status_code} {response.text[:200]} — {str(exc)[:200]}")
    assert not failures, "\n".join(failures)
