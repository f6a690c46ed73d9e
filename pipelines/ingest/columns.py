"""Columns stage: find the phone, name, country, timezone and state columns; every other column (the state's too) is a variable."""

from __future__ import annotations

import re
from collections.abc import Sequence
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
STATE_HEADERS = {"state", "usstate", "stateregion", "stateprovince", "stateorprovince", "mailingstate", "billingstate",
                 "shippingstate", "homestate", "residencestate"}  # fmt: skip
TIMEZONE_HEADERS = {"timezone", "tz", "timezonename", "ianatimezone", "recipienttimezone", "localtimezone"}
COUNTRY_HEADERS = {
    "country", "countrycode", "countryiso", "isocountry", "iso2", "regioncode", "countryregion", "mailingcountry",
    "billingcountry", "shippingcountry",
}  # fmt: skip
# A phone column of a CRM export: "Mobile Phone", "Work Phone", "Business Phone", "Phone 1 - Value",
# "Mobile Phone Number", "Home Tel" … (tokens, see header_token).
PHONE_PATTERN = re.compile(
    r"(?:primary|main|other|direct|work|business|home|office|company|personal|mobile|cell|contact)?"
    r"(?:phone|mobile|cell|cellular|telephone|tel)(?:phone)?(?:number|no|num)?\d*(?:value)?"
)
MOBILE_WORDS = ("mobile", "cell")  # among several phone columns, these come first


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

    phones: tuple[int, ...]  # every phone column, in priority order
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    country: int | None = None
    timezone: int | None = None  # overrides the zone derived from the number
    variables: dict[str, int] = field(default_factory=dict)  # variable key → header index
    unmatched: tuple[str, ...] = ()  # what --variables / --exclude-column name that no header of this file is
    state: int | None = None  # the recipient's US state, over the area code's (also a variable: agents may use it)
    notes: tuple[str, ...] = ()  # what an import warns about how the columns were read (several state columns)

    @property
    def phone(self) -> int:
        """The first phone candidate (the one a contact's number comes from when it is valid)."""
        return self.phones[0]


def is_phone_header(token: str) -> bool:
    """Is this header (as a token) a phone column's?"""
    return token in PHONE_HEADERS or PHONE_PATTERN.fullmatch(token) is not None


def phone_candidates(headers: list[str], *, label: str, phone_columns: Sequence[str] = ()) -> list[int]:
    """Every phone column, in priority order: the named ones first (in the order given; a file uses those it has, and
    is an error only if it has none of them), then every other recognised phone header, mobile and cell columns first,
    then the others left to right."""
    tokens = [header_token(header) for header in headers]
    found_list = ", ".join(repr(h) for h in headers) or "(none)"
    if phone_columns:
        chosen = []
        for wanted in phone_columns:
            exact = [i for i, header in enumerate(headers) if header == wanted]
            loose = [i for i, token in enumerate(tokens) if token == header_token(wanted)]
            match = exact or loose
            if len(match) > 1:
                raise InputError(f"several columns named {wanted!r}", path=label, code="no_phone_column", detail=f"headers found: {found_list}")
            chosen += [i for i in match if i not in chosen]
        if not chosen:
            named = ", ".join(repr(c) for c in phone_columns)
            raise InputError(f"no column named {named}", path=label, code="no_phone_column", detail=f"headers found: {found_list}")
    else:
        chosen = []
    found = [i for i, token in enumerate(tokens) if is_phone_header(token) and i not in chosen]
    if chosen:
        mobile = [i for i in found if any(word in tokens[i] for word in MOBILE_WORDS)]
        return chosen + mobile + [i for i in found if i not in mobile]
    if not found:
        raise InputError("no phone column found; name it with --phone-column", path=label, code="no_phone_column",
                         detail=f"headers found: {found_list}")  # fmt: skip
    mobile = [i for i in found if any(word in tokens[i] for word in MOBILE_WORDS)]
    return mobile + [i for i in found if i not in mobile]


def map_columns(
    headers: list[str], *, label: str, phone_column: str | None = None, phone_columns: Sequence[str] = (),
    keep: Sequence[str] = (), exclude: Sequence[str] = (), roles: dict[str, str | None] | None = None,
) -> ColumnMap:
    """Choose the phone columns (or take `phone_column` / `phone_columns`), the name parts and the variables.

    Every phone column is a candidate, in priority order (phone_candidates): a contact's number is the first that
    holds a valid one; in a do-not-call file each of a row's numbers is blocked. `keep` (--variables): only these
    columns become variables (a file uses those it has, and is an error only if it has none); `exclude`
    (--exclude-column): these never do. Both name a column by its header or its variable key, in any case.
    `roles` ({"name" | "country" | "timezone" | "state": header}: --name-column, --country-column, …) names the
    columns detection cannot find; a named column the file lacks is an error.
    """
    tokens = [header_token(header) for header in headers]
    phones = phone_candidates(headers, label=label, phone_columns=[phone_column] if phone_column else phone_columns)

    def resolve(role: str, header: str) -> int:
        exact = [i for i, h in enumerate(headers) if h == header]
        match = exact or [i for i, token in enumerate(tokens) if token == header_token(header)]
        if len(match) != 1 or match[0] in phones:
            why = "no column" if not match else "several columns" if len(match) > 1 else "the phone column is"
            raise InputError(f"--{role}-column {header!r}: {why} named so", path=label, code="no_such_column",
                             detail=f"headers found: {', '.join(repr(h) for h in headers)}")  # fmt: skip
        return match[0]

    explicit = {role: resolve(role, header) for role, header in (roles or {}).items() if header}  # named: never detected for another role

    def candidates_of(names: set[str]) -> list[int]:
        return [i for i, token in enumerate(tokens) if token in names and i not in phones and i not in explicit.values()]

    def unique(names: set[str]) -> int | None:
        found = candidates_of(names)
        return found[0] if len(found) == 1 else None

    def named(role: str, names: set[str]) -> int | None:
        return explicit[role] if role in explicit else unique(names)

    name = named("name", NAME_HEADERS)
    first = unique(FIRST_NAME_HEADERS)
    last = unique(LAST_NAME_HEADERS)
    country = named("country", COUNTRY_HEADERS)
    timezone = named("timezone", TIMEZONE_HEADERS)
    state = named("state", STATE_HEADERS)
    notes = ()
    if "state" not in explicit and len(candidates_of(STATE_HEADERS)) > 1:
        found = ", ".join(repr(headers[i]) for i in candidates_of(STATE_HEADERS))
        notes = (f"{label}: several columns could be the US state ({found}); none is used, the area code decides: name one "
                 "with --state-column",)  # fmt: skip

    # The phones, a single name column and the country are fields of the recipient; first
    # and last names are also kept as variables because agents greet people by first name.
    taken = {i for i in (*phones, name, country, timezone) if i is not None}
    wanted = {header_token(column) for column in keep}
    unwanted = {header_token(column) for column in exclude}
    if wanted and not any(tokens[i] in wanted for i in range(len(headers)) if i not in taken):
        fields = [repr(headers[i]) for i in sorted(taken) if tokens[i] in wanted]
        why = (f"{', '.join(fields)} {'is' if len(fields) == 1 else 'are'} the phone, name, country or timezone, not "
               "variables" if fields else f"headers found: {', '.join(repr(h) for h in headers)}")  # fmt: skip
        raise InputError("none of the --variables columns is in the file", path=label, code="no_variable_column",
                         detail=f"asked for {', '.join(repr(c) for c in keep)}; {why}")  # fmt: skip
    variables: dict[str, int] = {}
    for index, header in enumerate(headers):
        if index in taken or tokens[index] in unwanted or (wanted and tokens[index] not in wanted):
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
    unmatched = tuple(f"{flag} {column!r}" for flag, given in (("--variables", keep), ("--exclude-column", exclude))
                      for column in given if header_token(column) not in tokens)  # fmt: skip
    return ColumnMap(tuple(phones), name, first, last, country, timezone, variables, unmatched, state, notes)
