"""How the sandbox answers batchcall: POST/GET /batch-call, PUT/GET /batch-call/{id}, in batchcall's shapes.

Like the real server: a batch is created as a draft and scheduled by PUT (trigger_timestamp,
ms); once dialling began it can no longer be changed; it has no window, so it dials at any
hour from its trigger, five calls at a time.
"""

from __future__ import annotations

import uuid

import pydantic_core

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.providers.batchcall import wire as bc
from pipelines.sandbox.http import (
    LIST_LIMIT, MAX_OFFSET, TIMEZONES, BadRequest, NotFound, check_trigger, clip, guard, parse, query_int, same_secret,
)  # fmt: skip
from pipelines.sandbox.simulation import TERMINAL, millis
from pipelines.sandbox.state import BatchView, Recipient

STATUSES = ("draft", "scheduled", "in_progress", "completed")
TASK_STATUS = {  # the store's recipient status → batchcall's task status
    "pending": "pending",
    "calling": "dialing",
    "initiated": "dialing",
    "ringing": "ringing",
    "in_progress": "in_progress",
    "completed": "completed",
    "busy": "busy",
    "no_answer": "no_answer",
    "failed": "failed",
    "skipped": "cancelled",
}


def _status(status: str) -> str:
    """The store's batch status as batchcall says it."""
    return {"running": "in_progress"}.get(status, status)


class BatchcallRoutes:
    """batchcall's endpoints on the sandbox."""

    prefix = "/batch-call"

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.routes = [
            Route("/batch-call", self.create, methods=["POST"]),
            Route("/batch-call", self.list, methods=["GET"]),
            Route("/batch-call/{batch_id}", self.update, methods=["PUT"]),
            Route("/batch-call/{batch_id}", self.get, methods=["GET"]),
        ]

    @staticmethod
    def batch_status(status: str) -> str:
        return _status(status)

    @staticmethod
    def recipient_status(status: str) -> str:
        return TASK_STATUS[status]

    def error(self, status: int, message: str) -> JSONResponse:
        envelope = bc.Envelope(message=message, status="error", error=message, data=None)
        return JSONResponse(envelope.model_dump(), status_code=status)

    def _authorised(self, request: Request) -> bool:
        key_ok = same_secret(request, "x-api-key", self.sandbox.config.api_key.get_secret_value())
        secret_ok = same_secret(request, "x-api-secret", self.sandbox.config.api_secret.get_secret_value())
        return key_ok and secret_ok

    async def _handle(self, request: Request, handler, *, mutating: bool) -> Response:
        if not self._authorised(request):
            return self.error(401, "Unauthorized: missing or invalid X-API-KEY / X-API-SECRET")
        try:
            if not mutating:
                return handler(request, None)
            body = await self.sandbox.body(request)
            return await self.sandbox.mutate(
                request, lambda: guard(lambda b: handler(request, b), body, self.error), self.error
            )
        except BadRequest as exc:
            return self.error(400, str(exc))
        except NotFound as exc:
            return self.error(404, str(exc))

    async def create(self, request: Request) -> Response:
        return await self._handle(request, self._create, mutating=True)

    async def update(self, request: Request) -> Response:
        return await self._handle(request, self._update, mutating=True)

    async def get(self, request: Request) -> Response:
        return await self._handle(request, self._get, mutating=False)

    async def list(self, request: Request) -> Response:
        return await self._handle(request, self._list, mutating=False)

    def _check(self, request: bc.CreateRequest | bc.UpdateRequest) -> None:
        if request.from_number is not None and request.from_number not in self.sandbox.config.caller_ids:
            raise BadRequest(f"from_number {request.from_number} is not a number on this account")
        if request.timezone is not None and request.timezone not in TIMEZONES:
            raise BadRequest(f"timezone {clip(request.timezone, 60)!r} is not a valid IANA timezone")
        if request.trigger_timestamp is not None:
            check_trigger(request.trigger_timestamp)

    def _plan(self, status: str | None, send_now: bool | None, trigger_ms: int | None) -> tuple[float, str] | None:
        """When a run starts and the status it starts in, or None when the batch stays a draft."""
        now = self.sandbox.store.clock()
        if status == "sent" or send_now:
            return now, "running"
        if status == "scheduled":
            if trigger_ms:
                check_trigger(trigger_ms)
                return max(now, trigger_ms / 1000), "scheduled"
            return now, "scheduled"
        return None

    @staticmethod
    def _tasks(tasks: list[bc.Task]) -> list[Recipient]:
        return [(t.to_number, None, None, t.dynamic_variables) for t in tasks]

    def _create(self, request: Request, body: dict) -> Response:
        create = parse(bc.CreateRequest, body)
        self._check(create)
        plan = self._plan(create.status, create.send_now, create.trigger_timestamp)
        fields = create.model_dump(exclude={"tasks", "name", "status"}, exclude_none=True)
        fields.setdefault("timezone", "UTC")
        with self.sandbox.store.transaction():
            batch = self.sandbox.store.create("batchcall", f"batch_call_{uuid.uuid4().hex}", create.name, "draft", fields,
                                              self._tasks(create.tasks))  # fmt: skip
            if plan:
                self.sandbox.store.start_run(batch.id, at=plan[0], status=plan[1])
        data = self._data(self.sandbox.store.view(self.sandbox.store.get(batch.id), recipients=False), request)
        return JSONResponse(bc.Envelope(message="Batch call created successfully", status="success", data=data).model_dump())

    def _update(self, request: Request, body: dict) -> Response:
        batch_id = request.path_params["batch_id"]
        batch = self.sandbox.store.get(batch_id, "batchcall")
        if batch is None:
            raise NotFound("Batch call not found")
        update = parse(bc.UpdateRequest, body)
        self._check(update)
        view = self.sandbox.store.view(batch, recipients=False)
        refusal = f"batch call is {_status(view.status)}: only draft or scheduled batches can be updated"
        if view.status not in ("draft", "scheduled") or (batch.run and self.sandbox.store.dialled(batch_id)):
            raise BadRequest(refusal)
        trigger = update.trigger_timestamp or batch.fields.get("trigger_timestamp")
        status = update.status or ("scheduled" if view.status == "scheduled" else "draft")
        plan = self._plan(status, update.send_now, trigger)
        fields = update.model_dump(exclude={"tasks", "name", "status"}, exclude_none=True)
        with self.sandbox.store.transaction():
            if batch.run and not self.sandbox.store.unplan(batch_id, status="draft"):
                raise BadRequest(refusal)  # dialling began while this request was read: roll back
            if update.tasks is not None:
                self.sandbox.store.replace_recipients(batch_id, self._tasks(update.tasks))
            self.sandbox.store.update(batch_id, name=update.name, status="draft", fields=fields)
            if plan:
                self.sandbox.store.start_run(batch_id, at=plan[0], status=plan[1])
        data = self._data(self.sandbox.store.view(self.sandbox.store.get(batch_id), recipients=False), request)
        return JSONResponse(bc.Envelope(message="Batch call updated successfully", status="success", data=data).model_dump())

    def _get(self, request: Request, _body) -> Response:
        batch = self.sandbox.store.get(request.path_params["batch_id"], "batchcall")
        if batch is None:
            raise NotFound("Batch call not found")
        tasks = request.query_params.get("tasks", "true")
        if tasks not in ("true", "false"):
            raise BadRequest("tasks must be true or false")
        view = self.sandbox.store.view(batch, recipients=tasks == "true")
        if tasks == "false":  # the batch alone: what a client reads before it starts a draft
            return JSONResponse(bc.Envelope(message="Batch call retrieved", status="success", data=self._data(view, request)).model_dump())
        ended = TERMINAL - {"skipped"}
        # the tasks as plain dicts in TaskState's shape (a thousand per batch; bc.TaskState is the documented model)
        tasks = [
            {
                "task_id": r.recipient_id,
                "to_number": r.phone_number,
                "dynamic_variables": r.variables,
                "status": TASK_STATUS[r.status],
                "call_id": r.call.call_record_id if r.call and r.status != "pending" else None,
                "attempted_timestamp": millis(r.call.dial_at) if r.call and r.status not in ("pending", "skipped") else None,
                "completed_timestamp": millis(r.call.end_at) if r.call and r.status in ended else None,
            }
            for r in view.recipients
        ]
        envelope = {"message": "Batch call retrieved", "status": "success", "error": None,
                    "data": {**self._data(view, request).model_dump(), "tasks": tasks}}  # fmt: skip
        return Response(pydantic_core.to_json(envelope), media_type="application/json")

    def _list(self, request: Request, _body) -> Response:
        params = request.query_params
        limit = query_int(params.get("limit"), "limit", 50, 1, LIST_LIMIT)
        offset = query_int(params.get("offset"), "offset", 0, 0, MAX_OFFSET)
        status = params.get("status")
        if status and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
        views = [self.sandbox.store.view(b, recipients=False) for b in self.sandbox.store.list("batchcall", name=params.get("name"))]
        if status:
            views = [v for v in views if _status(v.status) == status]
        data = [self._data(v, request) for v in views[offset : offset + limit]]
        return JSONResponse(bc.Envelope(message="Batch calls listed", status="success", data=data).model_dump())

    @staticmethod
    def _data(view: BatchView, request: Request) -> bc.BatchData:
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
            status=_status(view.status),
            timezone=f.get("timezone", "UTC"),
            last_sent_timestamp=millis(max(dialled, default=None)),
            tasks_url=f"{str(request.base_url).rstrip('/')}/batch-call/{b.id}",
            created_timestamp=millis(b.created_at),
        )
