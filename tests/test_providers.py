"""The HTTP edge's classification of failures, and the retry policy (narrow tests, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from pipelines.errors import AmbiguousOutcome, ProviderError, ProviderUnreachable, TransientProviderError
from pipelines.errors import NotFoundError
from pipelines.providers.base import HttpEdge, retry_after_seconds
from pipelines.providers.retry import RetryPolicy, with_retries


def edge(handler) -> HttpEdge:
    return HttpEdge("http://provider.test", {"X-API-KEY": "k"}, timeout=1, label="p", transport=httpx.MockTransport(handler))


def raising(exc_type):
    def handler(request):
        raise exc_type("boom", request=request)

    return handler


@pytest.mark.parametrize(
    "handler,mutating,expected",
    [
        (raising(httpx.ConnectError), True, ProviderUnreachable),  # never sent: safe to resend
        (raising(httpx.ReadTimeout), True, AmbiguousOutcome),  # sent, no answer: read back
        (raising(httpx.ReadTimeout), False, TransientProviderError),  # a read may simply be retried
        (raising(httpx.RemoteProtocolError), True, AmbiguousOutcome),  # connection dropped mid-answer
        (lambda r: httpx.Response(500, json={"error": "x"}), True, AmbiguousOutcome),
        (lambda r: httpx.Response(502), False, TransientProviderError),
        (lambda r: httpx.Response(429, headers={"Retry-After": "3"}), True, TransientProviderError),
        (lambda r: httpx.Response(401, json={"error": "Unauthorized"}), True, ProviderError),
        (lambda r: httpx.Response(404, json={"error": "Batch not found"}), False, NotFoundError),
        (lambda r: httpx.Response(400, json={"error": "name and caller_id are required"}), True, ProviderError),
    ],
)
def test_failures_are_classified(handler, mutating, expected):
    with pytest.raises(expected) as info:
        edge(handler).send("POST", "/x", mutating=mutating, body={})
    assert type(info.value) is expected or expected is ProviderError and not isinstance(info.value, TransientProviderError)


def test_retry_after_is_read_and_messages_name_the_refusal():
    with pytest.raises(TransientProviderError) as info:
        edge(lambda r: httpx.Response(503, headers={"Retry-After": "7"}, json={"error": "busy"})).send("POST", "/x", mutating=True)
    assert info.value.retry_after == 7 and "503 busy" in str(info.value)
    with pytest.raises(ProviderError, match="refused the credentials"):
        edge(lambda r: httpx.Response(401, json={"error": "Unauthorized"})).send("GET", "/x", mutating=False)


def test_retry_after_as_http_date():
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < retry_after_seconds(format_datetime(later, usegmt=True)) <= 30
    assert retry_after_seconds("2") == 2 and retry_after_seconds("soon") is None and retry_after_seconds(None) is None


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_full_jitter_backoff_is_bounded():
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=4)
    assert [policy.backoff(n, rng=lambda: 1.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert policy.backoff(3, rng=lambda: 0.0) == 0


def test_retries_honour_retry_after_and_stop_at_the_attempt_bound():
    clock, calls = FakeClock(), []

    def flaky():
        calls.append(1)
        raise TransientProviderError("429", retry_after=2.5)

    with pytest.raises(TransientProviderError):
        with_retries(flaky, RetryPolicy(attempts=4, budget_seconds=100), sleep=clock.sleep, clock=lambda: clock.now)
    assert len(calls) == 4 and clock.sleeps == [2.5, 2.5, 2.5]


def test_retries_stop_at_the_time_budget():
    clock = FakeClock()

    def always():
        raise TransientProviderError("503", retry_after=10)

    with pytest.raises(TransientProviderError):
        with_retries(always, RetryPolicy(attempts=100, budget_seconds=25), sleep=clock.sleep, clock=lambda: clock.now)
    assert clock.sleeps == [10, 10]


def test_ambiguous_outcomes_are_never_retried_blindly():
    calls = []

    def ambiguous():
        calls.append(1)
        raise AmbiguousOutcome("reset")

    with pytest.raises(AmbiguousOutcome):
        with_retries(ambiguous, RetryPolicy(attempts=5), sleep=lambda s: None)
    assert len(calls) == 1


def test_a_batchcall_create_body_built_from_columns_is_the_json_of_its_tasks():
    """The create body is assembled as text from the chunk's columns: it must parse to exactly the tasks the rows
    describe — quotes, backslashes, non-ASCII and empty variables included — and refuse a number that is not E.164."""
    import json

    import pyarrow as pa

    from pipelines.providers.batchcall.client import BatchcallClient
    from schemas.provider import ChunkPeople, Schedule

    variables = [json.dumps({"name": 'O"Brien \\ Ñandú', "city": "Zürich"}), None, "{}", json.dumps({"n": "1"}, ensure_ascii=False)]
    people = ChunkPeople("c", pa.table({"e164": ["+14155550101", "+14155550102", "+442071838750", "+4930123456"],
                                        "name": ["A", None, "C", "D"], "variables": variables}))  # fmt: skip
    sent = []

    def provider(request):
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"status": "success", "message": "ok", "data": {"batch_call_id": "batch_call_1", "status": "draft"}})

    client = BatchcallClient("http://provider.test", "column-test-key", "column-test-secret", from_number="+14157774444", agent_id=None, timeout=1,
                             transport=httpx.MockTransport(provider))  # fmt: skip
    client.create_draft("ck1", people, Schedule(timezone="America/New_York"))
    expected = [{"to_number": p.e164, "dynamic_variables": p.variables} if p.variables else {"to_number": p.e164} for p in people.rows()]
    assert sent[0]["tasks"] == expected and expected[0]["dynamic_variables"]["name"] == 'O"Brien \\ Ñandú'
    assert {k: v for k, v in sent[0].items() if k != "tasks"} == {
        "from_number": "+14157774444", "name": "ck1", "status": "draft", "timezone": "America/New_York"}  # fmt: skip
    damaged = ChunkPeople("c", pa.table({"e164": ['+1415","x":"'], "name": [None], "variables": [None]}))
    with pytest.raises(ProviderError, match="not E.164"):
        client.create_draft("ck2", damaged, Schedule(timezone="UTC"))
    assert len(sent) == 1


def test_the_retry_loop_follows_each_error_class():
    """Resend what was not processed (a refusal, no connection); never what may have happened, nor a plain refusal."""
    for error, expected_calls in ((ProviderUnreachable("down"), 3), (TransientProviderError("503"), 3),
                                  (AmbiguousOutcome("timeout"), 1), (ProviderError("400"), 1)):  # fmt: skip
        clock, calls = FakeClock(), []

        def failing(error=error):
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            with_retries(failing, RetryPolicy(attempts=3, budget_seconds=100), sleep=clock.sleep, clock=lambda: clock.now)
        assert len(calls) == expected_calls, type(error).__name__


def test_every_error_is_in_the_one_tree_with_its_exit_code_and_retry_class():
    """errors.py's drawing is the truth: every CampaignError the package defines lives there, appears in the tree
    under its parent, with the exit code and retry class its attributes say."""
    import importlib
    import pkgutil
    import re

    import pipelines
    from pipelines import errors

    for module in pkgutil.walk_packages(pipelines.__path__, "pipelines."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    seen, todo = [], [errors.CampaignError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo += cls.__subclasses__()
    lines = {re.search(r"(\w+) ·", line).group(1): line for line in errors.__doc__.splitlines() if " ·" in line}
    for cls in seen:
        assert cls.__module__ == "pipelines.errors", f"{cls.__name__} is defined in {cls.__module__}"
        line = lines[cls.__name__]
        assert f"exit {int(cls.exit_code)} " in line, line
        if "retry:" in line:
            assert line.split("retry:")[1].strip() == cls.retry.value, line
        else:
            assert cls.retry is errors.Retry.NEVER, cls
    assert len(lines) == len(seen)


# ---------------------------------------------------------------- dialects declared once, in their folders


def test_no_module_outside_a_dialects_folder_names_a_dialect():
    """Commands, settings, the sandbox and the pipeline ask the registry: a dialect's name appears as a string only in
    its own folder (docstrings and comments aside), so a third dialect is its folder and one registry line."""
    import ast
    from pathlib import Path

    from pipelines.providers.registry import DIALECTS

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for path in [*(root / "pipelines").rglob("*.py"), *(root / "schemas").rglob("*.py")]:
        relative = path.relative_to(root).as_posix()
        if any(relative.startswith(f"pipelines/providers/{name}/") for name in DIALECTS) or relative == "pipelines/providers/registry.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}  # fmt: skip
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if any(name in node.value for name in DIALECTS):
                    offenders.append(f"{relative}:{node.lineno}: {node.value[:60]!r}")
    assert not offenders, "\n".join(offenders)


def test_each_dialects_settings_routes_and_limits_come_from_its_folder():
    from starlette.routing import Route

    from pipelines.providers.registry import DIALECTS, REGISTRY
    from pipelines.sandbox.app import Sandbox, SandboxConfig
    from pipelines.settings import SETTINGS, resolve

    sandbox = Sandbox(SandboxConfig())
    served = {route.path for route in sandbox.app.app.routes if isinstance(route, Route)}
    for name, dialect in DIALECTS.items():
        assert REGISTRY[name].dialect is dialect
        assert set(dialect.settings) <= set(SETTINGS)  # in the one table: flags, environment, campaigns.toml, README
        own = {route.path for route in sandbox.dialects[name].routes}
        assert own and own <= served and all(path.startswith(sandbox.dialects[name].prefix) for path in own)
    env = {"MAGPIPE_API_KEY": "mk-1", "BATCHCALL_BASE_URL": "http://b.test"}
    settings = resolve(env=env)
    assert settings.value("magpipe_api_key").get_secret_value() == "mk-1"
    assert settings.value("batchcall_base_url") == "http://b.test" and settings.value("batchcall_api_key") is None
