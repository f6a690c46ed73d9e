"""The batchcall dialect: POST /batch-call, PUT /batch-call/{id}; reads use the sandbox's GET endpoints."""

from __future__ import annotations

import time
from datetime import datetime

from pydantic import ValidationError

from pipelines.errors import ProviderError
from pipelines.providers.base import HttpEdge, answer, parse_time
from pipelines.redact import register
from schemas import batchcall as bc
from schemas.provider import OutgoingContact, RemoteBatch, RemoteBatchDetail, RemoteRecipient, Schedule

TASK_STATUS = {"dialing": "calling", "cancelled": "skipped"}  # batchcall → neutral (magpipe) vocabulary
BATCH_STATUS = {"in_progress": "running", "sent": "running"}


class BatchcallClient:
    """Creates drafts, schedules them for now, and reads them back by name or id."""

    dialect = "batchcall"

    def __init__(self, base_url: str, api_key: str, api_secret: str, *, from_number: str, agent_id: str | None,
                 timeout: float, label: str = "batchcall", transport=None, credentials: tuple[str, ...] = ()):  # fmt: skip
        register(api_key, api_secret)
        self.label = label
        self.from_number = from_number
        self.agent_id = agent_id
        headers = {"X-API-KEY": api_key, "X-API-SECRET": api_secret}
        self._edge = HttpEdge(base_url, headers, timeout=timeout, label=label, transport=transport, credentials=credentials)

    def close(self) -> None:
        self._edge.close()

    def _envelope(self, method: str, path: str, *, mutating: bool, body=None, params=None) -> bc.Envelope:
        response = self._edge.send(method, path, body=body, params=params, mutating=mutating)
        try:
            return bc.Envelope.model_validate(answer(response))
        except (ValueError, ValidationError) as exc:
            raise ProviderError(f"{self.label} {method} {path}: unexpected answer ({str(exc).splitlines()[0]})") from exc

    def create_draft(self, name: str, contacts: list[OutgoingContact], schedule: Schedule) -> RemoteBatch:
        # Built as plain JSON: the tasks are numbers and variables the ledger already checked, and a model per task
        # would cost more than the request itself.
        request = {
            "from_number": self.from_number, "name": name, "status": "draft", "timezone": schedule.timezone,
            "tasks": [{"to_number": e164, "dynamic_variables": variables} if variables else {"to_number": e164}
                      for e164, _, variables, _ in contacts],
        }  # fmt: skip
        if self.agent_id:
            request["agent_id"] = self.agent_id
        envelope = self._envelope("POST", "/batch-call", mutating=True, body=request)
        return _remote(self._data(envelope, bc.BatchData))

    def start(self, batch_id: str, schedule: Schedule) -> None:
        """Schedule the draft: PUT status=scheduled, trigger_timestamp = when calling hours open (or now), in ms."""
        trigger = schedule.trigger_at.timestamp() if schedule.trigger_at else time.time()
        request = bc.UpdateRequest(status="scheduled", trigger_timestamp=int(trigger * 1000), timezone=schedule.timezone)
        self._envelope("PUT", f"/batch-call/{batch_id}", mutating=True, body=request)

    def unschedule(self, batch_id: str) -> None:
        """Put a scheduled batch that has not started dialling back to draft (PUT status=draft)."""
        request = bc.UpdateRequest(status="draft")
        self._envelope("PUT", f"/batch-call/{batch_id}", mutating=True, body=request)

    def stop(self, batch_id: str, status: str) -> None:
        """A draft never dials (nothing to send); a scheduled batch is put back to draft; a dialling one cannot be stopped."""
        if status == "draft":
            return
        if status == "scheduled":
            self.unschedule(batch_id)
            return
        raise ProviderError(f"{self.label} documents no way to stop a batch that is {status}")

    def discard_draft(self, batch_id: str) -> None:
        """A batchcall draft never dials; nothing to do (the API documents no delete)."""

    def find_by_name(self, name: str, since: datetime) -> list[RemoteBatch]:
        envelope = self._envelope("GET", "/batch-call", mutating=False, params={"name": name, "limit": 100})
        items = envelope.data if isinstance(envelope.data, list) else []
        try:
            return [_remote(bc.BatchData.model_validate(item)) for item in items if item.get("name") == name]
        except ValidationError as exc:
            raise ProviderError(f"{self.label} list: unexpected answer ({str(exc).splitlines()[0]})") from exc

    def get_detail(self, batch_id: str) -> RemoteBatchDetail:
        envelope = self._envelope("GET", f"/batch-call/{batch_id}", mutating=False)
        detail = self._data(envelope, bc.BatchDetail)
        recipients = [
            RemoteRecipient(
                e164=t.to_number,
                status=TASK_STATUS.get(t.status, t.status),
                call_record_id=t.call_id,
                attempted_at=parse_time(t.attempted_timestamp),
                completed_at=parse_time(t.completed_timestamp),
            )
            for t in detail.tasks
        ]
        return RemoteBatchDetail(batch=_remote(detail), recipients=recipients)

    def get_batch(self, batch_id: str) -> RemoteBatch:
        """The batch without its tasks (`?tasks=false`, the sandbox's read; see the README)."""
        envelope = self._envelope("GET", f"/batch-call/{batch_id}", mutating=False, params={"tasks": "false"})
        return _remote(self._data(envelope, bc.BatchData))

    def _data(self, envelope: bc.Envelope, model):
        try:
            return model.model_validate(envelope.data)
        except ValidationError as exc:
            raise ProviderError(f"{self.label}: unexpected answer ({str(exc).splitlines()[0]})") from exc


def _remote(data: bc.BatchData) -> RemoteBatch:
    failed = 0
    tasks = getattr(data, "tasks", None)
    if tasks:
        failed = sum(1 for t in tasks if t.status in ("busy", "no_answer", "failed"))
        completed = sum(1 for t in tasks if t.status == "completed")
    else:
        completed = data.completed
    return RemoteBatch(
        id=data.batch_call_id,
        name=data.name or "",
        status=BATCH_STATUS.get(data.status, data.status),
        total=data.total or data.total_task_count,
        completed=completed,
        failed=failed,
        created_at=parse_time(data.created_timestamp),
    )
