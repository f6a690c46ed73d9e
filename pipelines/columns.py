"""Columns stage: find the phone, name, country and timezone columns; every other column is a variable."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipelines.errors import InputError
from schemas.contacts import EXTENSION_VARIABLE

PHONE_HEADERS = {
    "phone", "phonenumber", "phoneno", "phonenum", "mobile", "mobilenumber", "mobilephone", "mobileno",
    "cell", "cellphone", "cellnumber", "tel", "telephone", "telephonenumber", "tonumber", "contactnumber",
    "contactphone", "number", "msisdn", "phone1", "primaryphone", "whatsapp", "whatsappnumber",
}  # fmt: skip
NAME_HEADERS = {"name", "fullname", "contactname", "customername", "recipientname", "displayname"}
FIRST_NAME_HEADERS = {"firstname", "first", "givenname", "forename", "fname"}
LAST_NAME_HEADERS = {"lastname", "last", "surname", "familyname", "lname"}
TIMEZONE_HEADERS = {"timezone", "tz", "timezonename", "ianatimezone", "recipienttimezone", "localtimezone"}
COUNTRY_HEADERS = {"country", "countrycode", "countryiso", "isocountry", "iso2", "regioncode"}


def header_token(header: str) -> str:
    """'Phone Number' → 'phonenumber': case, spaces and punctuation ignored when matching."""
    return re.sub(r"[^0-9a-z]", "", header.casefold())


def variable_key(header: str) -> str:
    """'First Name' → 'first_name', 'accountId' → 'account_id': a dynamic-variable key."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", header.strip())
    key = re.sub(r"[^0-9a-z]+", "_", text.casefold()).strip("_")
    return key or "column"


@dataclass(frozen=True)
class ColumnMap:
    """Which header plays which part. Indexes point into RawSheet.headers."""

    phone: int
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    country: int | None = None
    timezone: int | None = None  # overrides the zone derived from the number
    variables: dict[str, int] = field(default_factory=dict)  # variable key → header index


def map_columns(headers: list[str], *, label: str, phone_column: str | None = None) -> ColumnMap:
    """Choose the phone column (or take `phone_column`), the name parts and the variables."""
    tokens = [header_token(header) for header in headers]
    phone = _find_phone(headers, tokens, label, phone_column)

    def unique(candidates: set[str]) -> int | None:
        found = [i for i, token in enumerate(tokens) if token in candidates and i != phone]
        return found[0] if len(found) == 1 else None

    name = unique(NAME_HEADERS)
    first = unique(FIRST_NAME_HEADERS)
    last = unique(LAST_NAME_HEADERS)
    country = unique(COUNTRY_HEADERS)
    timezone = unique(TIMEZONE_HEADERS)

    # The phone, a single name column and the country are fields of the recipient; first
    # and last names are also kept as variables because agents greet people by first name.
    taken = {i for i in (phone, name, country, timezone) if i is not None}
    variables: dict[str, int] = {}
    for index, header in enumerate(headers):
        if index in taken:
            continue
        key = variable_key(header)
        if key == EXTENSION_VARIABLE:
            raise InputError("a column clashes with the variable the tool sets for extensions", path=label,
                             code="duplicate_variable", detail=f"column {header!r}")  # fmt: skip
        if key in variables:
            other = headers[variables[key]]
            raise InputError("two columns become the same variable; rename one", path=label, code="duplicate_variable",
                             detail=f"{other!r} and {header!r} both become {key!r}")  # fmt: skip
        variables[key] = index
    return ColumnMap(phone, name, first, last, country, timezone, variables)


def _find_phone(headers: list[str], tokens: list[str], label: str, phone_column: str | None) -> int:
    found_list = ", ".join(repr(h) for h in headers) or "(none)"
    if phone_column is not None:
        exact = [i for i, header in enumerate(headers) if header == phone_column]
        loose = [i for i, token in enumerate(tokens) if token == header_token(phone_column)]
        match = exact or loose
        if len(match) != 1:
            problem = "no column" if not match else "several columns"
            raise InputError(f"{problem} named {phone_column!r}", path=label, code="no_phone_column", detail=f"headers found: {found_list}")
        return match[0]
    candidates = [i for i, token in enumerate(tokens) if token in PHONE_HEADERS]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InputError("no phone column found; name it with --phone-column", path=label, code="no_phone_column",
                         detail=f"headers found: {found_list}")  # fmt: skip
    names = ", ".join(repr(headers[i]) for i in candidates)
    raise InputError("several phone columns; choose one with --phone-column", path=label, code="several_phone_columns",
                     detail=names)  # fmt: skip
