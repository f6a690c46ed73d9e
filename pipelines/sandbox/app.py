"""The sandbox's HTTP face: every dialect's routes (each from its folder), fault injection, /_sandbox/ inspection.

What is shared lives here: the body parser every dialect's requests go through, the fault
plan applied to every change, the store and its clock. Each dialect's routes
(pipelines/providers/<dialect>/sandbox.py) are built from the registry and answer in that
dialect's shapes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pydantic_core
from pydantic import BaseModel, ConfigDict, SecretStr
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.providers.registry import DIALECTS
from pipelines.sandbox.faults import FaultInjector, FaultPlan
from pipelines.sandbox.http import BadRequest, clip, json_type
from pipelines.sandbox.simulation import iso
from pipelines.sandbox.state import SandboxStore

DEFAULT_CALLER_IDS = ("+16045551234", "+14157774444")
MAX_DEPTH = 32  # nesting of a request body; deeper is refused before anything reads it
MAX_ADVANCE = 366 * 86400  # how far one POST /_sandbox/clock may move the clock


class SandboxConfig(BaseModel):
    """What the sandbox accepts and how it behaves."""

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr = SecretStr("sandbox-key")
    api_secret: SecretStr = SecretStr("sandbox-secret")
    caller_ids: tuple[str, ...] = DEFAULT_CALLER_IDS
    speed: float = 1.0
    seed: int = 0
    faults: str = ""
    state_path: Path | None = None


class SandboxClock:
    """The sandbox's clock: the machine's, plus however far POST /_sandbox/clock moved it forward."""

    def __init__(self):
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += seconds


class DialectRoutes(Protocol):
    """What a dialect's sandbox routes give the sandbox (pipelines/providers/<dialect>/sandbox.py)."""

    prefix: str  # every path of the dialect starts with it: unknown paths under it get its error shape
    routes: list[Route]

    def error(self, status: int, message: str) -> Response: ...

    def batch_status(self, status: str) -> str: ...  # the store's status of a batch, as the dialect says it

    def recipient_status(self, status: str) -> str: ...  # the store's status of a recipient, as the dialect says it


class Sandbox:
    """Owns the store and the fault injector and builds the ASGI app from every dialect's routes."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.clock = SandboxClock()
        self.store = SandboxStore(config.state_path, speed=config.speed, seed=config.seed, clock=self.clock)
        self.faults = FaultInjector(FaultPlan.parse(config.faults), config.seed)
        self.dialects: dict[str, DialectRoutes] = {name: dialect.sandbox_routes(self) for name, dialect in DIALECTS.items()}
        routes = [
            *(route for dialect in self.dialects.values() for route in dialect.routes),
            Route("/_sandbox/recipients", self.inspect_recipients, methods=["GET"]),
            Route("/_sandbox/stats", self.inspect_stats, methods=["GET"]),
            Route("/_sandbox/faults", self.set_faults, methods=["GET", "POST"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
            Route("/_sandbox/clock", self.move_clock, methods=["GET", "POST"]),
            Route("/_sandbox/health", lambda request: JSONResponse({"ok": True}), methods=["GET"]),
        ]
        self.app = DropConnectionMiddleware(Starlette(routes=routes, exception_handlers={HTTPException: self._http_error}))

    # ------------------------------------------------------------------ shared

    async def body(self, request: Request) -> dict:
        """The request body as a JSON object whose every string is valid Unicode, at most MAX_DEPTH deep.

        Read by pydantic-core's parser, which refuses lone surrogates, NaN, Infinity and integers too long to read;
        what it refuses, or what holds a float too large or nests deeper than MAX_DEPTH, is read again by the
        standard library's parser and checked value by value, so that the answer names the field at fault.
        """
        raw = await request.body()
        if not raw.strip():
            raise BadRequest("request body is empty: send a JSON object")
        try:
            body = pydantic_core.from_json(raw, allow_inf_nan=False)
        except ValueError:
            return _strictly(raw)
        if not isinstance(body, dict):
            raise BadRequest(f"request body must be a JSON object, not {json_type(body)}")
        if not _plain(body):
            _check_json(body)
        return body

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        """Unknown paths and methods, answered in the shape of the dialect the path belongs to (else the first's)."""
        owner = next((d for d in self.dialects.values() if request.url.path.startswith(d.prefix)), None)
        response = (owner or next(iter(self.dialects.values()))).error(exc.status_code, exc.detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def mutate(self, request: Request, commit: Callable[[], Response], error: Callable[[int, str], Response]) -> Response:
        """Apply a change under the fault plan: refuse it, fail after it, answer late, or drop the line."""
        fault = self.faults.draw()
        plan = self.faults.plan
        if fault in ("429", "503"):
            response = error(int(fault), "Too many requests" if fault == "429" else "Service unavailable")
            response.headers["Retry-After"] = f"{plan.retry_after:g}"
            return response
        if fault == "500":
            if self.faults.commit_before_500():
                commit()
            return error(500, "Internal server error")
        response = commit()
        if fault == "slow":
            await asyncio.sleep(plan.slow_seconds)
            response.headers["X-Sandbox-Fault"] = "slow"  # what was injected, for whoever checks (a client timed out sooner)
        elif fault == "reset":
            request.scope["sandbox.drop"]["drop"] = True
        return response

    # ------------------------------------------------------------------ inspection

    async def inspect_recipients(self, request: Request) -> Response:
        rows = []
        for batch in self.store.all_batches():
            view = self.store.view(batch)
            native = self.dialects[batch.dialect]
            for r in view.recipients:
                rows.append(
                    {
                        "dialect": batch.dialect,
                        "batch_id": batch.id,
                        "batch_name": batch.name,
                        "batch_status": native.batch_status(view.status),
                        "phone_number": r.phone_number,
                        "name": r.name,
                        "status": native.recipient_status(r.status),
                        "dials": r.dials,
                        "runs": batch.run,
                    }
                )
        return JSONResponse(rows)

    async def inspect_stats(self, request: Request) -> Response:
        return JSONResponse(self.faults.stats())

    async def set_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await self.body(request)
                self.faults.set_plan(FaultPlan.parse(str(body.get("spec", ""))))
            except (BadRequest, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.stats())

    async def move_clock(self, request: Request) -> Response:
        """GET: the sandbox's clock. POST {"advance_seconds": N}: move it N seconds forward (never back), so that
        simulated calls ring, end and finish without being waited for."""
        if request.method == "POST":
            try:
                body = await self.body(request)
                seconds = body.get("advance_seconds")
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_ADVANCE:
                    raise BadRequest(f"advance_seconds: a number of seconds from 0 to {MAX_ADVANCE}")
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            self.clock.advance(seconds)
        return JSONResponse({"now": iso(self.clock()), "ahead_seconds": self.clock.ahead})

    async def reset(self, request: Request) -> Response:
        self.store.reset()
        return JSONResponse({"ok": True})


class _LongInt:
    """An integer literal too long for Python to read (over 4300 digits): refused where it stands."""


def _integer(text: str) -> int | _LongInt:
    try:
        return int(text)
    except ValueError:
        return _LongInt()


def _strictly(raw: bytes) -> dict:
    """A body pydantic-core's parser refused, read by the standard library's (any UTF, NaN and long integers read
    as values) and checked value by value: the refusal names the field at fault."""
    try:
        body = json.loads(raw, parse_int=_integer)
    except RecursionError:  # deeper than the parser goes: find where, to name the field
        if not raw.lstrip().startswith(b"{"):
            raise BadRequest("request body must be a JSON object") from None
        raise BadRequest(f"{_deep_path(raw)}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadRequest(f"request body is not valid JSON ({clip(str(exc), 120)})") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, not {json_type(body)}")
    _check_json(body)
    return body


def _deep_path(raw: bytes) -> str:
    """Where a body too deep for the JSON parser first goes deeper than MAX_DEPTH ("tasks.0.x")."""
    positions: list = []  # per open container: the current key (object) or index (array)
    last_string = None
    for token in re.finditer(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', raw):
        text = token.group()
        if text.startswith(b'"'):
            last_string = text
        elif text in (b"[", b"{"):
            if len(positions) >= MAX_DEPTH:
                break
            positions.append(0 if text == b"[" else None)
        elif text in (b"]", b"}"):
            if positions:
                positions.pop()
        elif text == b"," and positions and isinstance(positions[-1], int):
            positions[-1] += 1
        elif text == b":" and positions and last_string is not None:
            try:
                key = json.loads(last_string)
            except ValueError:
                key = "?"
            positions[-1] = key if _is_text(key) else "?"  # the message must be writable as UTF-8
    return clip(".".join(str(p) for p in positions if p is not None), 80) or "request body"


def _check_json(body: dict) -> None:
    """Refuse what JSON lets through but a field cannot hold, naming where it is.

    Nesting deeper than MAX_DEPTH; strings that are not Unicode text (a lone surrogate, sent
    as \\ud800, could be stored but never written back out as UTF-8); NaN, Infinity and
    numbers too large for a float (1e999), which are not JSON; integers too long to read.
    Iterative, so a body just inside the JSON parser's own limit cannot exhaust the stack.
    """
    stack: list[tuple[object, tuple, int]] = [(body, (), 1)]

    def where(path: tuple) -> str:
        return clip(".".join(map(str, path)), 80) or "request body"

    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if not _is_text(value):
                raise BadRequest(f"{where(path)}: not valid Unicode text (a lone surrogate)")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise BadRequest(f"{where(path)}: not a JSON number (NaN, Infinity or too large)")
        elif isinstance(value, _LongInt):
            raise BadRequest(f"{where(path)}: an integer with more than 4300 digits")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise BadRequest(f"{where(path)}: nested more than {MAX_DEPTH} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and not _is_text(key):
                    raise BadRequest(f"{where(path)}: a key is not valid Unicode text (a lone surrogate)")
                stack.append((item, (*path, key), depth + 1))


def _plain(body: dict) -> bool:
    """Whether a body pydantic-core read nests at most MAX_DEPTH deep and holds no float too large (1e999 reads
    as infinity); strings and integers it has checked itself. A level at a time, and only the containers of one
    level are picked out for the next: the values of a thousand tasks are gathered and their types taken in C."""
    level, depth = [body], 1
    while True:
        dicts = [value for value in level if type(value) is dict]  # the parser makes exact dicts and lists
        values = list(itertools.chain(itertools.chain.from_iterable(map(dict.values, dicts)),
                                      *(value for value in level if type(value) is list)))  # fmt: skip
        kinds = set(map(type, values))
        if float in kinds and not all(math.isfinite(value) for value in values if type(value) is float):
            return False
        if dict not in kinds and list not in kinds:
            return True
        depth += 1
        if depth > MAX_DEPTH:
            return False
        level = [value for value in values if type(value) is dict or type(value) is list]


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class DropConnectionMiddleware:
    """Lets a handler ask for the connection to be dropped after its change is committed.

    The response is swallowed and the socket closed with SO_LINGER 0 (a TCP reset), so
    the client sees a connection error without an answer: the ambiguous outcome.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        flag = {"drop": False}
        scope["sandbox.drop"] = flag

        async def guarded_send(message):
            if not flag["drop"]:
                await send(message)

        await self.app(scope, receive, guarded_send)
        if flag["drop"]:
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is None:
                raise ConnectionAbortedError("sandbox reset fault")  # the server answers 500 instead
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

