"""Hypothesis properties of every request schema (each subclass of ``InputSchema``, so a new
schema is covered without editing this file): strings with NUL or a lone surrogate are refused
with the field named, integers outside a field's range are refused with the field named, and no
input makes a schema raise anything but a ValidationError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate

import integration_service.schemas  # noqa: F401 - defines every request schema
from integration_service.inputs import DB_INT_MAX
from integration_service.schemas.common import InputSchema
from tests.fuzz.budget import MAX_EXAMPLES

# WordPress post ids are stored as text (Content.external_id), not in an INTEGER column.
WIDER_INTEGERS = {("WebhookStatusSchema", "post_id"), ("WebhookMetadataSchema", "post_id")}


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


SCHEMAS = sorted(
    {cls for cls in _subclasses(InputSchema) if not cls.__name__.startswith("_")}, key=lambda c: c.__name__
)


def _loadable(schema_cls: type[Schema], kinds: tuple[type, ...]) -> list[tuple[type, str, fields.Field]]:
    schema = schema_cls()
    return [
        (schema_cls, field.data_key or name, field)
        for name, field in schema.fields.items()
        if not field.dump_only and isinstance(field, kinds)
    ]


STRING_FIELDS = [item for cls in SCHEMAS for item in _loadable(cls, (fields.String,))]
INTEGER_FIELDS = [item for cls in SCHEMAS for item in _loadable(cls, (fields.Integer,))]
OBJECT_FIELDS = [item for cls in SCHEMAS for item in _loadable(cls, (fields.Dict,))]


def _ids(items: list) -> list[str]:
    return [f"{cls.__name__}.{key}" for cls, key, _ in items]


def _load(schema_cls: type[Schema], data: dict[str, Any]) -> dict[str, Any] | None:
    """The field errors of loading ``data`` (partial: other required fields do not matter)."""
    try:
        schema_cls().load(data, partial=True)
    except ValidationError as exc:
        return exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return None


UNSTORABLE = st.tuples(
    st.text(max_size=20), st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]), st.text(max_size=20)
).map("".join)


def test_every_request_schema_is_covered():
    names = {cls.__name__ for cls in SCHEMAS}
    assert {"IntegrationSchema", "ContentCreateSchema", "ContentQuerySchema", "OnboardingRequestSchema"} <= names
    assert {"TokenRequestSchema", "WebhookStatusSchema", "SiteStructureSchema", "PageQuerySchema"} <= names
    assert len(STRING_FIELDS) > 20 and len(INTEGER_FIELDS) >= 8


@pytest.mark.parametrize(("schema_cls", "key", "field"), STRING_FIELDS, ids=_ids(STRING_FIELDS))
@settings(max_examples=2 * MAX_EXAMPLES, deadline=None)
@given(value=UNSTORABLE)
def test_unstorable_strings_are_refused_naming_the_field(schema_cls, key, field, value):
    errors = _load(schema_cls, {key: value})
    assert errors is not None and key in errors, errors


@pytest.mark.parametrize(("schema_cls", "key", "field"), OBJECT_FIELDS, ids=_ids(OBJECT_FIELDS))
@settings(max_examples=2 * MAX_EXAMPLES, deadline=None)
@given(value=UNSTORABLE, as_key=st.booleans())
def test_unstorable_strings_inside_objects_are_refused(schema_cls, key, field, value, as_key):
    nested = {value: "x"} if as_key else {"k": [value]}
    errors = _load(schema_cls, {key: {"a": nested}})
    assert errors is not None and key in errors, errors


@pytest.mark.parametrize(("schema_cls", "key", "field"), STRING_FIELDS, ids=_ids(STRING_FIELDS))
@settings(max_examples=2 * MAX_EXAMPLES, deadline=None)
@given(value=st.text(max_size=300))
def test_any_string_is_loaded_or_refused_cleanly(schema_cls, key, field, value):
    _load(schema_cls, {key: value})  # only a ValidationError may escape


def _range(field: fields.Field) -> tuple[int | None, int | None]:
    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
    lows = [r.min for r in ranges if r.min is not None]
    highs = [r.max for r in ranges if r.max is not None]
    return (max(lows) if lows else None), (min(highs) if highs else None)


@pytest.mark.parametrize(("schema_cls", "key", "field"), INTEGER_FIELDS, ids=_ids(INTEGER_FIELDS))
def test_every_integer_field_fits_the_database(schema_cls, key, field):
    low, high = _range(field)
    assert low is not None and high is not None, "an unbounded integer field"
    if (schema_cls.__name__, key) not in WIDER_INTEGERS:
        assert high <= DB_INT_MAX


@pytest.mark.parametrize(("schema_cls", "key", "field"), INTEGER_FIELDS, ids=_ids(INTEGER_FIELDS))
@settings(max_examples=3 * MAX_EXAMPLES, deadline=None)
@given(
    value=st.one_of(
        st.integers(),
        st.integers(min_value=2**31 - 2, max_value=2**31 + 2),
        st.integers(min_value=2**63 - 2, max_value=2**64),
    )
)
def test_integers_outside_the_range_are_refused_naming_the_field(schema_cls, key, field, value):
    low, high = _range(field)
    for sent in (value, str(value)):  # a body sends a number, a query a string
        errors = _load(schema_cls, {key: sent})
        if (low is not None and value < low) or (high is not None and value > high):
            assert errors is not None and key in errors, (sent, errors)
        elif not isinstance(sent, str) or not field.strict:
            assert errors is None or key not in errors, (sent, errors)
