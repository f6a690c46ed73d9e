"""The batchcall dialect: POST /batch-call, PUT /batch-call/{id}; reads use the sandbox's GET endpoints."""

from __future__ import annotations

import time
from contextlib import closing
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pydantic_core
from pydantic import ValidationError

from pipelines.errors import ProviderError
from pipelines.providers.base import HttpEdge, RawJson, answer, parse_time
from pipelines.redact import register
from pipelines.providers.batchcall import wire as bc
from schemas.provider import ChunkPeople, RemoteBatch, RemoteBatchDetail, RemoteRecipient, Schedule

E164_TEXT = r"^\+[1-9][0-9]{1,14}$"
TASK_STATUS = {"dialing": "calling", "cancelled": "skipped"}  # batchcall → neutral (magpipe) vocabulary
BATCH_STATUS = {"in_progress": "running", "sent": "running"}


def connect(settings, home=None) -> closing[BatchcallClient]:
    """A client for the batchcall account the settings name (its BATCHCALL_* variables), closed on exit
    (`home` is the embedded sandbox's; a remote provider keeps nothing there)."""
    return closing(BatchcallClient(
        settings.value("batchcall_base_url"), settings.value("batchcall_api_key").get_secret_value(),
        settings.value("batchcall_api_secret").get_secret_value(), from_number=settings.caller_id, agent_id=settings.agent_id,
        timeout=settings.timeout_seconds, credentials=("BATCHCALL_API_KEY", "BATCHCALL_API_SECRET"),
    ))  # fmt: skip


def connect_sandbox(url: str, settings) -> closing[BatchcallClient]:
    """A client for a sandbox at `url`, with the sandbox's own key and secret."""
    from pipelines.settings import SANDBOX_CALLER_ID

    return closing(BatchcallClient(url, "sandbox-key", "sandbox-secret", from_number=settings.caller_id or SANDBOX_CALLER_ID,
                                   agent_id=settings.agent_id, timeout=settings.timeout_seconds, label="sandbox"))  # fmt: skip


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

    def create_draft(self, name: str, people: ChunkPeople, schedule: Schedule) -> RemoteBatch:
        fields = {"from_number": self.from_number, "name": name, "status": "draft", "timezone": schedule.timezone}
        if self.agent_id:
            fields["agent_id"] = self.agent_id
        head = pydantic_core.to_json(fields)
        body = RawJson(head[:-1] + b',"tasks":' + _tasks_json(people) + b"}")
        envelope = self._envelope("POST", "/batch-call", mutating=True, body=body)
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
        path = f"/batch-call/{batch_id}"
        response = self._edge.send("GET", path, mutating=False)
        try:
            detail = bc.DetailAnswer.model_validate_json(response.content).data
        except ValidationError as exc:
            raise ProviderError(f"{self.label} GET {path}: unexpected answer ({str(exc).splitlines()[0]})") from exc
        if detail is None:
            raise ProviderError(f"{self.label} GET {path}: unexpected answer (no data)")
        recipients = [
            RemoteRecipient(t.to_number, TASK_STATUS.get(t.status, t.status), t.call_id, _seconds(t.attempted_timestamp),
                            _seconds(t.completed_timestamp))
            for t in detail.tasks
        ]  # fmt: skip
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


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


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


def _tasks_json(people: ChunkPeople) -> bytes:
    """The chunk's `tasks` array as JSON text, assembled from its columns without an object per person.

    Each task is `{"to_number": e164, "dynamic_variables": {…}}` (the variables left out when there are none). The
    pieces are safe to join as text: an E.164 number needs no escaping (checked here, so a damaged ledger fails
    loudly instead of sending broken JSON) and the variables are the JSON object text the ledger stored.
    """
    e164, variables = people.table.column("e164"), people.table.column("variables")
    if len(people) and not pc.all(pc.match_substring_regex(e164, E164_TEXT)).as_py():
        raise ProviderError("a chunk holds a number that is not E.164: the ledger is damaged")
    bare = pc.binary_join_element_wise('{"to_number":"', e164, '"}', "")
    full = pc.binary_join_element_wise('{"to_number":"', e164, '","dynamic_variables":', variables, "}", "")
    none = pc.or_(pc.is_null(variables), pc.is_in(variables, pa.array(["", "{}"])))
    tasks = pc.if_else(none, bare, full).combine_chunks()
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(tasks)], pa.int32()), tasks), ",")[0].as_py()
    return b"[" + joined.encode() + b"]"
