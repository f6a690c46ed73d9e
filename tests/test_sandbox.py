"""The sandbox over real HTTP on loopback: documented shapes, validation rules, simulation, faults."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import httpx
import pytest

from pipelines.sandbox.app import SandboxConfig
from pipelines.sandbox.server import running
from tests.sandbox_helpers import AGENT, BC_HEADERS, BEARER, CALLER, MAGPIPE, bc_create, mp, mp_create, numbers, recipients


@pytest.fixture(scope="module")
def server():
    """One fast sandbox for the module (speed x200: a call lasts well under a second)."""
    with running(SandboxConfig(speed=200, seed=7)) as handle:
        yield handle


@pytest.fixture
def url(server):
    httpx.post(server.url + "/_sandbox/reset")
    return server.url


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


# ------------------------------------------------------------------ documented shapes


def test_magpipe_documented_create_example(url):
    body = {
        "action": "create", "name": "Appointment Reminders", "caller_id": CALLER, "send_now": True,
        "window_start_time": "09:00", "window_end_time": "17:00", "window_days": [1, 2, 3, 4, 5], "reserved_concurrency": 5,
        "recipients": [{"name": "John Doe", "phone_number": "+14155551234"}, {"name": "Jane Smith", "phone_number": "+12125559876"}],
    }  # fmt: skip
    batch = mp(url, body).json()["batch"]
    assert {"id", "user_id", "name", "caller_id", "status", "send_now", "total_recipients", "completed_count", "failed_count", "created_at"} <= batch.keys()
    # what the real server does (shared/reference): status defaults to draft unless given
    assert (batch["status"], batch["total_recipients"], batch["window_days"]) == ("draft", 2, [1, 2, 3, 4, 5])
    assert batch["created_at"].endswith("Z")


def test_magpipe_get_and_list_shapes(url):
    batch = mp_create(url, numbers(3), status="running")
    got = mp(url, {"action": "get", "batch_id": batch["id"]}).json()
    assert set(got) == {"batch", "recipients", "runs"} and got["runs"] is None
    assert {"id", "phone_number", "status"} <= got["recipients"][0].keys()
    listed = mp(url, {"action": "list", "limit": 10}).json()
    assert [b["id"] for b in listed["batches"]] == [batch["id"]]
    assert {"id", "name", "status", "total_recipients", "completed_count", "failed_count", "created_at"} <= listed["batches"][0].keys()


def test_batchcall_documented_create_and_update_examples(url):
    response = bc_create(
        url, ["+12137774445"], name="Q1 Sales Campaign", trigger_timestamp=1735718400000, agent_id=AGENT,
        timezone="America/New_York", status="draft", send_now=False,
    )  # fmt: skip
    envelope = response.json()
    assert response.status_code == 200 and envelope["status"] == "success" and envelope["error"] is None
    assert envelope["message"] == "Batch call created successfully"
    data = envelope["data"]
    documented = {"batch_call_id", "name", "from_number", "scheduled_timestamp", "total_task_count", "total", "sent", "picked_up",
                  "completed", "agent_id", "organization_id", "status", "timezone", "last_sent_timestamp", "tasks_url", "created_timestamp"}  # fmt: skip
    assert documented <= data.keys() and data["batch_call_id"].startswith("batch_call_")
    assert (data["status"], data["total_task_count"], data["timezone"]) == ("draft", 1, "America/New_York")
    update = httpx.put(
        f"{url}/batch-call/{data['batch_call_id']}", headers=BC_HEADERS,
        json={"from_number": "+14157774444", "tasks": [{"to_number": "+12137774445", "dynamic_variables": {"first_name": "John"}, "max_retries": 3}],
              "name": "Updated Campaign Name", "trigger_timestamp": 1735718500000, "agent_id": AGENT, "timezone": "UTC", "status": "scheduled", "send_now": False},
    )  # fmt: skip
    assert update.status_code == 200, update.text
    assert update.json()["message"] == "Batch call updated successfully"
    assert documented <= update.json()["data"].keys()
    assert update.json()["data"]["name"] == "Updated Campaign Name"


def test_batchcall_read_endpoints_are_the_sandboxs_own(url):
    first = bc_create(url, numbers(2), name="alpha").json()["data"]["batch_call_id"]
    second = bc_create(url, numbers(1, 10), name="beta").json()["data"]["batch_call_id"]
    listed = httpx.get(url + "/batch-call", headers=BC_HEADERS).json()["data"]
    assert [b["batch_call_id"] for b in listed] == [second, first]  # newest first
    assert [b["batch_call_id"] for b in httpx.get(url + "/batch-call", params={"name": "alpha"}, headers=BC_HEADERS).json()["data"]] == [first]
    detail = httpx.get(f"{url}/batch-call/{first}", headers=BC_HEADERS).json()["data"]
    assert [t["to_number"] for t in detail["tasks"]] == numbers(2) and {t["status"] for t in detail["tasks"]} == {"pending"}


# ------------------------------------------------------------------ validation rules


@pytest.mark.parametrize(
    "change,message",
    [
        ({"name": None}, "name and caller_id are required"),
        ({"caller_id": None}, "name and caller_id are required"),
        ({"caller_id": "+15005550006"}, "is not an active number"),
        ({"recipients": []}, "recipients must be a non-empty array"),
        ({"recipients": [{"phone_number": p} for p in numbers(501)]}, "Maximum 500 recipients per batch"),
        ({"recipients": [{"phone_number": "415 555"}]}, "phone_number must be an E.164 number"),
        ({"window_start_time": "9am"}, "window_start_time"),
        ({"window_days": [7]}, "window_days"),
    ],
)
def test_magpipe_create_rules(url, change, message):
    body = {"action": "create", "name": "n", "caller_id": CALLER, "recipients": [{"phone_number": "+14155550100"}]} | change
    body = {k: v for k, v in body.items() if v is not None}
    response = mp(url, body)
    assert response.status_code == 400 and message in response.json()["error"]


def test_magpipe_action_rules(url):
    assert mp(url, {"action": "explode"}).json() == {"error": "Unknown action: explode"}
    assert mp(url, {"action": "get", "batch_id": "nope"}).status_code == 404
    assert mp(url, {"action": "start", "batch_id": "nope"}).json() == {"error": "Batch not found"}
    assert mp(url, {"action": "get"}, headers={}).status_code == 401
    assert mp(url, {"action": "list"}, headers={"Authorization": "Bearer wrong"}).json() == {"error": "Unauthorized"}
    bad_json = httpx.post(url + "/functions/v1/batch-calls", content=b"{nope", headers=BEARER)
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
    running_batch = mp_create(url, numbers(2), status="running")
    update = mp(url, {"action": "update", "batch_id": running_batch["id"], "name": "x"})
    assert update.status_code == 400 and "Only draft batches can be updated" in update.json()["error"]
    draft = mp_create(url, numbers(2))
    assert mp(url, {"action": "update", "batch_id": draft["id"], "name": "renamed"}).json()["batch"]["name"] == "renamed"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"from_number": "4157774444"}, "from_number"),
        ({"from_number": "+15005550006"}, "is not a number on this account"),
        ({"tasks": []}, "tasks"),
        ({"tasks": [{"to_number": p} for p in numbers(1001)]}, "tasks"),
        ({"tasks": [{"to_number": "213-777-4445"}]}, "tasks.0.to_number"),
        ({"name": "x" * 256}, "name"),
        ({"agent_id": "7ff47846-c8a0-4304-ae13-88cfc31c1a03"}, "agent_id"),
        ({"trigger_timestamp": 1735718400}, "milliseconds"),
        ({"timezone": "Mars/Olympus"}, "not a valid IANA timezone"),
        ({"status": "running"}, "status"),
    ],
)
def test_batchcall_create_rules(url, change, message):
    response = bc_create(url, ["+12137774445"], **change)
    assert response.status_code == 400, response.text
    envelope = response.json()
    assert envelope["status"] == "error" and envelope["data"] is None and message in envelope["error"]


def test_batchcall_auth_and_not_found(url):
    assert httpx.post(url + "/batch-call", json={}, headers={"X-API-KEY": "sandbox-key"}).status_code == 401
    assert httpx.get(url + "/batch-call/nope", headers={**BC_HEADERS, "X-API-SECRET": "wrong"}).status_code == 401
    assert httpx.get(url + "/batch-call/batch_call_nope", headers=BC_HEADERS).status_code == 404
    assert httpx.put(url + "/batch-call/batch_call_nope", json={"status": "scheduled"}, headers=BC_HEADERS).status_code == 404
    assert httpx.post(url + "/batch-call", content=b"[1,2]", headers=BC_HEADERS).status_code == 400


# ------------------------------------------------------------------ simulation


def test_started_batch_reaches_a_terminal_state_with_consistent_counts(url):
    batch = mp_create(url, numbers(12), status="running")
    final = wait_for(lambda: (b := mp(url, {"action": "get", "batch_id": batch["id"]}).json())["batch"]["status"] == "completed" and b)
    statuses = [r["status"] for r in final["recipients"]]
    assert set(statuses) <= {"completed", "busy", "no_answer", "failed"}
    assert final["batch"]["completed_count"] == statuses.count("completed")
    assert final["batch"]["completed_count"] + final["batch"]["failed_count"] == 12
    assert all(r["attempted_at"] and r["completed_at"] and r["call_record_id"] for r in final["recipients"])


def test_outcomes_are_reproducible_from_the_seed():
    def outcomes():
        with running(SandboxConfig(speed=1000, seed=42)) as sandbox:
            mp_create(sandbox.url, numbers(20), status="running")
            return wait_for(lambda: (rs := recipients(sandbox.url)) and all(r["batch_status"] == "completed" for r in rs) and rs)

    first, second = outcomes(), outcomes()
    assert [r["status"] for r in first] == [r["status"] for r in second]
    assert len({r["status"] for r in first}) > 1  # a mix of outcomes, not all the same


def test_at_most_five_calls_at_once(url):
    batch = mp_create(url, numbers(30), status="running", max_concurrency=9)
    in_call = {"calling", "initiated", "ringing", "in_progress"}
    peak = 0
    for _ in range(40):
        got = mp(url, {"action": "get", "batch_id": batch["id"]}).json()
        peak = max(peak, sum(r["status"] in in_call for r in got["recipients"]))
        if got["batch"]["status"] == "completed":
            break
        time.sleep(0.02)
    assert got["batch"]["max_concurrency"] == 5 and 1 <= peak <= 5


def test_start_on_a_finished_batch_calls_everyone_again(url):
    batch = mp_create(url, numbers(3), status="running")
    wait_for(lambda: mp(url, {"action": "get", "batch_id": batch["id"]}).json()["batch"]["status"] == "completed")
    assert mp(url, {"action": "start", "batch_id": batch["id"]}).json()["success"] is True
    wait_for(lambda: all(r["dials"] == 2 for r in recipients(url)))


def test_cancel_skips_pending_recipients():
    # x5: one dial per 0.24 s, so however slow the machine, only the first few are dialled before the cancel
    with running(SandboxConfig(speed=5, seed=3)) as sandbox:
        batch = mp_create(sandbox.url, numbers(20), status="running")
        cancelled = mp(sandbox.url, {"action": "cancel", "batch_id": batch["id"]}).json()
        assert cancelled == {"success": True, "message": "Batch cancelled"}
        first = mp(sandbox.url, {"action": "get", "batch_id": batch["id"]}).json()
        time.sleep(1.0)  # long enough for four more dials, had the batch gone on
        later = mp(sandbox.url, {"action": "get", "batch_id": batch["id"]}).json()
        dials = [r["dials"] for r in recipients(sandbox.url)]
    skipped = [r["status"] for r in later["recipients"]].count("skipped")
    assert later["batch"]["status"] == "cancelled" and skipped >= 15
    assert skipped == [r["status"] for r in first["recipients"]].count("skipped")  # nothing dialled after the cancel
    assert sum(dials) == 20 - skipped and max(dials) <= 1


def test_list_newest_first_with_limit_offset_and_status(url):
    ids = [mp_create(url, numbers(1, n), name=f"b{n}")["id"] for n in range(4)]
    mp(url, {"action": "start", "batch_id": ids[1]})
    listed = lambda **kw: [b["id"] for b in mp(url, {"action": "list"} | kw).json()["batches"]]  # noqa: E731
    assert listed() == ids[::-1]
    assert listed(limit=2, offset=1) == [ids[2], ids[1]]
    assert listed(status="draft") == [ids[3], ids[2], ids[0]]


def test_window_days_hold_dialling(url):
    today = datetime.now(UTC).isoweekday() % 7
    tomorrow_only = [(today + 2) % 7]
    batch = mp_create(url, numbers(3), status="running", window_days=tomorrow_only)
    time.sleep(0.5)
    got = mp(url, {"action": "get", "batch_id": batch["id"]}).json()
    assert got["batch"]["status"] == "running" and {r["status"] for r in got["recipients"]} == {"pending"}


def test_batchcall_scheduled_then_back_to_draft_then_sent(url):
    later = int((time.time() + 3600) * 1000)
    created = bc_create(url, numbers(2), status="scheduled", trigger_timestamp=later).json()["data"]
    assert created["status"] == "scheduled" and created["scheduled_timestamp"] == later
    back = httpx.put(f"{url}/batch-call/{created['batch_call_id']}", json={"status": "draft"}, headers=BC_HEADERS).json()["data"]
    assert back["status"] == "draft"
    sent = httpx.put(f"{url}/batch-call/{created['batch_call_id']}", json={"status": "sent"}, headers=BC_HEADERS).json()["data"]
    assert sent["status"] in ("in_progress", "completed")
    done = wait_for(lambda: (d := httpx.get(f"{url}/batch-call/{created['batch_call_id']}", headers=BC_HEADERS).json()["data"])["status"] == "completed" and d)
    assert done["completed"] == done["total"] == 2 and done["sent"] == 2
    late = httpx.put(f"{url}/batch-call/{created['batch_call_id']}", json={"status": "draft"}, headers=BC_HEADERS)
    assert late.status_code == 400 and "only draft or scheduled" in late.json()["error"]


def test_state_file_keeps_batches_across_restarts(tmp_path):
    state = tmp_path / "sandbox.sqlite"
    with running(SandboxConfig(speed=500, state_path=state)) as first:
        batch = mp_create(first.url, numbers(2), status="running")
    with running(SandboxConfig(speed=500, state_path=state)) as second:
        got = wait_for(lambda: (g := mp(second.url, {"action": "get", "batch_id": batch["id"]}).json())["batch"]["status"] == "completed" and g)
        assert len(got["recipients"]) == 2


# ------------------------------------------------------------------ faults


def test_each_fault_kind_happens_at_roughly_its_rate():
    spec = "429=0.15,503=0.1,500=0.15,reset=0.15,slow=0.1,slow_seconds=0.05,retry_after=0"
    seen = {"429": 0, "503": 0, "500": 0, "reset": 0, "slow": 0, "ok": 0}
    with running(SandboxConfig(speed=200, faults="")) as sandbox:
        draft = mp_create(sandbox.url, numbers(1))
        httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": spec})  # set at run time
        total = 300
        client = httpx.Client(base_url=sandbox.url, headers=BEARER, timeout=30)  # a slow answer says so: no race with a clock
        for _ in range(total):
            try:
                response = client.post(MAGPIPE, json={"action": "update", "batch_id": draft["id"], "purpose": "x"})
                kind = "slow" if response.headers.get("X-Sandbox-Fault") == "slow" else str(response.status_code)
                seen[kind if response.status_code != 200 or kind == "slow" else "ok"] += 1
                if response.status_code in (429, 503):
                    assert response.headers["Retry-After"] == "0"
            except httpx.TransportError:
                seen["reset"] += 1
        stats = httpx.get(sandbox.url + "/_sandbox/stats").json()
    assert stats["injected"] == {k: seen[k] for k in ("429", "500", "503", "slow", "reset")}
    for kind, rate in {"429": 0.15, "503": 0.1, "500": 0.15, "reset": 0.15, "slow": 0.1}.items():
        assert abs(seen[kind] / total - rate) < 0.07, (kind, seen)


def test_reset_and_slow_really_commit():
    with running(SandboxConfig(speed=200, faults="reset=1")) as sandbox:
        with pytest.raises(httpx.TransportError):
            mp(sandbox.url, {"action": "create", "name": "ghost", "caller_id": CALLER, "recipients": [{"phone_number": "+14155550100"}]})
        httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": "slow=1,slow_seconds=0.5"})
        with pytest.raises(httpx.TimeoutException):
            bc_create_timeout = httpx.post(
                sandbox.url + "/batch-call", headers=BC_HEADERS, timeout=0.1,
                json={"from_number": "+14157774444", "tasks": [{"to_number": "+14155550101"}], "name": "late"},
            )  # fmt: skip
            del bc_create_timeout
        httpx.post(sandbox.url + "/_sandbox/faults", json={"spec": ""})
        names = {(r["dialect"], r["batch_name"]) for r in recipients(sandbox.url)}
    assert names == {("magpipe", "ghost"), ("batchcall", "late")}


def test_bad_fault_spec_is_refused(url):
    response = httpx.post(url + "/_sandbox/faults", json={"spec": "418=0.5"})
    assert response.status_code == 400 and "bad fault" in response.json()["error"]


# ------------------------------------------------------------------ never a 5xx, never half-applied (see also test_sandbox_fuzz.py)


def test_odd_credentials_are_a_401_not_a_500(url):
    """hmac.compare_digest raised on non-ASCII str: header bytes are compared instead."""
    assert mp(url, {"action": "list"}, headers={"Authorization": "Bearer clé".encode("latin-1")}).json() == {"error": "Unauthorized"}
    for headers in ({"X-API-KEY": "ключ".encode(), "X-API-SECRET": b"sandbox-secret"}, {"X-API-KEY": b"sandbox-key", "X-API-SECRET": b"\xff"}):
        response = httpx.get(url + "/batch-call", headers=headers)
        assert response.status_code == 401 and response.json()["status"] == "error"


@pytest.mark.parametrize(
    "content,message",
    [
        (b'{"action": ["create"]}', "action must be a string"),
        (b"[" * 100_000 + b"]" * 100_000, "must be a JSON object"),
        (b'{"action": "list", "limit": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "limit.0.0"),
        (b'{"action": "list", "limit": ' + b"9" * 5000 + b"}", "limit: an integer with more than 4300 digits"),
        (b'{"action": "list", "limit": NaN}', "limit: not a JSON number"),
        (b'{"action": "list", "limit": 1e999}', "limit: not a JSON number"),
        (b'{"action": "list", "limit": "5"}', "limit: Input should be a valid integer"),
        (b'{"action": "list", "offset": 100000000000000000000}', "offset"),
        (b'{"action": "get", "batch_id": "\\ud800"}', "batch_id: not valid Unicode text"),
        (b'{"action": "create", "name": "n", "caller_id": "+16045551234", "recipients": [{"phone_number": "+14155550100"}],'
         b' "status": "scheduled", "scheduled_at": "9999-12-31T23:59:59-23:00"}', "scheduled_at"),
        (b'{"action": "create", "name": "n", "caller_id": "+16045551234", "recipients": [{"phone_number": "+14155550100"}],'
         b' "max_concurrency": 100000000000000000000}', "max_concurrency"),
        (b'{"action": "create", "name": "n", "caller_id": "+16045551234", "recipients": [{"phone_number": "+14155550100"}],'
         b' "send_now": "yes"}', "send_now"),
        (b"", "request body is empty"),
    ],
)  # fmt: skip
def test_magpipe_malformed_bodies_are_a_400_naming_the_field(url, content, message):
    response = httpx.post(url + MAGPIPE, content=content, headers=BEARER)
    assert response.status_code == 400 and message in response.json()["error"], response.text
    assert recipients(url) == []


TASK = b'{"to_number": "+14155550100", "dynamic_variables": {"a": "x", "b": '


@pytest.mark.parametrize(
    "variable,pattern",
    [
        (b"1e999", r"tasks\.0\.dynamic_variables\.b: not a JSON number"),
        (b'{"c": 1.5e308, "d": [2, 1e400]}', r"tasks\.0\.dynamic_variables\.b\.d\.1: not a JSON number"),
        (b"[" * 30 + b"]" * 30, r"tasks\.0\.dynamic_variables\.b(\.0)+\.?…: nested more than 32 levels deep"),  # the path is clipped
        (b'"\xed\xa0\x80"', r"tasks\.0\.dynamic_variables\.b: not valid Unicode text"),  # a surrogate written as UTF-8 bytes
        (b'"\\udfff"', r"tasks\.0\.dynamic_variables\.b: not valid Unicode text"),
        (b"9" * 4301, r"tasks\.0\.dynamic_variables\.b: an integer with more than 4300 digits"),
    ],
)  # fmt: skip
def test_batchcall_variables_json_cannot_hold_are_a_400_naming_them(url, variable, pattern):
    """Values the fast JSON reader lets through (a float too large, nesting below its own limit) or refuses (a
    surrogate, a long integer) are refused alike, each named; the second task is plain, so the body is long."""
    content = b'{"from_number": "' + CALLER.encode() + b'", "tasks": [' + TASK + variable + b"}}, " + TASK + b'"y"}}]}'
    response = httpx.post(url + "/batch-call", content=content, headers=BC_HEADERS)
    assert response.status_code == 400 and re.match(pattern, response.json()["error"]), response.text
    assert recipients(url) == []


def test_batchcall_variables_just_inside_the_limits_are_stored(url):
    content = (b'{"from_number": "' + CALLER.encode() + b'", "tasks": [' + TASK + b"[" * 28 + b"1.5e308" + b"]" * 28
               + b', "e": "\\ud83d\\ude00", "f": ' + b"9" * 4300 + b"}}]}")  # fmt: skip
    response = httpx.post(url + "/batch-call", content=content, headers=BC_HEADERS)
    assert response.status_code == 200, response.text
    detail = httpx.get(f"{url}/batch-call/{response.json()['data']['batch_call_id']}", headers=BC_HEADERS).json()["data"]
    variables = detail["tasks"][0]["dynamic_variables"]
    assert variables["e"] == "😀" and variables["f"] == int("9" * 4300)


def test_batchcall_trigger_beyond_the_calendar_is_refused_before_anything_is_stored(url):
    """10**20 ms once made a 500 after the draft had been created."""
    response = bc_create(url, numbers(1), status="scheduled", trigger_timestamp=10**20)
    assert response.status_code == 400 and "trigger_timestamp" in response.json()["error"]
    assert recipients(url) == [] and httpx.get(url + "/batch-call", headers=BC_HEADERS).json()["data"] == []


def test_a_refused_update_changes_nothing(url, server):
    """Recipients were replaced (magpipe) or a schedule withdrawn (batchcall) before a later check refused the update."""
    draft = mp_create(url, numbers(2))
    before = server.sandbox.store.snapshot()
    refused = mp(url, {"action": "update", "batch_id": draft["id"], "recipients": [{"phone_number": "+14155559999"}], "window_days": [9]})
    assert refused.status_code == 400 and "window_days" in refused.json()["error"]
    refused = mp(url, {"action": "update", "batch_id": draft["id"], "status": "scheduled", "scheduled_at": "9999-12-31T23:59:59-23:00"})
    assert refused.status_code == 400 and "scheduled_at" in refused.json()["error"]
    assert server.sandbox.store.snapshot() == before

    later = int((time.time() + 3600) * 1000)
    scheduled = bc_create(url, numbers(1, 50), status="scheduled", trigger_timestamp=later).json()["data"]["batch_call_id"]
    before = server.sandbox.store.snapshot()
    for body in ({"trigger_timestamp": 10**20}, {"tasks": [{"to_number": "+14155550100", "dynamic_variables": ["x"]}]}, {"status": "sent", "name": {"a": 1}}):
        response = httpx.put(f"{url}/batch-call/{scheduled}", json=body, headers=BC_HEADERS)
        assert response.status_code == 400, response.text
    assert server.sandbox.store.snapshot() == before
    assert httpx.get(f"{url}/batch-call/{scheduled}", headers=BC_HEADERS).json()["data"]["status"] == "scheduled"


@pytest.mark.parametrize("params", [{"limit": "-1"}, {"limit": "9" * 30}, {"offset": "1.5"}, {"limit": "0"}, {"status": "sent"}])
def test_batchcall_list_query_is_checked(url, params):
    response = httpx.get(url + "/batch-call", params=params, headers=BC_HEADERS)
    assert response.status_code == 400 and next(iter(params)) in response.json()["error"]


def test_unknown_paths_and_methods_answer_in_the_dialects_shape(url):
    missing = httpx.get(url + "/batch-call/a/b", headers=BC_HEADERS)
    assert missing.status_code == 404 and missing.json() == {"message": "Not Found", "status": "error", "error": "Not Found", "data": None}
    wrong_method = httpx.delete(url + "/batch-call", headers=BC_HEADERS)
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == "error" and wrong_method.headers["Allow"]
    assert httpx.get(url + MAGPIPE, headers=BEARER).json() == {"error": "Method Not Allowed"}


def test_the_clock_moves_forward_on_request_and_calls_finish_without_a_wait():
    """POST /_sandbox/clock: a slow sandbox's calls end as soon as its clock is moved past them; never backwards,
    never by a non-number."""
    with running(SandboxConfig(speed=1, seed=3)) as sandbox:
        batch = mp_create(sandbox.url, numbers(3))
        assert mp(sandbox.url, {"action": "start", "batch_id": batch["id"]}).json()["success"]
        assert {r["status"] for r in recipients(sandbox.url)} <= {"pending", "calling", "initiated", "ringing", "in_progress"}
        for bad in ({"advance_seconds": -1}, {"advance_seconds": "60"}, {"advance_seconds": True}, {}):
            refused = httpx.post(sandbox.url + "/_sandbox/clock", json=bad, timeout=10)
            assert refused.status_code == 400 and "advance_seconds" in refused.json()["error"]
        assert httpx.get(sandbox.url + "/_sandbox/clock", timeout=10).json()["ahead_seconds"] == 0
        moved = httpx.post(sandbox.url + "/_sandbox/clock", json={"advance_seconds": 2 * 86400}, timeout=10).json()
        assert moved["ahead_seconds"] == 2 * 86400  # past any calling window the batch waits for
        assert {r["status"] for r in recipients(sandbox.url)} <= {"completed", "busy", "no_answer", "failed"}
        status = mp(sandbox.url, {"action": "get", "batch_id": batch["id"]}).json()["batch"]["status"]
        assert status == "completed"


def test_a_batch_read_back_in_full_is_each_dialects_documented_answer(url):
    """The read side builds its answers as plain data (it is what a million-recipient sync waits on): they must still
    validate as the wire models say, strictly, with every recipient in order and its call filled in once over."""
    from pipelines.providers.batchcall import wire as bc
    from pipelines.providers.magpipe import wire as mp_wire
    from tests.sandbox_helpers import advance_clock

    phones = numbers(300, start=7000)
    created = bc_create(url, phones, status="scheduled", trigger_timestamp=int(time.time() * 1000))
    assert created.status_code == 200, created.text
    batch_id = created.json()["data"]["batch_call_id"]
    magpipe_id = mp_create(url, phones[:200], name="read-back", status="running")["id"]
    advance_clock(url, 86400)
    answer = httpx.get(f"{url}/batch-call/{batch_id}", headers=BC_HEADERS, timeout=10)
    detail = bc.BatchDetail.model_validate(bc.Envelope.model_validate(answer.json(), strict=True).data, strict=True)
    assert [t.to_number for t in detail.tasks] == phones
    assert all(t.status in bc.TERMINAL_TASK and t.call_id and t.completed_timestamp for t in detail.tasks)
    got = mp_wire.GetAnswer.model_validate(mp(url, {"action": "get", "batch_id": magpipe_id}).json(), strict=True)
    assert [r.phone_number for r in got.recipients] == phones[:200]
    assert all(r.status in mp_wire.TERMINAL_RECIPIENT and r.call_record_id and r.completed_at for r in got.recipients)
