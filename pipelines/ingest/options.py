"""How one import reads and cuts its files, built from the settings by ingest_options()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.ingest.hours import CallingHours
from pipelines.ingest.read import MAX_WORKBOOK_BYTES, HeaderRule
from pipelines.ingest.states import NO_RULES, Rules, load_rules
from pipelines.providers.registry import batch_limit

if TYPE_CHECKING:
    from pipelines.settings import Settings


@dataclass(frozen=True)
class IngestOptions:
    """How to read and cut one import."""

    campaign: str
    region: str = "US"
    phone_columns: tuple[str, ...] = ()  # named phone columns, in priority order (empty: detected)
    sheet: str | None = None
    header_row: int | None = None  # the header's row number as the spreadsheet shows it (None: found, see HeaderRule)
    encoding: str | None = None  # of delimited text and JSON Lines (None: detected)
    roles: dict[str, str | None] = field(default_factory=dict)  # name / country / timezone: a header detection cannot find
    variables: tuple[str, ...] = ()  # only these columns become variables (empty: every other column)
    exclude_columns: tuple[str, ...] = ()  # columns that never become variables
    batch_size: int = 1000
    hours: CallingHours = field(default_factory=CallingHours)  # local calling window and days
    rules: Rules = NO_RULES  # what each US state adds to `hours` for its residents (the shipped rules, unless told)
    max_workbook_bytes: int = MAX_WORKBOOK_BYTES  # a zipped workbook expanding beyond this is refused (too_large)

    @property
    def header(self) -> HeaderRule:
        return HeaderRule(self.header_row, self.phone_columns)


def ingest_options(settings: Settings, campaign: str, provider: str) -> IngestOptions:
    """How to read and cut one campaign's files, from its settings: the batch size is capped at the provider's limit,
    a calling window outside 08:00-21:00 is refused unless allow_any_hour, and the state rules are read."""
    hours = CallingHours.parse(settings.window, settings.days)
    hours.check(settings.allow_any_hour)
    return IngestOptions(
        campaign=campaign, region=settings.region, phone_columns=settings.phone_columns, sheet=settings.sheet, header_row=settings.header_row,
        variables=settings.variables, exclude_columns=settings.exclude_columns, encoding=settings.encoding,
        roles={"name": settings.name_column, "country": settings.country_column, "timezone": settings.timezone_column,
               "state": settings.state_column},
        batch_size=batch_limit(provider, settings.batch_size), hours=hours, rules=load_rules(settings.rules),
        max_workbook_bytes=int(settings.max_workbook_mb * 2**20),
    )  # fmt: skip
