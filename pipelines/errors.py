"""Every error the tool raises on purpose, in one tree; the CLI maps each to one line and an exit code.

    CampaignError ······················· exit 1  a bug (the base; never raised as such)
    ├── UsageError ······················ exit 2  bad flags, configuration or campaign name
    │   └── CampaignStopped ············· exit 2  the campaign was cancelled: `campaigns resume` first
    ├── InputError ······················ exit 3  a spreadsheet that cannot be read or mapped
    ├── SubmissionPending ··············· exit 4  the run left chunks pending; the next run resumes them
    ├── ProviderError ··················· exit 5  an answer we cannot go on from (4xx, unreadable)  retry: never
    │   ├── NotFoundError ··············· exit 5  the provider has no such batch (404)             retry: never
    │   ├── TransientProviderError ······ exit 5  not processed (429, 503): send again              retry: resend
    │   │   └── ProviderUnreachable ····· exit 5  no connection at all: send again, or end pending retry: resend
    │   └── AmbiguousOutcome ············ exit 5  a change that may have happened (timeout, reset,  retry: read back
    │                                             5xx): read it back, never send it again blindly
    ├── LockHeld ························ exit 6  another run holds the campaign's lock
    ├── StorageError ···················· exit 7  a local file cannot be written (disk full, read-only)
    │   └── PublishError ················ exit 7  the DuckDB file was not updated; the ledger is intact
    └── LedgerConflict ·················· exit 1  the ledger is not as this run expected
        ├── ConcurrentChange ············ exit 1  another process moved a chunk, or holds its numbers
        └── IllegalTransition ··········· exit 1  a bug: a move the state machine does not have

`exit_code` and `retry` are class attributes, read by the CLI (pipelines.cli) and the
retry loop (pipelines.providers.retry) respectively; nothing decides on a message's text.
Exceptions a module uses only inside itself (the sandbox's HTTP refusals, a reader's
"this is binary" signal) stay in that module and never reach a user.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README. Scripts and cron branch on these."""

    OK = 0
    INTERNAL = 1  # a bug: please report it
    USAGE = 2  # bad flags or configuration
    BAD_INPUT = 3  # a file that cannot be read or mapped
    PENDING = 4  # submission left chunks pending; the next run resumes them first
    PROVIDER = 5  # provider unreachable, or it refused our credentials
    LOCKED = 6  # another run holds the campaign's lock
    STORAGE = 7  # a local file cannot be written (disk full, read-only, permissions); the ledger stays consistent


class Retry(Enum):
    """What the retry loop may do after an error from a provider request."""

    NEVER = "never"  # the answer stands: retrying would get the same
    RESEND = "resend"  # the request was not processed: sending it again is safe
    READ_BACK = "read back"  # it may have been processed: read the result, never resend blindly


class CampaignError(Exception):
    """Base of every error the tool raises on purpose. `str()` is the one line a person sees.

    The message passes pipelines.redact on the way in: no registered secret survives in it,
    wherever it is printed, logged or stored.
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    retry: Retry = Retry.NEVER

    def __init__(self, message: str = "", *args):
        from pipelines.redact import redact

        super().__init__(redact(str(message)), *args)


class UsageError(CampaignError):
    """The command line or the configuration is wrong."""

    exit_code = ExitCode.USAGE


class CampaignStopped(UsageError):
    """The campaign was cancelled (an emergency stop): it takes nothing new until `campaigns resume`."""


class InputError(CampaignError):
    """A spreadsheet cannot be read or mapped; carries the file (and row) it is about.

    `code` is stable (not_found, unreadable, too_large, no_phone_column, …). Anything
    quoted from the file (its headers, a parser's complaint) goes in `detail`, shown on a
    terminal but left out of `unquoted` — what an unattended log or a `.why.txt` shows.
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None, code: str = "bad_input",
                 detail: str | None = None):  # fmt: skip
        where = f"{path}" + (f", row {row}" if row is not None else "") if path else ""
        self.unquoted = f"{where}: {message}" if where else message
        super().__init__(self.unquoted + (f" ({detail})" if detail else ""))
        self.path = path
        self.row = row
        self.code = code


class SubmissionPending(CampaignError):
    """The run ended with chunks not yet started; they resume first on the next run."""

    exit_code = ExitCode.PENDING


class ProviderError(CampaignError):
    """The provider answered in a way we cannot proceed from (4xx other than 429, bad answer)."""

    exit_code = ExitCode.PROVIDER

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class NotFoundError(ProviderError):
    """The provider has no such batch."""


class TransientProviderError(ProviderError):
    """The request did not take effect and may be sent again (429, 503; `retry_after` seconds if the provider said)."""

    retry = Retry.RESEND

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ProviderUnreachable(TransientProviderError):
    """No connection to the provider at all. A request is sent again; a run that still cannot reach it ends with
    what was planned left pending for the next run (exit 5)."""


class AmbiguousOutcome(ProviderError):
    """A mutating request may or may not have taken effect (timeout, reset, 5xx): read back, never resend."""

    retry = Retry.READ_BACK


class LockHeld(CampaignError):
    """Another run holds this campaign's lock."""

    exit_code = ExitCode.LOCKED


class StorageError(CampaignError):
    """A local file (the ledger, the report database, an output file) cannot be written: disk full, read-only, permissions.

    What the ledger committed before stays committed; the next run carries on from it.
    """

    exit_code = ExitCode.STORAGE


class PublishError(StorageError):
    """The DuckDB file could not be updated; the ledger is intact and the next command that publishes repairs it."""


class LedgerConflict(CampaignError):
    """The ledger is not as this run expected."""


class ConcurrentChange(LedgerConflict):
    """A chunk was not in the state we expected (someone else moved it), or a plan holds numbers the campaign has."""


class IllegalTransition(LedgerConflict):
    """A bug: code asked for a move the state machine does not have."""
