"""Value constraints on field definitions over HTTP: `min`/`max` for numbers and integers,
`min_age`/`max_age` for dates, `default_region` for phones; a value out of bounds is a
`range_error` (refused in strict mode, a warning in warn mode, `range` in missing-fields),
and constraints that make no sense for their type are a `config_error` at the key."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, LiteralString

import httpx
import psycopg
import pytest

from api_support import assert_problem
from ccvault.storage.db import Pool

AGENT = "agent-1"
CUSTOMER = "c1"


# -- helpers ------------------------------------------------------------------------------


async def define(api: httpx.AsyncClient, name: str, **body: Any) -> httpx.Response:
    """PUT a field definition of agent-1 (a display name unless told otherwise)."""
    doc = {"display_name": name.title(), **body}
    return await api.put(f"/v1/agents/{AGENT}/field-definitions/{name}", json=doc)


async def defined(api: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    """PUT a definition that must be accepted; the stored definition."""
    resp = await define(api, name, **body)
    assert resp.status_code in (200, 201), resp.text
    stored: dict[str, Any] = resp.json()
    return stored


async def write(api: httpx.AsyncClient, name: str, value: Any) -> httpx.Response:
    """PUT a value of `name` for agent-1."""
    doc = {"value": value, "source": "user_provided", "agent_id": AGENT}
    return await api.put(f"/v1/profiles/{CUSTOMER}/fields/{name}", json=doc)


async def stored(api: httpx.AsyncClient, name: str, value: Any) -> Any:
    """Write a value that must be accepted without warnings; the value as stored."""
    resp = await write(api, name, value)
    assert resp.status_code == 201, resp.text
    assert resp.json().get("validation_warnings", []) == [], resp.text
    return resp.json()["value"]


def refusal(resp: httpx.Response) -> tuple[list[str | int], str, str]:
    """The one error of a 422: (loc, code, msg)."""
    body = assert_problem(resp, 422)
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    return error["loc"], error["code"], error["msg"]


def config_error_key(resp: httpx.Response) -> str:
    """The key a definition's config_error names (checking the loc's shape)."""
    loc, code, msg = refusal(resp)
    assert code == "config_error", resp.text
    assert loc[0] == "body" and len(loc) == 2, loc
    assert msg
    return str(loc[1])


async def set_mode(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID, mode: str
) -> None:
    resp = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"validation_mode": mode}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.text


async def missing(api: httpx.AsyncClient, scenario: str = "checkout") -> list[tuple[str, str]]:
    """(field_name, reason) of the missing-fields answer for the scenario."""
    resp = await api.get(
        f"/v1/profiles/{CUSTOMER}/missing-fields",
        params={"agent_id": AGENT, "scenario_id": scenario},
    )
    assert resp.status_code == 200, resp.text
    return [(m["field_name"], m["reason"]) for m in resp.json()["missing"]]


async def require(api: httpx.AsyncClient, field_name: str, scenario: str = "checkout") -> None:
    resp = await api.put(
        f"/v1/agents/{AGENT}/scenarios/{scenario}/requirements/{field_name}", json={}
    )
    assert resp.status_code in (200, 201), resp.text


def years_ago(years: int, days: int = 0) -> str:
    """The date `years` whole years before today's UTC date, moved `days` later."""
    today = datetime.now(UTC).date()
    if (today.month, today.day) == (2, 29):
        pytest.skip("29 February has no same day in most years")
    return (date(today.year - years, today.month, today.day) + timedelta(days=days)).isoformat()


@pytest.fixture
async def strict(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID
) -> None:
    """This test's tenant validates in strict mode."""
    await set_mode(http, admin_headers, tenant_id, "strict")


# -- numbers and integers -----------------------------------------------------------------


@pytest.mark.usefixtures("strict")
async def test_number_bounds_are_inclusive_and_refused_outside_in_strict_mode(
    api: httpx.AsyncClient,
) -> None:
    await defined(api, "transfer_limit", value_type="number", min=0.5, max=1000)
    assert await stored(api, "transfer_limit", 0.5) == 0.5
    assert await stored(api, "transfer_limit", "1000") == 1000
    loc, code, msg = refusal(await write(api, "transfer_limit", 1000.01))
    assert (loc, code, msg) == (["body", "value"], "range_error", "must be at most 1000")
    _, code, msg = refusal(await write(api, "transfer_limit", 0.49))
    assert (code, msg) == ("range_error", "must be at least 0.5")
    history = await api.get(f"/v1/profiles/{CUSTOMER}/fields/transfer_limit/history")
    assert [v["value"] for v in history.json()["items"]] == [1000, 0.5]


@pytest.mark.usefixtures("strict")
async def test_integer_bounds_apply_after_normalization(api: httpx.AsyncClient) -> None:
    await defined(api, "household_size", value_type="integer", min=1, max=12)
    assert await stored(api, "household_size", "12") == 12
    assert await stored(api, "household_size", 1) == 1
    assert refusal(await write(api, "household_size", "0"))[1] == "range_error"
    assert refusal(await write(api, "household_size", 13))[1] == "range_error"
    # A type error stays a type error: the range is not checked on what is not a number.
    assert refusal(await write(api, "household_size", "many"))[1] == "format_error"


async def test_warn_mode_stores_an_out_of_range_value_with_a_range_warning(
    api: httpx.AsyncClient,
) -> None:
    await defined(api, "household_size", value_type="integer", min=1, max=12)
    resp = await write(api, "household_size", "20")
    assert resp.status_code == 201, resp.text
    assert resp.json()["value"] == 20
    warnings = resp.json()["validation_warnings"]
    assert [(w["loc"], w["code"], w["msg"]) for w in warnings] == [
        (["body", "value"], "range_error", "must be at most 12")
    ]


async def test_missing_fields_answers_range_for_a_value_out_of_bounds(
    api: httpx.AsyncClient,
) -> None:
    await defined(api, "household_size", value_type="integer", min=1, max=12)
    await require(api, "household_size")
    assert await missing(api) == [("household_size", "missing")]
    assert (await write(api, "household_size", 20)).status_code == 201  # warn mode keeps it
    assert await missing(api) == [("household_size", "range")]
    await stored(api, "household_size", 4)
    assert await missing(api) == []


async def test_bounds_set_after_a_value_was_written_make_it_count_as_range(
    api: httpx.AsyncClient,
) -> None:
    await defined(api, "date_of_birth", value_type="date")
    await require(api, "date_of_birth")
    await stored(api, "date_of_birth", years_ago(16))
    assert await missing(api) == []
    await defined(api, "date_of_birth", value_type="date", min_age=18)
    assert await missing(api) == [("date_of_birth", "range")]


# -- ages ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("strict")
async def test_min_age_is_met_on_the_birthday_itself_and_not_the_day_before(
    api: httpx.AsyncClient,
) -> None:
    await defined(api, "date_of_birth", value_type="date", min_age=18)
    assert await stored(api, "date_of_birth", years_ago(18)) == years_ago(18)
    loc, code, msg = refusal(await write(api, "date_of_birth", years_ago(18, days=1)))
    assert (loc, code) == (["body", "value"], "range_error")
    assert msg == "must be a date at least 18 years ago (this one is 17 years ago)"
    future = (datetime.now(UTC).date() + timedelta(days=400)).isoformat()
    assert "in the future" in refusal(await write(api, "date_of_birth", future))[2]


@pytest.mark.usefixtures("strict")
async def test_max_age_counts_whole_years_inclusive(api: httpx.AsyncClient) -> None:
    await defined(api, "date_of_birth", value_type="date", min_age=0, max_age=65)
    await stored(api, "date_of_birth", years_ago(65))
    # 66 tomorrow: still 65 today.
    await stored(api, "date_of_birth", years_ago(66, days=1))
    _, code, msg = refusal(await write(api, "date_of_birth", years_ago(66)))
    assert code == "range_error"
    assert msg == "must be a date at most 65 years ago (this one is 66 years ago)"


# -- phones -------------------------------------------------------------------------------


@pytest.mark.usefixtures("strict")
async def test_default_region_reads_national_numbers_and_stores_e164(
    api: httpx.AsyncClient,
) -> None:
    definition = await defined(api, "phone", value_type="phone", default_region="de")
    assert definition["default_region"] == "DE"
    assert await stored(api, "phone", "030 1234567") == "+49301234567"
    assert await stored(api, "phone", "(030) 123-4567") == "+49301234567"
    # International numbers of other countries are still read as they are.
    assert await stored(api, "phone", "+351 912 345 678") == "+351912345678"
    got = await api.get(f"/v1/agents/{AGENT}/field-definitions/phone")
    assert got.json()["default_region"] == "DE"


@pytest.mark.usefixtures("strict")
async def test_a_national_number_without_default_region_asks_for_international_form(
    api: httpx.AsyncClient,
) -> None:
    await defined(api, "phone", value_type="phone")
    loc, code, msg = refusal(await write(api, "phone", "030 1234567"))
    assert (loc, code) == (["body", "value"], "format_error")
    assert msg == "the phone number must be international, like +4930123456"


# -- config errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"value_type": "string", "min": 1}, "min"),
        ({"value_type": "date", "max": 10}, "max"),
        ({"value_type": "number", "min": 10, "max": 1}, "min"),
        ({"value_type": "integer", "min": 1.5}, "min"),
        ({"value_type": "number", "min_age": 18}, "min_age"),
        ({"value_type": "date", "min_age": 30, "max_age": 20}, "min_age"),
        ({"value_type": "email", "default_region": "DE"}, "default_region"),
        ({"value_type": "phone", "default_region": "XX"}, "default_region"),
        ({"value_type": "phone", "default_region": "Germany"}, "default_region"),
        (
            {"value_type": "phone", "default_region": "DE", "allowed_values": ["12"]},
            "allowed_values",
        ),
    ],
)
async def test_constraints_that_do_not_fit_the_type_are_a_config_error_at_their_key(
    api: httpx.AsyncClient, body: dict[str, Any], key: str
) -> None:
    assert config_error_key(await define(api, "thing", **body)) == key
    assert (await api.get(f"/v1/agents/{AGENT}/field-definitions/thing")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"value_type": "number", "min": "1"},
        {"value_type": "number", "max": True},
        {"value_type": "date", "min_age": -1},
        {"value_type": "date", "max_age": 201},
        {"value_type": "integer", "max": 2**64},
    ],
)
async def test_constraints_of_the_wrong_json_type_are_refused(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    body_of = assert_problem(await define(api, "thing", **body), 422)
    assert {e["loc"][1] for e in body_of["errors"]} <= {"min", "max", "min_age", "max_age"}


async def test_allowed_values_are_normalized_with_the_default_region(
    api: httpx.AsyncClient,
) -> None:
    definition = await defined(
        api, "hotline", value_type="phone", default_region="PT", allowed_values=["912 345 678"]
    )
    assert definition["allowed_values"] == ["+351912345678"]


async def test_the_table_refuses_constraints_that_do_not_fit_whatever_writes(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await defined(api, "nickname", value_type="string")
    await defined(api, "amount", value_type="number", min=1, max=5)
    where = " AND tenant_id = %(t)s"
    bad: list[LiteralString] = [
        """UPDATE profile_field_definitions SET "min" = 1 WHERE name = 'nickname'""",
        """UPDATE profile_field_definitions SET "min" = 9 WHERE name = 'amount'""",
        """UPDATE profile_field_definitions SET min_age = 3 WHERE name = 'amount'""",
        """UPDATE profile_field_definitions SET default_region = 'DE' WHERE name = 'amount'""",
    ]
    for statement in bad:
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.CheckViolation):
                await conn.execute(statement + where, {"t": tenant_id})
