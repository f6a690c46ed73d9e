"""The shapes of an import: reject reasons, frame columns and the import summary."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class RejectReason(StrEnum):
    """Why a row was not accepted. Stable codes: callers branch on these, never on messages."""

    EMPTY = "empty"  # the phone cell (or the whole row) is blank
    NOT_A_NUMBER = "not_a_number"  # phonenumbers found no phone number in the text
    INVALID_COUNTRY_CODE = "invalid_country_code"  # +999… or a country calling code that does not exist
    TOO_SHORT = "too_short"  # fewer digits than any number of that country
    TOO_LONG = "too_long"  # more digits than any number of that country
    INVALID = "invalid"  # right length, but not a number that can exist (bad area code, …)
    PRECISION_LOST = "precision_lost"  # 4.15555E+09: a spreadsheet dropped digits; never guessed
    INVALID_REGION = "invalid_region"  # the row's country column is not an ISO 3166 alpha-2 code
    INVALID_TIMEZONE = "invalid_timezone"  # the row's timezone column is not an IANA name such as America/Chicago
    NEVER_CALLABLE = "never_callable"  # the calling window (within its state's rule) never opens in all of the number's zones at once
    MALFORMED_ROW = "malformed_row"  # a row of delimited text with more fields than the header


# Columnar stages carry reasons as small integers (an int8 per row, not a Python object):
# 0 is "no reason" (accepted), then the enum in declaration order. Only the order above matters.
REASON_BY_CODE: tuple[RejectReason | None, ...] = (None, *RejectReason)
REASON_CODE: dict[RejectReason, int] = {reason: code for code, reason in enumerate(REASON_BY_CODE) if reason is not None}


# Column names of the frames that flow between stages. Kept here so every stage and
# every output file agrees on them.
SOURCE_FILE = "source_file"
SOURCE_SHEET = "source_sheet"
SOURCE_ROW = "source_row"
RAW_VALUE = "raw_value"
REGION = "region"
E164 = "e164"
NAME = "name"
REASON = "reason"
DETAIL = "detail"  # what exactly was wrong, where the reason alone does not say (the country value, the window)
EXTENSION_VARIABLE = "phone_extension"
DYNAMIC_VARIABLES = "dynamic_variables"
DUPLICATE_OF_FILE = "duplicate_of_file"
DUPLICATE_OF_ROW = "duplicate_of_row"
CHUNK_KEY = "chunk_key"
TIMEZONE = "timezone"  # the recipient's zone set: "America/New_York", or "America/Halifax|America/St_Johns"
STATE = "state"  # the recipient's US state (USPS code: its state column, else its area code's), "" outside the US states
VARIABLE_PREFIX = "var:"  # wide variable columns in the contacts frame: "var:first_name"

PHONE_COLUMN = "phone_column"  # the header of the column a contact's number came from (several phone columns)
ACCEPTED_COLUMNS = [E164, NAME, SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, PHONE_COLUMN, TIMEZONE, STATE, CHUNK_KEY, DYNAMIC_VARIABLES]
REJECTED_COLUMNS = [SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, RAW_VALUE, REASON, DETAIL]
DUPLICATE_COLUMNS = [SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, E164, DUPLICATE_OF_FILE, DUPLICATE_OF_ROW]


class BatchPlan(BaseModel):
    """One chunk of an import: the unit that becomes one provider batch."""

    model_config = ConfigDict(frozen=True)

    key: str
    size: int
    timezone: str = "UTC"  # every member's zone set; a chunk never mixes them
    us_state: str = ""  # every member's US state (its calling rules); a chunk never mixes them
    provider_batch_id: str | None = None
    status: str | None = None


class FileCounts(BaseModel):
    """Row accounting for one source file (or sheet): rows_read = accepted + duplicates + rejected + suppressed.

    already_submitted, cooled_down and state_capped are the parts of `accepted` that are not
    put into batches (taken by the campaign before; called by some campaign within the
    cooldown; called as often in the last 24 hours as the recipient's state allows).
    """

    source_file: str
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    suppressed: int = 0
    already_submitted: int = 0
    cooled_down: int = 0
    state_capped: int = 0


class ImportSummary(BaseModel):
    """What an import did, as printed by `--json`. rows_read = accepted + duplicates + rejected + suppressed."""

    campaign: str
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    suppressed: int = 0
    already_submitted: int = 0
    cooled_down: int = 0
    state_capped: int = 0
    files: list[FileCounts] = Field(default_factory=list)
    batches: list[BatchPlan] = Field(default_factory=list)
    dry_run: bool = True
    held: bool = False  # planned into the ledger, nothing submitted (import --hold)
    warnings: list[str] = Field(default_factory=list)  # about how files were read (lines in another encoding)
