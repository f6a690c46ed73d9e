"""One exception family for the project; the CLI maps each to one line and an exit code."""

from __future__ import annotations

from enum import IntEnum


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


class CampaignError(Exception):
    """Base of every error the tool raises on purpose. `str()` is the one line a person sees.

    The message passes pipelines.redact on the way in: no registered secret survives in it,
    wherever it is printed, logged or stored.
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    transient: bool = False  # retry code decides on this, never on the message

    def __init__(self, message: str = "", *args):
        from pipelines.redact import redact

        super().__init__(redact(str(message)), *args)


class UsageError(CampaignError):
    """The command line or the configuration is wrong."""

    exit_code = ExitCode.USAGE


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


class ProviderError(CampaignError):
    """The provider answered in a way we cannot proceed from (4xx other than 429, bad answer)."""

    exit_code = ExitCode.PROVIDER

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class TransientProviderError(ProviderError):
    """The request did not take effect and may be sent again (connection refused, 429, 503)."""

    transient = True

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None, unreachable: bool = False
    ):
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after
        self.unreachable = unreachable  # no connection at all, as opposed to a refusal or a slow answer


class AmbiguousOutcome(ProviderError):
    """A mutating request may or may not have taken effect (timeout, reset, 5xx): read back, never resend."""

    transient = True


class SubmissionPending(CampaignError):
    """The run ended with chunks not yet started; they resume first on the next run."""

    exit_code = ExitCode.PENDING


class CampaignStopped(UsageError):
    """The campaign was cancelled (an emergency stop): it takes nothing new until `campaigns resume`."""


class LockHeld(CampaignError):
    """Another run holds this campaign's lock."""

    exit_code = ExitCode.LOCKED


class ProviderUnreachable(CampaignError):
    """The provider could not be reached at all; what was planned stays pending for the next run."""

    exit_code = ExitCode.PROVIDER


class StorageError(CampaignError):
    """A local file (the ledger, the report database, an output file) cannot be written: disk full, read-only, permissions.

    What the ledger committed before stays committed; the next run carries on from it.
    """

    exit_code = ExitCode.STORAGE
