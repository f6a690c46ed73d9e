"""The magpipe dialect: POST /functions/v1/batch-calls with an action."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from pipelines.errors import ProviderError
from pipelines.providers.base import HttpEdge, answer, parse_time
from pipelines.redact import register
from pipelines.providers.magpipe import wire as mp
from schemas.provider import AccountWindow, ChunkPeople, RemoteBatch, RemoteBatchDetail, RemoteRecipient, Schedule

PATH = "/batch-calls"
LIST_PAGE = 100
LIST_PAGES_MAX = 50
SCHEDULE_SLACK = timedelta(minutes=1)  # a start this close to now is simply a start
ALWAYS = AccountWindow("00:00", "23:59", (0, 1, 2, 3, 4, 5, 6))  # magpipe's own defaults for the window fields


def connect(settings, home=None) -> closing[MagpipeClient]:
    """A client for the magpipe account the settings name (its MAGPIPE_* variables), closed on exit
    (`home` is the embedded sandbox's; a remote provider keeps nothing there)."""
    return closing(MagpipeClient(
        settings.value("magpipe_base_url"), settings.value("magpipe_api_key").get_secret_value(), caller_id=settings.caller_id,
        agent_id=settings.agent_id, timeout=settings.timeout_seconds, credentials=("MAGPIPE_API_KEY",),
    ))  # fmt: skip


def connect_sandbox(url: str, settings) -> closing[MagpipeClient]:
    """A client for a sandbox at `url`, with the sandbox's own key."""
    from pipelines.settings import SANDBOX_CALLER_ID

    return closing(MagpipeClient(f"{url}/functions/v1", "sandbox-key", caller_id=settings.caller_id or SANDBOX_CALLER_ID,
                                 agent_id=settings.agent_id, timeout=settings.timeout_seconds, label="sandbox"))  # fmt: skip


class MagpipeClient:
    """Creates drafts, starts them, and reads them back by name or id."""

    dialect = "magpipe"

    def __init__(self, base_url: str, api_key: str, *, caller_id: str, agent_id: str | None, timeout: float, transport=None,
                 credentials: tuple[str, ...] = (), label: str = "magpipe"):  # fmt: skip
        register(api_key)
        self.label = label
        self.caller_id = caller_id
        self.agent_id = agent_id
        self._edge = HttpEdge(base_url, {"Authorization": f"Bearer {api_key}"}, timeout=timeout, label=self.label, transport=transport,
                              credentials=credentials)  # fmt: skip

    def close(self) -> None:
        self._edge.close()

    def _call(self, request, answer_model, *, mutating: bool):
        response = self._edge.send("POST", PATH, body=request, mutating=mutating)
        try:
            return answer_model.model_validate(answer(response))
        except (ValueError, ValidationError) as exc:
            raise ProviderError(f"magpipe {request.action}: unexpected answer ({str(exc).splitlines()[0]})") from exc

    def create_draft(self, name: str, people: ChunkPeople, schedule: Schedule) -> RemoteBatch:
        """A draft carrying the chunk's calling window, converted to the account's clock (every minute when the
        schedule has none)."""
        window = schedule.window or ALWAYS
        request = mp.CreateRequest(
            name=name, caller_id=self.caller_id, agent_id=self.agent_id, status="draft",
            window_start_time=window.start_time, window_end_time=window.end_time, window_days=list(window.days),
            recipients=[mp.Recipient.model_construct(phone_number=c.e164, name=c.name or None, contact_id=c.contact_id)
                        for c in people.rows()],  # the ledger's own values: not checked again one by one
        )  # fmt: skip
        return _remote(self._call(request, mp.BatchAnswer, mutating=True).batch)

    def start(self, batch_id: str, schedule: Schedule) -> None:
        """Dialling begins now (or at the scheduled time), inside the window the draft carries."""
        if schedule.trigger_at is not None and schedule.trigger_at > datetime.now(UTC) + SCHEDULE_SLACK:
            request = mp.UpdateRequest(batch_id=batch_id, status="scheduled", scheduled_at=schedule.trigger_at.isoformat())
            self._call(request, mp.BatchAnswer, mutating=True)
            return
        answer = self._call(mp.BatchIdRequest(action="start", batch_id=batch_id), mp.ActionAnswer, mutating=True)
        if not answer.success:
            raise ProviderError(f"magpipe start {batch_id}: {answer.message or 'refused'}")

    def cancel(self, batch_id: str) -> None:
        """Stop a batch: pending recipients are skipped; calls in progress finish."""
        answer = self._call(mp.BatchIdRequest(action="cancel", batch_id=batch_id), mp.ActionAnswer, mutating=True)
        if not answer.success:
            raise ProviderError(f"magpipe cancel {batch_id}: {answer.message or 'refused'}")

    def stop(self, batch_id: str, status: str) -> None:
        """Stop a batch in any status: drafts can then never be started, running ones dial no one new."""
        self.cancel(batch_id)

    def discard_draft(self, batch_id: str) -> None:
        """Cancel a draft left over by an ambiguous create, so nobody can start it by mistake."""
        self._call(mp.BatchIdRequest(action="cancel", batch_id=batch_id), mp.ActionAnswer, mutating=True)

    def find_by_name(self, name: str, since: datetime) -> list[RemoteBatch]:
        """Page through `list` (newest first) until batches are older than `since`."""
        found, horizon = [], since - timedelta(minutes=10)  # allow for clock skew
        for page in range(LIST_PAGES_MAX):
            answer = self._call(mp.ListRequest(limit=LIST_PAGE, offset=page * LIST_PAGE), mp.ListAnswer, mutating=False)
            found += [_remote(b) for b in answer.batches if b.name == name]
            oldest = parse_time(answer.batches[-1].created_at) if answer.batches else None
            if len(answer.batches) < LIST_PAGE or (oldest is not None and oldest < horizon):
                break
        return found

    def get_detail(self, batch_id: str) -> RemoteBatchDetail:
        answer = self._call(mp.BatchIdRequest(action="get", batch_id=batch_id), mp.GetAnswer, mutating=False)
        recipients = [
            RemoteRecipient(
                e164=r.phone_number,
                status=r.status,
                call_record_id=r.call_record_id,
                attempted_at=_seconds(r.attempted_at),
                completed_at=_seconds(r.completed_at),
            )
            for r in answer.recipients
        ]
        return RemoteBatchDetail(batch=_remote(answer.batch), recipients=recipients)

    def get_batch(self, batch_id: str) -> RemoteBatch:
        return self.get_detail(batch_id).batch


def _seconds(text: str | None) -> float | None:
    moment = parse_time(text)
    return None if moment is None else moment.timestamp()


def _remote(batch: mp.Batch) -> RemoteBatch:
    return RemoteBatch(
        id=batch.id,
        name=batch.name,
        status=batch.status,
        total=batch.total_recipients,
        completed=batch.completed_count,
        failed=batch.failed_count,
        created_at=parse_time(batch.created_at),
        completed_at=parse_time(batch.completed_at),
    )
