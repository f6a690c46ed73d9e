"""Requests and answers of the magpipe dialect: POST /functions/v1/batch-calls with an `action`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BatchStatus = Literal["draft", "scheduled", "running", "paused", "completed", "cancelled", "failed", "recurring"]
RecipientStatus = Literal[
    "pending", "calling", "initiated", "ringing", "in_progress", "completed", "busy", "no_answer", "failed", "skipped"
]
TERMINAL_RECIPIENT = {"completed", "busy", "no_answer", "failed", "skipped"}
FINISHED_BATCH = {"completed", "cancelled", "failed"}
MAX_RECIPIENTS = 500
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Recipient(_Request):
    """One person to call; the server keeps only these three fields."""

    phone_number: str
    name: str | None = None
    contact_id: str | None = None


class WindowFields(_Request):
    """Fields shared by create and update."""

    agent_id: str | None = None
    send_now: bool | None = None
    scheduled_at: str | None = None
    window_start_time: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    window_end_time: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    window_days: list[int] | None = None
    # A 32-bit integer, as the server's database column holds; max_concurrency is then clamped to 1..5.
    reserved_concurrency: int | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX)
    max_concurrency: int | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX)
    purpose: str | None = None
    goal: str | None = None


class CreateRequest(WindowFields):
    action: Literal["create"] = "create"
    name: str
    caller_id: str
    recipients: list[Recipient]
    status: BatchStatus | None = None


class ListRequest(_Request):
    action: Literal["list"] = "list"
    status: BatchStatus | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=INT32_MAX)


class BatchIdRequest(_Request):
    """get, start and cancel."""

    action: Literal["get", "start", "cancel"]
    batch_id: str


class UpdateRequest(WindowFields):
    action: Literal["update"] = "update"
    batch_id: str
    name: str | None = None
    caller_id: str | None = None
    recipients: list[Recipient] | None = None
    status: BatchStatus | None = None


class Batch(BaseModel):
    """A batch as the server describes it (list answers carry a subset of the fields)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    status: str
    user_id: str | None = None
    caller_id: str | None = None
    agent_id: str | None = None
    send_now: bool | None = None
    total_recipients: int = 0
    completed_count: int = 0
    failed_count: int = 0
    window_start_time: str | None = None
    window_end_time: str | None = None
    window_days: list[int] | None = None
    reserved_concurrency: int | None = None
    max_concurrency: int | None = None
    purpose: str | None = None
    goal: str | None = None
    created_at: str | None = None
    scheduled_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class RecipientState(BaseModel):
    """One recipient's call status, from `get`."""

    model_config = ConfigDict(extra="allow")

    id: str
    phone_number: str
    name: str | None = None
    contact_id: str | None = None
    status: str
    call_record_id: str | None = None
    attempted_at: str | None = None
    completed_at: str | None = None


class BatchAnswer(BaseModel):
    """Answer to create and update."""

    batch: Batch


class ListAnswer(BaseModel):
    batches: list[Batch]


class GetAnswer(BaseModel):
    batch: Batch
    recipients: list[RecipientState]
    runs: list | None = None


class ActionAnswer(BaseModel):
    """Answer to start and cancel."""

    success: bool
    message: str | None = None


class ErrorAnswer(BaseModel):
    error: str
