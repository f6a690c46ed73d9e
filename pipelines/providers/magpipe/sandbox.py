"""How the sandbox answers magpipe: POST /functions/v1/batch-calls with an action, in magpipe's shapes.

Like the real server: drafts are updated, `start` on a finished batch calls everyone again,
and a batch dials only inside its window (on the server's clock, UTC) at most
max_concurrency calls at once.
"""

from __future__ import annotations

import uuid

import pydantic_core

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.providers.magpipe import wire as mp
from pipelines.sandbox.http import BadRequest, NotFound, clip, guard, is_e164, json_type, parse, parse_iso, same_secret
from pipelines.sandbox.simulation import Window, iso
from pipelines.sandbox.state import BatchView

ACTIONS = ("create", "list", "get", "update", "start", "cancel")


def _window(fields: dict) -> Window:
    return Window(fields.get("window_start_time") or "00:00", fields.get("window_end_time") or "23:59",
                  tuple(fields.get("window_days") or (0, 1, 2, 3, 4, 5, 6)))  # fmt: skip


def _concurrency(fields: dict) -> int:
    return min(5, max(1, int(fields.get("max_concurrency") or 5)))


class MagpipeRoutes:
    """magpipe's one endpoint on the sandbox."""

    prefix = "/functions/"

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.routes = [Route("/functions/v1/batch-calls", self.handle, methods=["POST"])]

    @staticmethod
    def batch_status(status: str) -> str:
        return status  # the store speaks magpipe's vocabulary

    @staticmethod
    def recipient_status(status: str) -> str:
        return status

    def _start_run(self, batch_id: str, *, at: float, status: str = "running") -> None:
        fields = self.sandbox.store.get(batch_id).fields
        self.sandbox.store.start_run(batch_id, at=at, status=status, window=_window(fields), concurrency=_concurrency(fields))

    def error(self, status: int, message: str) -> JSONResponse:
        return JSONResponse(mp.ErrorAnswer(error=message).model_dump(), status_code=status)

    async def handle(self, request: Request) -> Response:
        expected = f"Bearer {self.sandbox.config.api_key.get_secret_value()}"
        if not same_secret(request, "authorization", expected):
            return self.error(401, "Unauthorized")
        try:
            body = await self.sandbox.body(request)
            action = body.get("action")
            if action is None:
                raise BadRequest(f"action is required (one of {', '.join(ACTIONS)})")
            if not isinstance(action, str):
                raise BadRequest(f"action must be a string, not {json_type(action)}")
            handlers = {
                "create": self._create,
                "update": self._update,
                "start": self._start,
                "cancel": self._cancel,
            }
            if action in handlers:
                return await self.sandbox.mutate(request, lambda: guard(handlers[action], body, self.error), self.error)
            if action == "list":
                return self._list(body)
            if action == "get":
                return self._get(body)
            return self.error(400, f"Unknown action: {clip(action, 100)}")
        except BadRequest as exc:
            return self.error(400, str(exc))
        except NotFound as exc:
            return self.error(404, str(exc))

    def _validate_recipients(self, recipients) -> None:
        if not isinstance(recipients, list) or not recipients:
            raise BadRequest("recipients must be a non-empty array")
        if len(recipients) > mp.MAX_RECIPIENTS:
            raise BadRequest(f"Maximum {mp.MAX_RECIPIENTS} recipients per batch")
        for index, recipient in enumerate(recipients):
            phone = recipient.get("phone_number") if isinstance(recipient, dict) else None
            if not isinstance(phone, str) or not is_e164(phone):
                raise BadRequest(f"recipients[{index}].phone_number must be an E.164 number")

    # Every handler below first reads and checks the whole request (raising BadRequest or
    # NotFound before anything is written), then makes its change in one store transaction:
    # a refused request leaves the store exactly as it was.

    def _check(self, request: mp.CreateRequest | mp.UpdateRequest) -> None:
        """What create and update share beyond the field types."""
        if request.caller_id is not None and request.caller_id not in self.sandbox.config.caller_ids:
            raise BadRequest(f"caller_id {clip(request.caller_id, 40)} is not an active number on this account")
        if request.window_days is not None and (not request.window_days or any(d not in range(7) for d in request.window_days)):
            raise BadRequest("window_days must list days 0 (Sunday) to 6 (Saturday)")
        if request.scheduled_at:
            parse_iso(request.scheduled_at, "scheduled_at")

    def _plan(self, status: str | None, send_now: bool | None, scheduled_at: str | None) -> tuple[float, str] | None:
        """When a run starts and the status it starts in, or None when this status dials nobody."""
        now = self.sandbox.store.clock()
        if status == "running" or (status == "scheduled" and send_now):
            return now, "running"
        if status == "scheduled" and scheduled_at:
            return max(now, parse_iso(scheduled_at, "scheduled_at")), "scheduled"
        return None

    def _create(self, body: dict) -> Response:
        if body.get("name") in (None, "") or body.get("caller_id") in (None, ""):
            raise BadRequest("name and caller_id are required")
        self._validate_recipients(body.get("recipients"))
        request = parse(mp.CreateRequest, body)
        self._check(request)
        plan = self._plan(request.status, request.send_now, request.scheduled_at)
        fields = request.model_dump(exclude={"action", "name", "recipients", "status"}, exclude_none=True)
        recipients = [(r.phone_number, r.name, r.contact_id, None) for r in request.recipients]
        with self.sandbox.store.transaction():
            batch = self.sandbox.store.create("magpipe", str(uuid.uuid4()), request.name, request.status or "draft", fields, recipients)
            if plan:
                self._start_run(batch.id, at=plan[0], status=plan[1])
        return JSONResponse(mp.BatchAnswer(batch=self._batch(batch.id)).model_dump(exclude_none=True))

    def _update(self, body: dict) -> Response:
        request = parse(mp.UpdateRequest, body)
        if request.recipients is not None:
            self._validate_recipients(body.get("recipients"))
        if request.name == "":
            raise BadRequest("name must not be empty")
        self._check(request)
        view = self._view(request.batch_id)
        if view.status not in ("draft", "recurring"):
            raise BadRequest(f"Only draft batches can be updated (this one is {view.status})")
        plan = self._plan(request.status, request.send_now, request.scheduled_at)
        fields = request.model_dump(exclude={"action", "batch_id", "name", "recipients", "status"}, exclude_none=True)
        with self.sandbox.store.transaction():
            if request.recipients is not None:
                self.sandbox.store.replace_recipients(request.batch_id, [(r.phone_number, r.name, r.contact_id, None) for r in request.recipients])
            self.sandbox.store.update(request.batch_id, name=request.name, status=request.status, fields=fields)
            if plan:
                self._start_run(request.batch_id, at=plan[0], status=plan[1])
        return JSONResponse(mp.BatchAnswer(batch=self._batch(request.batch_id)).model_dump(exclude_none=True))

    def _start(self, body: dict) -> Response:
        request = parse(mp.BatchIdRequest, {**body, "action": "start"})
        view = self._view(request.batch_id)
        already = JSONResponse(mp.ActionAnswer(success=True, message="Batch is already running").model_dump())
        if view.status == "running":
            return already
        with self.sandbox.store.transaction():
            if view.status == "scheduled" and not self.sandbox.store.unplan(request.batch_id, status="scheduled"):
                return already  # its start time came while this request was being read
            # Like the real server: on a completed, cancelled or failed batch this resets every
            # recipient to pending and calls everyone again.
            self._start_run(request.batch_id, at=self.sandbox.store.clock())
        return JSONResponse(mp.ActionAnswer(success=True, message="Batch started").model_dump())

    def _cancel(self, body: dict) -> Response:
        request = parse(mp.BatchIdRequest, {**body, "action": "cancel"})
        view = self._view(request.batch_id)
        if view.status not in ("completed", "cancelled"):
            self.sandbox.store.cancel(request.batch_id, at=self.sandbox.store.clock())
        return JSONResponse(mp.ActionAnswer(success=True, message="Batch cancelled").model_dump())

    def _list(self, body: dict) -> Response:
        request = parse(mp.ListRequest, body)
        views = [self.sandbox.store.view(b, recipients=False) for b in self.sandbox.store.list("magpipe")]
        if request.status:
            views = [v for v in views if v.status == request.status]
        page = views[request.offset : request.offset + request.limit]
        return JSONResponse(mp.ListAnswer(batches=[self._batch_json(v) for v in page]).model_dump(exclude_none=True))

    def _get(self, body: dict) -> Response:
        request = parse(mp.BatchIdRequest, {**body, "action": "get"})
        view = self._view(request.batch_id, recipients=True)
        ended = mp.TERMINAL_RECIPIENT - {"skipped"}
        # plain dicts in RecipientState's shape, fields that are None left out (a few hundred per batch)
        recipients = [
            {key: value for key, value in (
                ("id", r.recipient_id), ("phone_number", r.phone_number), ("name", r.name), ("contact_id", r.contact_id),
                ("status", r.status),
                ("call_record_id", r.call.call_record_id if r.call and r.status != "pending" else None),
                ("attempted_at", iso(r.call.dial_at) if r.call and r.status not in ("pending", "skipped") else None),
                ("completed_at", iso(r.call.end_at) if r.call and r.status in ended else None),
            ) if value is not None}
            for r in view.recipients
        ]  # fmt: skip
        answer = {"batch": self._batch_json(view).model_dump(exclude_none=True), "recipients": recipients, "runs": None}
        return Response(pydantic_core.to_json(answer), media_type="application/json")

    def _view(self, batch_id: str, *, recipients: bool = False) -> BatchView:
        batch = self.sandbox.store.get(batch_id, "magpipe")
        if batch is None:
            raise NotFound("Batch not found")
        return self.sandbox.store.view(batch, recipients=recipients)

    def _batch(self, batch_id: str) -> mp.Batch:
        return self._batch_json(self._view(batch_id))

    @staticmethod
    def _batch_json(view: BatchView) -> mp.Batch:
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
            max_concurrency=_concurrency(f),
            purpose=f.get("purpose"),
            goal=f.get("goal"),
            created_at=iso(b.created_at),
            scheduled_at=f.get("scheduled_at"),
            started_at=iso(b.started_at) if view.status not in ("draft", "scheduled") else None,
            completed_at=iso(view.completed_at),
        )
