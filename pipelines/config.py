"""Settings: built once at the CLI edge from flags, campaigns.toml and the environment, then passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, field_validator

from pipelines.errors import UsageError

Provider = Literal["sandbox", "magpipe", "batchcall"]
DEFAULT_HOME = Path(".campaigns")


class IngestSettings(BaseModel):
    """How an import reads and cuts its files."""

    model_config = ConfigDict(frozen=True)

    home: Path = DEFAULT_HOME
    provider: Provider = "sandbox"
    region: str = "US"
    batch_size: int | None = None

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        value = value.upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}: use an ISO 3166 alpha-2 code such as US, GB, DE")
        return value

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("--batch-size must be at least 1")
        return value


def build(model: type[BaseModel], **values):
    """Validate settings, turning pydantic's errors into one line for a person."""
    from pydantic import ValidationError

    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(str(first["msg"]).removeprefix("Value error, ")) from None
