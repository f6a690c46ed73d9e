"""Column detection: phone, name parts, country, and variable keys."""

from __future__ import annotations

import pytest

from pipelines.ingest.columns import map_columns, variable_key
from pipelines.errors import InputError


@pytest.mark.parametrize(
    "header",
    ["phone", "Phone Number", "phone_number", "MOBILE", "Mobile Number", "cell", "Tel", "telephone", "to_number", "Contact-Number", "number"],
)
def test_phone_header_variants(header):
    assert map_columns(["Name", header, "Notes"], label="f.csv").phone == 1


def test_no_phone_column_lists_headers():
    with pytest.raises(InputError, match=r"no phone column found; name it with --phone-column \(headers found: 'Name', 'Email'\)"):
        map_columns(["Name", "Email"], label="f.csv")


def test_several_phone_columns_are_all_candidates_mobiles_first_unless_named():
    assert map_columns(["Phone", "Mobile"], label="f.csv").phones == (1, 0)
    assert map_columns(["Phone", "Mobile"], label="f.csv", phone_column="Phone").phones == (0, 1)  # named first, then the rest
    assert map_columns(["Phone", "Mobile", "Work Phone"], label="f.csv", phone_columns=["Work Phone", "Phone"]).phones == (2, 0, 1)


def test_phone_column_flag_must_exist():
    with pytest.raises(InputError, match="no column named 'Cell2'"):
        map_columns(["Phone"], label="f.csv", phone_column="Cell2")


def test_roles_and_variables():
    columns = map_columns(["First Name", "Last Name", "Phone", "Country", "Appointment Time", "accountId"], label="f")
    assert (columns.first_name, columns.last_name, columns.country) == (0, 1, 3)
    assert columns.variables == {"first_name": 0, "last_name": 1, "appointment_time": 4, "account_id": 5}


def test_colliding_variable_keys_name_both_headers():
    with pytest.raises(InputError, match="'First Name' and 'first_name' both become 'first_name'"):
        map_columns(["Phone", "First Name", "first_name"], label="f.csv")


@pytest.mark.parametrize("header,key", [("First Name", "first_name"), (" Appt. Time (local) ", "appt_time_local"), ("accountID", "account_id"), ("Zip-Code", "zip_code")])
def test_variable_keys_are_snake_case(header, key):
    assert variable_key(header) == key


CRM_HEADERS = ["First Name", "Business Phone", "Home Phone", "Mobile Phone", "Phone 1 - Value", "E-mail", "Country/Region"]


def test_every_phone_column_of_a_crm_export_is_a_candidate_mobiles_first():
    columns = map_columns(CRM_HEADERS, label="outlook.csv")
    assert [CRM_HEADERS[i] for i in columns.phones] == ["Mobile Phone", "Business Phone", "Home Phone", "Phone 1 - Value"]
    assert CRM_HEADERS[columns.country] == "Country/Region"
    assert set(columns.variables) == {"first_name", "e_mail"}  # phone candidates are not variables


def test_named_phone_columns_keep_their_order_and_a_file_uses_those_it_has():
    columns = map_columns(CRM_HEADERS, label="x.csv")
    assert columns.phones[0] == CRM_HEADERS.index("Mobile Phone")
    from pipelines.ingest.columns import phone_candidates

    # the named ones first, in that order (a missing one skipped), then the other phone columns, mobiles first
    assert phone_candidates(CRM_HEADERS, label="x", phone_columns=["Home Phone", "Fax", "Business Phone"]) == [2, 1, 3, 4]
    with pytest.raises(InputError, match="no column named 'Fax'"):
        phone_candidates(CRM_HEADERS, label="x", phone_columns=["Fax"])
