"""Watch stage: import every new spreadsheet dropped into an inbox exactly once, for cron.

A cycle: take the campaign's lock → resume its pending batches → for each file that has
stopped changing, skip it if its content was imported before (any name), else import
it → move it to processed/ (or failed/ with a sidecar saying why).
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipelines.settings import Settings
from pipelines.errors import CampaignError, ExitCode, InputError, LockHeld
from pipelines.ingest.options import IngestOptions
from pipelines.ledger import Ledger
from pipelines.logs import EventLog
from pipelines.ingest.ahead import file_sha256
from pipelines.ingest.read import SUPPORTED
from pipelines.run import campaign_lock, import_and_submit, pending_error, submit_pending
from pipelines.workspace import Workspace
from schemas.ledger import ChunkState

PROCESSED, FAILED = "processed", "failed"
IGNORED_SUFFIXES = (".partial", ".part", ".tmp", ".crdownload", ".why.txt")
# When several things went wrong in one cycle, the exit code names the most urgent.
SEVERITY = [ExitCode.INTERNAL, ExitCode.LOCKED, ExitCode.USAGE, ExitCode.PROVIDER, ExitCode.STORAGE, ExitCode.PENDING,
            ExitCode.BAD_INPUT]


@dataclass(frozen=True)
class Inbox:
    """One folder watched for one campaign, with that campaign's settings."""

    folder: Path
    options: IngestOptions
    settings: Settings
    pattern: str = "*"


@dataclass
class CycleResult:
    imported: list[str] = field(default_factory=list)
    already_imported: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    codes: set[ExitCode] = field(default_factory=set)

    @property
    def exit_code(self) -> ExitCode:
        return next((code for code in SEVERITY if code in self.codes), ExitCode.OK)


def candidates(inbox: Inbox) -> tuple[list[Path], list[Path]]:
    """Spreadsheets waiting in the inbox, oldest first (no hidden, temporary or Excel lock files), and the
    entries refused unread: symbolic links, and anything that resolves outside the inbox."""
    files, refused = [], []
    home = inbox.folder.resolve()
    for path in inbox.folder.iterdir():
        name = path.name
        if name.startswith((".", "~$")) or name.endswith(IGNORED_SUFFIXES) or name in (PROCESSED, FAILED):
            continue
        if not fnmatch.fnmatch(name, inbox.pattern):
            continue
        if path.is_symlink() or path.resolve().parent != home:
            refused.append(path)
            continue
        if not path.is_file() or path.suffix.lower() not in SUPPORTED:
            continue
        files.append(path)
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name)), refused


def stable(paths: list[Path], settle_seconds: float, sleep: Callable[[float], None] = time.sleep) -> tuple[list[Path], list[Path]]:
    """Split files into those whose size and mtime did not change over `settle_seconds`, and the rest."""
    before = {p: _signature(p) for p in paths}
    if paths and settle_seconds > 0:
        sleep(settle_seconds)
    ready, moving = [], []
    for path in paths:
        now = _signature(path)
        (ready if now is not None and now == before[path] else moving).append(path)
    return ready, moving


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def run_cycle(inbox: Inbox, ledger: Ledger, log: EventLog, *, settle_seconds: float) -> CycleResult:
    """One pass over the inbox under the campaign's lock."""
    workspace = Workspace(inbox.settings, ledger)  # the entry's settings over the one ledger
    result = CycleResult()
    campaign = inbox.options.campaign
    (inbox.folder / PROCESSED).mkdir(exist_ok=True)
    (inbox.folder / FAILED).mkdir(exist_ok=True)
    try:
        with campaign_lock(ledger, campaign):
            stopped = ledger.stopped_at(campaign)
            if stopped is not None:  # an emergency stop holds for cron too: files wait in the inbox
                log.error("campaign_stopped", campaign=campaign, stopped_at=stopped.isoformat(),
                          message=f"cancelled; nothing is imported until `campaigns resume --campaign {campaign}`")  # fmt: skip
                result.codes.add(ExitCode.USAGE)
                return result
            _resume(campaign, workspace, log, result)
            files, refused = candidates(inbox)
            for path in refused:
                _fail(path, inbox, log, result, InputError(
                    "a symbolic link, or a file outside the inbox: refused unread (drop the file itself into the inbox)",
                    path=path.name, code="outside_inbox"))  # fmt: skip
            ready, moving = stable(files, settle_seconds)
            for path in moving:
                result.deferred.append(path.name)
                log.info("file_still_changing", campaign=campaign, file=path.name)
            for path in ready:
                if path.stat().st_size == 0:  # stable and still empty after the settle time: nothing will come
                    _fail(path, inbox, log, result, InputError("file is empty (0 bytes)", path=path.name, code="empty"))
                    continue
                _one_file(path, inbox, workspace, log, result)
    except LockHeld as exc:
        log.error("lock_held", campaign=campaign, message=str(exc))
        result.codes.add(ExitCode.LOCKED)
    return result


def _resume(campaign: str, workspace: Workspace, log: EventLog, result: CycleResult) -> None:
    ledger = workspace.ledger
    if not ledger.pending_chunks(campaign) and not ledger.chunks(campaign, [ChunkState.CANCELLING]):
        return
    try:
        report, _ = submit_pending(campaign, workspace)
    except CampaignError as exc:
        log.error("resume_failed", campaign=campaign, message=str(exc), exit_code=int(exc.exit_code))
        result.codes.add(exc.exit_code)
        return
    log.info("resumed", campaign=campaign, started=len(report.started), pending=len(report.pending))
    if report.pending:
        result.codes.add(pending_error(report).exit_code)
    if report.publish_error is not None:
        result.codes.add(ExitCode.STORAGE)
        log.error("report_not_updated", campaign=campaign, message=str(report.publish_error))


def _one_file(path: Path, inbox: Inbox, workspace: Workspace, log: EventLog, result: CycleResult) -> None:
    campaign, ledger = inbox.options.campaign, workspace.ledger
    try:
        digest = file_sha256(path)
    except OSError as exc:
        _fail(path, inbox, log, result, InputError(f"cannot read file ({exc.strerror})", path=path.name, code="unreadable"))
        return
    earlier = ledger.import_with_content(campaign, digest)
    if earlier is not None:
        target = _move(path, inbox.folder / PROCESSED)
        result.already_imported.append(path.name)
        log.info("file_already_imported", campaign=campaign, file=path.name, import_id=earlier, moved_to=str(target))
        return
    try:
        run = import_and_submit([path], inbox.options, workspace, lock=False, hashes=[digest])
    except InputError as exc:
        if exc.code == "changed_while_reading":  # still being written after all: the next run takes it
            result.deferred.append(path.name)
            log.info("file_still_changing", campaign=campaign, file=path.name)
            return
        _fail(path, inbox, log, result, exc)
        return
    except CampaignError as exc:
        # the file's contacts are already in the ledger; the next cycle resumes their batches
        planned = ledger.import_with_content(campaign, digest) is not None
        target = _move(path, inbox.folder / PROCESSED) if planned else None
        result.codes.add(exc.exit_code)
        log.error("submission_incomplete", campaign=campaign, file=path.name, message=str(exc),
                  moved_to=str(target) if target else None)  # fmt: skip
        return
    except Exception as exc:  # noqa: BLE001 - a bug must not block the inbox: this file fails, the others go through
        _fail(path, inbox, log, result, InputError(f"internal error ({type(exc).__name__}); please report it", path=path.name,
                                                    code="internal"), exit_code=ExitCode.INTERNAL)  # fmt: skip
        return
    target = _move(path, inbox.folder / PROCESSED)
    summary = run.summary
    counts = {k: getattr(summary, k) for k in ("rows_read", "accepted", "duplicates", "rejected", "suppressed", "already_submitted",
                                               "cooled_down", "state_capped")}
    counts["batches"] = len(summary.batches)
    if run.report.pending:
        result.codes.add(pending_error(run.report).exit_code)
    if run.report.publish_error is not None:
        result.codes.add(ExitCode.STORAGE)
        log.error("report_not_updated", campaign=campaign, message=str(run.report.publish_error))
    result.imported.append(path.name)
    log.info("file_imported", campaign=campaign, file=path.name, counts=counts, pending=len(run.report.pending) or None,
             moved_to=str(target))  # fmt: skip


def _fail(path: Path, inbox: Inbox, log: EventLog, result: CycleResult, exc: InputError, exit_code: ExitCode | None = None) -> None:
    """Move a file to failed/ with a sidecar saying why, in words that quote nothing from the file."""
    target = _move(path, inbox.folder / FAILED)
    code = exit_code or exc.exit_code
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    message = exc.unquoted.replace(str(path), path.name)  # every message names the file the same way
    target.with_name(target.name + ".why.txt").write_text(
        f"{message}\nreason: {exc.code}\nexit code: {int(code)}\nat: {stamp}\n", encoding="utf-8"
    )
    result.failed.append(path.name)
    result.codes.add(code)
    log.error("file_failed", campaign=inbox.options.campaign, file=path.name, reason=exc.code, message=message,
              moved_to=str(target))  # fmt: skip


def _move(path: Path, folder: Path) -> Path:
    """Move into folder; an existing name gets a UTC timestamp so nothing is overwritten."""
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    path.replace(target)
    return target
