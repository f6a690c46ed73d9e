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


class CampaignError(Exception):
    """Base of every error the tool raises on purpose. `str()` is the one line a person sees."""

    exit_code: ExitCode = ExitCode.INTERNAL
    transient: bool = False  # retry code decides on this, never on the message


class UsageError(CampaignError):
    """The command line or the configuration is wrong."""

    exit_code = ExitCode.USAGE


class InputError(CampaignError):
    """A spreadsheet cannot be read or mapped; carries the file (and row) it is about."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None):
        where = f"{path}" + (f", row {row}" if row is not None else "") if path else ""
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.row = row


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


class LockHeld(CampaignError):
    """Another run holds this campaign's lock."""

    exit_code = ExitCode.LOCKED


class ProviderUnreachable(CampaignError):
    """The provider could not be reached at all; what was planned stays pending for the next run."""

    exit_code = ExitCode.PROVIDER
