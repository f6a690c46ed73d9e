"""The sandbox's HTTP face: both dialects, fault injection, and /_sandbox/ inspection."""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import re
import socket
import struct
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.sandbox.faults import FaultInjector, FaultPlan
from pipelines.sandbox.simulation import BATCHCALL_TASK_STATUS, iso, millis
from pipelines.sandbox.state import BatchView, Recipient, SandboxStore
from schemas import batchcall as bc
from schemas import magpipe as mp

DEFAULT_CALLER_IDS = ("+16045551234", "+14157774444")
TIMEZONES = frozenset(available_timezones()) | {"UTC"}
MAX_DEPTH = 32  # nesting of a request body; deeper is refused before anything reads it
# Times a request may ask for: from 1973 (10**11 ms, below which a batchcall timestamp looks
# like seconds) to before 9000-01-01, which leaves the simulation centuries of room before
# Python's datetime ends (year 9999) however slow the calls or narrow the window.
MIN_TRIGGER_MS = 10**11
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
MAX_TRIGGER_MS = int(MAX_TIME * 1000)
LIST_LIMIT = 1000
MAX_OFFSET = 2**31 - 1
MAX_ADVANCE = 366 * 86400  # how far one POST /_sandbox/clock may move the clock
BATCHCALL_STATUSES = ("draft", "scheduled", "in_progress", "completed")
MAGPIPE_ACTIONS = ("create", "list", "get", "update", "start", "cancel")


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


class BadRequest(Exception):
    """Raised inside a handler: becomes a 400 in the dialect's error shape."""


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


class SandboxClock:
    """The sandbox's clock: the machine's, plus however far POST /_sandbox/clock moved it forward."""

    def __init__(self):
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += seconds


class Sandbox:
    """Owns the store and the fault injector and builds the ASGI app."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.clock = SandboxClock()
        self.store = SandboxStore(config.state_path, speed=config.speed, seed=config.seed, clock=self.clock)
        self.faults = FaultInjector(FaultPlan.parse(config.faults), config.seed)
        routes = [
            Route("/functions/v1/batch-calls", self.magpipe, methods=["POST"]),
            Route("/batch-call", self.batchcall_create, methods=["POST"]),
            Route("/batch-call", self.batchcall_list, methods=["GET"]),
            Route("/batch-call/{batch_id}", self.batchcall_update, methods=["PUT"]),
            Route("/batch-call/{batch_id}", self.batchcall_get, methods=["GET"]),
            Route("/_sandbox/recipients", self.inspect_recipients, methods=["GET"]),
            Route("/_sandbox/stats", self.inspect_stats, methods=["GET"]),
            Route("/_sandbox/faults", self.set_faults, methods=["GET", "POST"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
            Route("/_sandbox/clock", self.move_clock, methods=["GET", "POST"]),
            Route("/_sandbox/health", lambda request: JSONResponse({"ok": True}), methods=["GET"]),
        ]
        self.app = DropConnectionMiddleware(Starlette(routes=routes, exception_handlers={HTTPException: self._http_error}))

    # ------------------------------------------------------------------ shared

    async def _body(self, request: Request) -> dict:
        """The request body as a JSON object whose every string is valid Unicode, at most MAX_DEPTH deep."""
        raw = await request.body()
        if not raw.strip():
            raise BadRequest("request body is empty: send a JSON object")
        numbers = _Numbers()
        try:
            body = json.loads(raw, parse_int=numbers.integer, parse_float=numbers.real, parse_constant=numbers.constant)
        except RecursionError:  # deeper than the parser goes: find where, to name the field
            if not raw.lstrip().startswith(b"{"):
                raise BadRequest("request body must be a JSON object") from None
            raise BadRequest(f"{_deep_path(raw)}: nested more than {MAX_DEPTH} levels deep") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise BadRequest(f"request body is not valid JSON ({_clip(str(exc), 120)})") from None
        if not isinstance(body, dict):
            raise BadRequest(f"request body must be a JSON object, not {_json_type(body)}")
        lone_surrogate_possible = b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None
        _check_json(body, containers_only=b"\x00" not in raw and not lone_surrogate_possible and not numbers.suspect)
        return body

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        """Unknown paths and methods, answered in the shape of the dialect the path belongs to."""
        if request.url.path.startswith("/batch-call"):
            response = self._bc_error(exc.status_code, exc.detail)
        else:
            response = self._mp_error(exc.status_code, exc.detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def _mutate(self, request: Request, commit: Callable[[], Response], error: Callable[[int, str], Response]) -> Response:
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
        elif fault == "reset":
            request.scope["sandbox.drop"]["drop"] = True
        return response

    # ------------------------------------------------------------------ magpipe

    def _mp_error(self, status: int, message: str) -> JSONResponse:
        return JSONResponse(mp.ErrorAnswer(error=message).model_dump(), status_code=status)

    async def magpipe(self, request: Request) -> Response:
        expected = f"Bearer {self.config.api_key.get_secret_value()}"
        if not _same_secret(request, "authorization", expected):
            return self._mp_error(401, "Unauthorized")
        try:
            body = await self._body(request)
            action = body.get("action")
            if action is None:
                raise BadRequest(f"action is required (one of {', '.join(MAGPIPE_ACTIONS)})")
            if not isinstance(action, str):
                raise BadRequest(f"action must be a string, not {_json_type(action)}")
            handlers = {
                "create": self._mp_create,
                "update": self._mp_update,
                "start": self._mp_start,
                "cancel": self._mp_cancel,
            }
            if action in handlers:
                return await self._mutate(request, lambda: self._guard(handlers[action], body, self._mp_error), self._mp_error)
            if action == "list":
                return self._mp_list(body)
            if action == "get":
                return self._mp_get(body)
            return self._mp_error(400, f"Unknown action: {_clip(action, 100)}")
        except BadRequest as exc:
            return self._mp_error(400, str(exc))
        except NotFound as exc:
            return self._mp_error(404, str(exc))

    @staticmethod
    def _guard(handler, body, error) -> Response:
        try:
            return handler(body)
        except BadRequest as exc:
            return error(400, str(exc))
        except NotFound as exc:
            return error(404, str(exc))

    def _mp_validate_recipients(self, recipients) -> None:
        if not isinstance(recipients, list) or not recipients:
            raise BadRequest("recipients must be a non-empty array")
        if len(recipients) > mp.MAX_RECIPIENTS:
            raise BadRequest(f"Maximum {mp.MAX_RECIPIENTS} recipients per batch")
        for index, recipient in enumerate(recipients):
            phone = recipient.get("phone_number") if isinstance(recipient, dict) else None
            if not isinstance(phone, str) or not _is_e164(phone):
                raise BadRequest(f"recipients[{index}].phone_number must be an E.164 number")

    # Every handler below first reads and checks the whole request (raising BadRequest or
    # NotFound before anything is written), then makes its change in one store transaction:
    # a refused request leaves the store exactly as it was.

    def _mp_check(self, request: mp.CreateRequest | mp.UpdateRequest) -> None:
        """What create and update share beyond the field types."""
        if request.caller_id is not None and request.caller_id not in self.config.caller_ids:
            raise BadRequest(f"caller_id {_clip(request.caller_id, 40)} is not an active number on this account")
        if request.window_days is not None and (not request.window_days or any(d not in range(7) for d in request.window_days)):
            raise BadRequest("window_days must list days 0 (Sunday) to 6 (Saturday)")
        if request.scheduled_at:
            _parse_iso(request.scheduled_at, "scheduled_at")

    def _mp_plan(self, status: str | None, send_now: bool | None, scheduled_at: str | None) -> tuple[float, str] | None:
        """When a run starts and the status it starts in, or None when this status dials nobody."""
        now = self.store.clock()
        if status == "running" or (status == "scheduled" and send_now):
            return now, "running"
        if status == "scheduled" and scheduled_at:
            return max(now, _parse_iso(scheduled_at, "scheduled_at")), "scheduled"
        return None

    def _mp_create(self, body: dict) -> Response:
        if body.get("name") in (None, "") or body.get("caller_id") in (None, ""):
            raise BadRequest("name and caller_id are required")
        self._mp_validate_recipients(body.get("recipients"))
        request = _parse(mp.CreateRequest, body)
        self._mp_check(request)
        plan = self._mp_plan(request.status, request.send_now, request.scheduled_at)
        fields = request.model_dump(exclude={"action", "name", "recipients", "status"}, exclude_none=True)
        recipients = [(r.phone_number, r.name, r.contact_id, None) for r in request.recipients]
        with self.store.transaction():
            batch = self.store.create("magpipe", request.name, request.status or "draft", fields, recipients)
            if plan:
                self.store.start_run(batch.id, at=plan[0], status=plan[1])
        return JSONResponse(mp.BatchAnswer(batch=self._mp_batch(batch.id)).model_dump(exclude_none=True))

    def _mp_update(self, body: dict) -> Response:
        request = _parse(mp.UpdateRequest, body)
        if request.recipients is not None:
            self._mp_validate_recipients(body.get("recipients"))
        if request.name == "":
            raise BadRequest("name must not be empty")
        self._mp_check(request)
        view = self._mp_view(request.batch_id)
        if view.status not in ("draft", "recurring"):
            raise BadRequest(f"Only draft batches can be updated (this one is {view.status})")
        plan = self._mp_plan(request.status, request.send_now, request.scheduled_at)
        fields = request.model_dump(exclude={"action", "batch_id", "name", "recipients", "status"}, exclude_none=True)
        with self.store.transaction():
            if request.recipients is not None:
                self.store.replace_recipients(request.batch_id, [(r.phone_number, r.name, r.contact_id, None) for r in request.recipients])
            self.store.update(request.batch_id, name=request.name, status=request.status, fields=fields)
            if plan:
                self.store.start_run(request.batch_id, at=plan[0], status=plan[1])
        return JSONResponse(mp.BatchAnswer(batch=self._mp_batch(request.batch_id)).model_dump(exclude_none=True))

    def _mp_start(self, body: dict) -> Response:
        request = _parse(mp.BatchIdRequest, {**body, "action": "start"})
        view = self._mp_view(request.batch_id)
        already = JSONResponse(mp.ActionAnswer(success=True, message="Batch is already running").model_dump())
        if view.status == "running":
            return already
        with self.store.transaction():
            if view.status == "scheduled" and not self.store.unplan(request.batch_id, status="scheduled"):
                return already  # its start time came while this request was being read
            # Like the real server: on a completed, cancelled or failed batch this resets every
            # recipient to pending and calls everyone again.
            self.store.start_run(request.batch_id, at=self.store.clock())
        return JSONResponse(mp.ActionAnswer(success=True, message="Batch started").model_dump())

    def _mp_cancel(self, body: dict) -> Response:
        request = _parse(mp.BatchIdRequest, {**body, "action": "cancel"})
        view = self._mp_view(request.batch_id)
        if view.status not in ("completed", "cancelled"):
            self.store.cancel(request.batch_id, at=self.store.clock())
        return JSONResponse(mp.ActionAnswer(success=True, message="Batch cancelled").model_dump())

    def _mp_list(self, body: dict) -> Response:
        request = _parse(mp.ListRequest, body)
        views = [self.store.view(b, recipients=False) for b in self.store.list("magpipe")]
        if request.status:
            views = [v for v in views if v.status == request.status]
        page = views[request.offset : request.offset + request.limit]
        return JSONResponse(mp.ListAnswer(batches=[self._mp_batch_json(v) for v in page]).model_dump(exclude_none=True))

    def _mp_get(self, body: dict) -> Response:
        request = _parse(mp.BatchIdRequest, {**body, "action": "get"})
        view = self._mp_view(request.batch_id, recipients=True)
        recipients = [
            mp.RecipientState(
                id=r.recipient_id,
                phone_number=r.phone_number,
                name=r.name,
                contact_id=r.contact_id,
                status=r.status,
                call_record_id=r.call.call_record_id if r.call and r.status != "pending" else None,
                attempted_at=iso(r.call.dial_at) if r.call and r.status not in ("pending", "skipped") else None,
                completed_at=iso(r.call.end_at) if r.call and r.status in mp.TERMINAL_RECIPIENT - {"skipped"} else None,
            )
            for r in view.recipients
        ]
        answer = mp.GetAnswer(batch=self._mp_batch_json(view), recipients=recipients, runs=None)
        return JSONResponse(answer.model_dump(exclude_none=True) | {"runs": None})

    def _mp_view(self, batch_id: str, *, recipients: bool = False) -> BatchView:
        batch = self.store.get(batch_id, "magpipe")
        if batch is None:
            raise NotFound("Batch not found")
        return self.store.view(batch, recipients=recipients)

    def _mp_batch(self, batch_id: str) -> mp.Batch:
        return self._mp_batch_json(self._mp_view(batch_id))

    @staticmethod
    def _mp_batch_json(view: BatchView) -> mp.Batch:
        b, f = view.batch, view.batch.fields
        return mp.Batch(
            id=b.id,
            user_id="sandbox-user",
            name=b.name or "",
            caller_id=f.get("caller_id"),
            agent_id=f.get("agent_id"),
            status=view.status,
            send_now=f.get("send_now"),
            total_recipients=view.total,
            completed_count=view.count("completed"),
            failed_count=view.count("busy", "no_answer", "failed"),
            window_start_time=f.get("window_start_time", "00:00"),
            window_end_time=f.get("window_end_time", "23:59"),
            window_days=f.get("window_days", [0, 1, 2, 3, 4, 5, 6]),
            reserved_concurrency=f.get("reserved_concurrency", 5),
            max_concurrency=SandboxStore.concurrency(b),
            purpose=f.get("purpose"),
            goal=f.get("goal"),
            created_at=iso(b.created_at),
            scheduled_at=f.get("scheduled_at"),
            started_at=iso(b.started_at) if view.status not in ("draft", "scheduled") else None,
            completed_at=iso(view.completed_at),
        )

    # ------------------------------------------------------------------ batchcall

    def _bc_error(self, status: int, message: str) -> JSONResponse:
        envelope = bc.Envelope(message=message, status="error", error=message, data=None)
        return JSONResponse(envelope.model_dump(), status_code=status)

    def _bc_authorised(self, request: Request) -> bool:
        key_ok = _same_secret(request, "x-api-key", self.config.api_key.get_secret_value())
        secret_ok = _same_secret(request, "x-api-secret", self.config.api_secret.get_secret_value())
        return key_ok and secret_ok

    async def _bc_handle(self, request: Request, handler, *, mutating: bool) -> Response:
        if not self._bc_authorised(request):
            return self._bc_error(401, "Unauthorized: missing or invalid X-API-KEY / X-API-SECRET")
        try:
            if not mutating:
                return handler(request, None)
            body = await self._body(request)
            return await self._mutate(
                request, lambda: self._guard(lambda b: handler(request, b), body, self._bc_error), self._bc_error
            )
        except BadRequest as exc:
            return self._bc_error(400, str(exc))
        except NotFound as exc:
            return self._bc_error(404, str(exc))

    async def batchcall_create(self, request: Request) -> Response:
        return await self._bc_handle(request, self._bc_create, mutating=True)

    async def batchcall_update(self, request: Request) -> Response:
        return await self._bc_handle(request, self._bc_update, mutating=True)

    async def batchcall_get(self, request: Request) -> Response:
        return await self._bc_handle(request, self._bc_get, mutating=False)

    async def batchcall_list(self, request: Request) -> Response:
        return await self._bc_handle(request, self._bc_list, mutating=False)

    def _bc_check(self, request: bc.CreateRequest | bc.UpdateRequest) -> None:
        if request.from_number is not None and request.from_number not in self.config.caller_ids:
            raise BadRequest(f"from_number {request.from_number} is not a number on this account")
        if request.timezone is not None and request.timezone not in TIMEZONES:
            raise BadRequest(f"timezone {_clip(request.timezone, 60)!r} is not a valid IANA timezone")
        if request.trigger_timestamp is not None:
            _check_trigger(request.trigger_timestamp)

    def _bc_plan(self, status: str | None, send_now: bool | None, trigger_ms: int | None) -> tuple[float, str] | None:
        """When a run starts and the status it starts in, or None when the batch stays a draft."""
        now = self.store.clock()
        if status == "sent" or send_now:
            return now, "running"
        if status == "scheduled":
            if trigger_ms:
                _check_trigger(trigger_ms)
                return max(now, trigger_ms / 1000), "scheduled"
            return now, "scheduled"
        return None

    @staticmethod
    def _bc_tasks(tasks: list[bc.Task]) -> list[Recipient]:
        return [(t.to_number, None, None, t.dynamic_variables) for t in tasks]

    def _bc_create(self, request: Request, body: dict) -> Response:
        create = _parse(bc.CreateRequest, body)
        self._bc_check(create)
        plan = self._bc_plan(create.status, create.send_now, create.trigger_timestamp)
        fields = create.model_dump(exclude={"tasks", "name", "status"}, exclude_none=True)
        fields.setdefault("timezone", "UTC")
        with self.store.transaction():
            batch = self.store.create("batchcall", create.name, "draft", fields, self._bc_tasks(create.tasks))
            if plan:
                self.store.start_run(batch.id, at=plan[0], status=plan[1])
        data = self._bc_data(self.store.view(self.store.get(batch.id), recipients=False), request)
        return JSONResponse(bc.Envelope(message="Batch call created successfully", status="success", data=data).model_dump())

    def _bc_update(self, request: Request, body: dict) -> Response:
        batch_id = request.path_params["batch_id"]
        batch = self.store.get(batch_id, "batchcall")
        if batch is None:
            raise NotFound("Batch call not found")
        update = _parse(bc.UpdateRequest, body)
        self._bc_check(update)
        view = self.store.view(batch, recipients=False)
        refusal = f"batch call is {_bc_status(view.status)}: only draft or scheduled batches can be updated"
        if view.status not in ("draft", "scheduled") or (batch.run and self.store.dialled(batch_id)):
            raise BadRequest(refusal)
        trigger = update.trigger_timestamp or batch.fields.get("trigger_timestamp")
        status = update.status or ("scheduled" if view.status == "scheduled" else "draft")
        plan = self._bc_plan(status, update.send_now, trigger)
        fields = update.model_dump(exclude={"tasks", "name", "status"}, exclude_none=True)
        with self.store.transaction():
            if batch.run and not self.store.unplan(batch_id, status="draft"):
                raise BadRequest(refusal)  # dialling began while this request was read: roll back
            if update.tasks is not None:
                self.store.replace_recipients(batch_id, self._bc_tasks(update.tasks))
            self.store.update(batch_id, name=update.name, status="draft", fields=fields)
            if plan:
                self.store.start_run(batch_id, at=plan[0], status=plan[1])
        data = self._bc_data(self.store.view(self.store.get(batch_id), recipients=False), request)
        return JSONResponse(bc.Envelope(message="Batch call updated successfully", status="success", data=data).model_dump())

    def _bc_get(self, request: Request, _body) -> Response:
        batch = self.store.get(request.path_params["batch_id"], "batchcall")
        if batch is None:
            raise NotFound("Batch call not found")
        tasks = request.query_params.get("tasks", "true")
        if tasks not in ("true", "false"):
            raise BadRequest("tasks must be true or false")
        view = self.store.view(batch, recipients=tasks == "true")
        if tasks == "false":  # the batch alone: what a client reads before it starts a draft
            return JSONResponse(bc.Envelope(message="Batch call retrieved", status="success", data=self._bc_data(view, request)).model_dump())
        detail = bc.BatchDetail(
            **self._bc_data(view, request).model_dump(),
            tasks=[
                bc.TaskState(
                    task_id=r.recipient_id,
                    to_number=r.phone_number,
                    dynamic_variables=r.variables,
                    status=BATCHCALL_TASK_STATUS[r.status],
                    call_id=r.call.call_record_id if r.call and r.status != "pending" else None,
                    attempted_timestamp=millis(r.call.dial_at) if r.call and r.status not in ("pending", "skipped") else None,
                    completed_timestamp=millis(r.call.end_at) if r.call and r.status in mp.TERMINAL_RECIPIENT - {"skipped"} else None,
                )
                for r in view.recipients
            ],
        )
        return JSONResponse(bc.Envelope(message="Batch call retrieved", status="success", data=detail).model_dump())

    def _bc_list(self, request: Request, _body) -> Response:
        params = request.query_params
        limit = _query_int(params.get("limit"), "limit", 50, 1, LIST_LIMIT)
        offset = _query_int(params.get("offset"), "offset", 0, 0, MAX_OFFSET)
        status = params.get("status")
        if status and status not in BATCHCALL_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(BATCHCALL_STATUSES)}")
        views = [self.store.view(b, recipients=False) for b in self.store.list("batchcall", name=params.get("name"))]
        if status:
            views = [v for v in views if _bc_status(v.status) == status]
        data = [self._bc_data(v, request) for v in views[offset : offset + limit]]
        return JSONResponse(bc.Envelope(message="Batch calls listed", status="success", data=data).model_dump())

    @staticmethod
    def _bc_data(view: BatchView, request: Request) -> bc.BatchData:
        b, f = view.batch, view.batch.fields
        dialled = view.dial_times()
        return bc.BatchData(
            batch_call_id=b.id,
            name=b.name,
            from_number=f.get("from_number"),
            scheduled_timestamp=millis(b.start_at) if b.start_at else f.get("trigger_timestamp"),
            total_task_count=view.total,
            total=view.total,
            sent=len(dialled),
            picked_up=view.count("in_progress", "completed"),
            completed=view.count(*bc.TERMINAL_TASK, "skipped"),
            agent_id=f.get("agent_id"),
            organization_id=f.get("organization_id", "sandbox-org"),
            status=_bc_status(view.status),
            timezone=f.get("timezone", "UTC"),
            last_sent_timestamp=millis(max(dialled, default=None)),
            tasks_url=f"{str(request.base_url).rstrip('/')}/batch-call/{b.id}",
            created_timestamp=millis(b.created_at),
        )

    # ------------------------------------------------------------------ inspection

    async def inspect_recipients(self, request: Request) -> Response:
        rows = []
        for batch in self.store.all_batches():
            view = self.store.view(batch)
            native = _bc_status if batch.dialect == "batchcall" else (lambda s: s)
            for r in view.recipients:
                rows.append(
                    {
                        "dialect": batch.dialect,
                        "batch_id": batch.id,
                        "batch_name": batch.name,
                        "batch_status": native(view.status),
                        "phone_number": r.phone_number,
                        "name": r.name,
                        "status": BATCHCALL_TASK_STATUS[r.status] if batch.dialect == "batchcall" else r.status,
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
                body = await self._body(request)
                self.faults.set_plan(FaultPlan.parse(str(body.get("spec", ""))))
            except (BadRequest, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.stats())

    async def move_clock(self, request: Request) -> Response:
        """GET: the sandbox's clock. POST {"advance_seconds": N}: move it N seconds forward (never back), so that
        simulated calls ring, end and finish without being waited for."""
        if request.method == "POST":
            try:
                body = await self._body(request)
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


class NotFound(Exception):
    """Raised inside a handler: becomes a 404."""


def _bc_status(status: str) -> str:
    return {"running": "in_progress"}.get(status, status)


def _is_e164(value: str) -> bool:
    return re.fullmatch(bc.E164_PATTERN, value) is not None


def _parse(model: type[BaseModel], body: dict):
    """Validate a request body strictly: JSON types as declared (no "5" for 5, no 1 for true)."""
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        raise BadRequest(_validation_message(exc)) from None


def _same_secret(request: Request, header: str, expected: str) -> bool:
    """Compare a credential header in constant time, whatever bytes it carries.

    Header values arrive as latin-1 text; comparing str with non-ASCII characters makes
    hmac.compare_digest raise, so compare the raw bytes against the UTF-8 of the secret.
    """
    sent = request.headers.get(header, "").encode("latin-1")
    return hmac.compare_digest(sent, expected.encode("utf-8"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


# A lone surrogate reaches a UTF-8 body only as an escape (\\uD800-\\uDFFF); bodies in UTF-16/32 hold NUL bytes.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _LongInt:
    """An integer literal too long for Python to read (over 4300 digits): refused where it stands."""


class _Numbers:
    """The JSON parser's number hooks: values as the stdlib reads them, and whether one needs the full check
    (NaN, Infinity, a float too large, an integer too long to read)."""

    def __init__(self):
        self.suspect = False

    def integer(self, text: str) -> int | _LongInt:
        try:
            return int(text)
        except ValueError:
            self.suspect = True
            return _LongInt()

    def real(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            self.suspect = True
        return value

    def constant(self, name: str) -> float:
        self.suspect = True
        return float(name)


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
    return _clip(".".join(str(p) for p in positions if p is not None), 80) or "request body"


def _check_json(body: dict, *, containers_only: bool = False) -> None:
    """Refuse what JSON lets through but a field cannot hold, naming where it is.

    Nesting deeper than MAX_DEPTH; strings that are not Unicode text (a lone surrogate, sent
    as \\ud800, could be stored but never written back out as UTF-8); NaN, Infinity and
    numbers too large for a float (1e999), which are not JSON; integers too long to read.
    Iterative, so a body just inside the JSON parser's own limit cannot exhaust the stack.
    `containers_only`: the body is UTF-8 without a surrogate escape and the parser met no
    suspect number (_Numbers), so only the nesting is checked.
    """
    if containers_only and _depth(body) <= MAX_DEPTH:
        return
    stack: list[tuple[object, tuple, int]] = [(body, (), 1)]

    def where(path: tuple) -> str:
        return _clip(".".join(map(str, path)), 80) or "request body"

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


def _depth(body: dict) -> int:
    """How deep the body's containers nest (1: a flat object); only containers are visited, a level at a time
    (`type(…) is`: the JSON parser makes exact dicts and lists)."""
    level, deepest = [body], 1
    while True:
        inner = [child for value in level for child in (value.values() if type(value) is dict else value)
                 if type(child) is dict or type(child) is list]  # fmt: skip
        if not inner:
            return deepest
        deepest += 1
        level = inner


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_iso(value: str, field: str) -> float:
    """An ISO 8601 time as epoch seconds (no offset means UTC, the server's clock), before MAX_TIME."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{field} {_clip(value, 60)!r} is not an ISO 8601 timestamp") from None
    try:
        seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, ValueError, OSError):  # the offset takes it past year 1 or 9999
        raise BadRequest(f"{field} {_clip(value, 60)!r} is out of range") from None
    if seconds >= MAX_TIME:
        raise BadRequest(f"{field} {_clip(value, 60)!r} is out of range (it must be before 9000-01-01)")
    return seconds


def _check_trigger(ms: int) -> None:
    if ms < MIN_TRIGGER_MS:
        raise BadRequest("trigger_timestamp must be Unix time in milliseconds (this looks like seconds)")
    if ms >= MAX_TRIGGER_MS:
        raise BadRequest(f"trigger_timestamp must be Unix time in milliseconds before 9000-01-01 (below {MAX_TRIGGER_MS})")


def _query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if re.fullmatch(r"[0-9]{1,10}", value) is None or not low <= int(value) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(value)


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

