"""Input bounds without servers: instants, strict scalars in every request body, the type
normalizers at their edges, and the size measure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import ccvault.api.app  # noqa: F401  (defines every request body model)
from ccvault.domain.bounds import (
    MAX_INSTANT,
    MAX_VALUE_BYTES,
    MIN_INSTANT,
    bounded_utc,
    json_size,
    profile_limit_error,
)
from ccvault.domain.inputs import Input
from ccvault.domain.models import ValueType
from ccvault.domain.validation import Rules, check_value
from ccvault.domain.writes import NewAsset, NewField

FIELD = {"value": "x", "source": "user_provided"}
ASSET = {
    "name": "passport",
    "asset_type": "document",
    "storage_provider": "s3",
    "storage_path": "bucket/passport.pdf",
    "mime_type": "application/pdf",
    "size_bytes": 1234,
    "checksum": "sha256:abc",
}

# -- instants ------------------------------------------------------------------------------

OUT_OF_RANGE = [
    "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
    "0001-01-01T00:00:00+14:00",  # year 0 (1 BC) in UTC
    "9999-12-31T00:00:00Z",  # inside Python's range, outside the margin
    "0001-01-01T23:59:59Z",
    "0001-01-01T12:00:00",  # no offset: UTC
    "9999-12-30T23:59:59.999999-00:01",
]
AT_THE_EDGES = [
    ("0001-01-02T00:00:00Z", MIN_INSTANT),
    ("0001-01-01T10:00:00-14:00", MIN_INSTANT),
    ("9999-12-30T23:59:59.999999Z", MAX_INSTANT),
    ("9999-12-31T13:59:59.999999+14:00", MAX_INSTANT),
    ("2030-06-01T12:00:00+02:00", datetime(2030, 6, 1, 10, tzinfo=UTC)),
    ("2030-06-01 12:00", datetime(2030, 6, 1, 12, tzinfo=UTC)),
]
NOT_TEXT = [0, 1_700_000_000, 1.7e9, True, "1700000000", "2030-01-01", "\uff12030-01-01T00:00Z"]


def test_bounds_keep_a_day_inside_the_years_every_reader_parses() -> None:
    for offset in (timedelta(hours=-23, minutes=-59), timedelta(hours=23, minutes=59)):
        for instant in (MIN_INSTANT, MAX_INSTANT):
            shown = instant.astimezone(timezone(offset))  # no OverflowError
            assert 1 <= shown.year <= 9999


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_an_instant_outside_the_bounds_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must fall between"):
        bounded_utc(datetime.fromisoformat(text))


@pytest.mark.parametrize(("text", "utc"), AT_THE_EDGES)
def test_an_instant_at_the_bounds_is_kept_in_utc(text: str, utc: datetime) -> None:
    assert bounded_utc(datetime.fromisoformat(text)) == utc
    assert bounded_utc(datetime.fromisoformat(text)).tzinfo is UTC


@pytest.mark.parametrize("key", ["expires_at", "verified_at"])
@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_a_field_write_refuses_an_instant_outside_the_bounds(key: str, text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewField.model_validate({**FIELD, key: text})
    (error,) = caught.value.errors()
    assert (error["loc"], error["type"]) == ((key,), "datetime_range")


@pytest.mark.parametrize("value", NOT_TEXT)
def test_an_instant_must_be_text_with_a_date_and_a_time(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        NewAsset.model_validate({**ASSET, "expires_at": value})
    assert caught.value.errors()[0]["loc"] == ("expires_at",)


@pytest.mark.parametrize(("text", "utc"), AT_THE_EDGES)
def test_an_asset_expiry_is_stored_in_utc(text: str, utc: datetime) -> None:
    assert NewAsset.model_validate({**ASSET, "expires_at": text}).expires_at == utc


def test_library_callers_may_pass_datetime_objects() -> None:
    naive = datetime(2030, 1, 1, 12)
    assert NewField.model_validate({**FIELD, "expires_at": naive}).expires_at == naive.replace(
        tzinfo=UTC
    )


# -- strict scalars in every request body ------------------------------------------------------

# JSON values each schema type must refuse: what pydantic's lax mode would have converted.
NOT_OF_TYPE: dict[str, list[Any]] = {
    "boolean": [0, 1, "true", "yes", 1.0],
    "integer": [True, False, "1", 1.0, "\u0661", "\uff11"],
    "number": [True, "0.5"],
    "date-time": [0, 1_700_000_000, "1700000000", "2030-01-01"],
}


def _request_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [Input]
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return found


def _kind(schema: dict[str, Any]) -> str | None:
    """The scalar kind a (possibly nullable) property schema declares."""
    options = schema.get("anyOf", [schema])
    for option in options:
        if option.get("format") == "date-time":
            return "date-time"
        if option.get("type") in ("boolean", "integer", "number"):
            return str(option["type"])
    return None


def _scalar_fields() -> list[tuple[str, str, Any, str]]:
    cases = []
    for model in _request_models():
        for name, info in model.model_fields.items():
            hint: Any = info.annotation
            if info.metadata:
                hint = Annotated[(hint, *info.metadata)]
            adapter: TypeAdapter[Any] = TypeAdapter(hint)
            kind = _kind(adapter.json_schema())
            if kind is not None:
                cases.append((f"{model.__name__}.{name}", kind, adapter, name))
    return cases


SCALARS = _scalar_fields()


def test_the_walk_finds_the_scalars_of_every_body() -> None:
    names = {case[0] for case in SCALARS}
    expected = {
        "NewField.verified",
        "NewField.confidence",
        "NewField.expires_at",
        "NewField.verified_at",
        "NewAsset.size_bytes",
        "NewAsset.expires_at",
        "NewIdentity.primary",
        "ConsentAnswer.granted",
        "DefinitionBody.retention_days",
        "DefinitionBody.freshness_seconds",
        "DefinitionBody.enabled",
        "RequirementBody.collection_order",
    }
    assert expected <= names


@pytest.mark.parametrize(("where", "kind", "adapter", "name"), SCALARS, ids=[c[0] for c in SCALARS])
def test_every_body_scalar_takes_only_its_own_json_type(
    where: str, kind: str, adapter: TypeAdapter[Any], name: str
) -> None:
    for value in NOT_OF_TYPE[kind]:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)
            pytest.fail(f"{where} accepted {value!r}")


def test_a_number_accepts_a_json_integer() -> None:
    assert NewField.model_validate({**FIELD, "confidence": 1}).confidence == 1.0


# -- normalizers at their edges ------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["\u0661\u0662", "\uff11\uff12", "1\u0662", "+\uff11", "\u06f1.5", "1e\u0662"]
)
@pytest.mark.parametrize("value_type", [ValueType.number, ValueType.integer])
def test_numbers_are_read_from_ascii_digits_only(text: str, value_type: ValueType) -> None:
    checked = check_value(text, Rules(value_type))
    assert [p.code for p in checked.problems] == ["format_error"]
    assert checked.value == text


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_a_datetime_value_outside_the_bounds_is_a_format_error(text: str) -> None:
    checked = check_value(text, Rules(ValueType.datetime))
    assert [p.code for p in checked.problems] == ["format_error"]
    assert "must fall between" in checked.problems[0].msg


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("0001-01-01T10:00:00-14:00", "0001-01-02T00:00:00Z"),
        ("9999-12-31T13:59:59.999999+14:00", "9999-12-30T23:59:59.999999Z"),
    ],
)
def test_a_datetime_value_at_the_bounds_is_normalized_to_utc(text: str, normalized: str) -> None:
    assert check_value(text, Rules(ValueType.datetime)).value == normalized


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\u0000"}',
        '["\\ud800"]',
        '{"\\udfff": 1}',
        '"nul \\u0000"',
        "[1e999]",
        '{"a": -1e400}',
        "[" * 66 + "]" * 66,
    ],
    ids=["nul", "surrogate", "surrogate-key", "nul-string", "infinity", "minus-infinity", "deep"],
)
def test_json_text_spelling_what_postgresql_cannot_store_is_a_format_error(text: str) -> None:
    checked = check_value(text, Rules(ValueType.json))
    assert [p.code for p in checked.problems] == ["format_error"]
    assert checked.value == text


def test_json_text_at_the_depth_limit_is_parsed() -> None:
    assert check_value("[" * 65 + "]" * 65, Rules(ValueType.json)).problems == ()


# -- sizes and limits ------------------------------------------------------------------------


def test_json_size_counts_compact_utf8_bytes() -> None:
    assert json_size({"a": [1, 2]}) == len('{"a":[1,2]}')
    assert json_size("é") == 4  # two quotes and two bytes


def test_a_value_of_exactly_the_limit_is_accepted_one_more_byte_is_not() -> None:
    at_limit = "x" * (MAX_VALUE_BYTES - 2)
    assert NewField.model_validate({**FIELD, "value": at_limit}).value == at_limit
    too_large = (
        ("value", at_limit + "x"),
        ("source_metadata", {f"n{i}": "x" * 250 for i in range(300)}),
    )
    for key, value in too_large:
        with pytest.raises(ValidationError) as caught:
            NewField.model_validate({**FIELD, key: value})
        (error,) = caught.value.errors()
        assert (error["loc"], error["type"]) == ((key,), "too_large")


def test_profile_limits_the_database_raises_become_422_problems() -> None:
    for reason in ("profile_fields_limit", "profile_bytes_limit", "profile_assets_limit"):
        refused = profile_limit_error(reason)
        assert refused is not None
        assert [p.code for p in refused.errors] == ["profile_limit"]
    assert profile_limit_error("source_not_found") is None
