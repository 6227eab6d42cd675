"""A marshmallow output schema's ``dump``, compiled once into plain Python.

The box JSON is the most frequent answer of the API, and marshmallow's ``dump`` walks its ~45
fields through generic machinery (accessors, ``missing`` checks, per-field dispatch, nested
schema instances) on every read: 0.08 ms of CPU a box, as much as the rest of the read's Python.
:func:`compile_dump` reads the schema's declared fields once and returns a function doing the
same conversions directly, so the schema stays the one description of the output (OpenAPI comes
from it) and the fast path cannot drift from it: a field type it does not know is refused when
it compiles, and a test compares it with ``Schema.dump`` for varied boxes.

Same semantics as marshmallow 4's dump for what it supports: a value is taken as ``obj[key]``
for an object with ``__getitem__`` (falling back to the attribute), else ``getattr``; a key
missing from the object is left out; ``None`` stays ``None``; Int/Float through ``int``/``float``,
Str through ``str``, DateTime (ISO format) through ``isoformat``, Raw and Boolean as they are,
Nested and List(Nested) recursively, Method by calling the schema's method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields
from marshmallow.utils import missing

Dump = Callable[[Any], dict[str, Any]]

_MISSING = missing


def _getter(key: str) -> Callable[[Any], Any]:
    def get(obj: Any) -> Any:
        if hasattr(obj, "__getitem__"):
            try:
                return obj[key]
            except (KeyError, IndexError, TypeError, AttributeError):
                return getattr(obj, key, _MISSING)
        return getattr(obj, key, _MISSING)

    return get


def _converter(field: fields.Field, schema: Schema) -> Callable[[Any], Any] | None:
    """How ``field`` turns a value into its output (None: the value as it is); raises
    TypeError for a field this module does not reproduce exactly."""
    kind = type(field)
    if isinstance(field, fields.Method):
        raise AssertionError("Method fields are handled by compile_dump")  # pragma: no cover
    if isinstance(field, fields.Nested):
        nested = compile_dump(field.schema)
        if field.many or field.schema.many:
            return lambda value: [nested(v) for v in value]
        return nested
    if isinstance(field, fields.List):
        inner = _converter(field.inner, schema)
        if inner is None:
            return list
        return lambda value: [None if v is None else inner(v) for v in value]
    if kind in (fields.Integer, fields.Int, fields.Float) or (
        isinstance(field, fields.Number) and kind._serialize is fields.Number._serialize
    ):
        if getattr(field, "as_string", False):
            raise TypeError(f"{schema.__class__.__name__}: numbers as strings are not compiled")
        return field.num_type  # type: ignore[attr-defined]
    if kind in (fields.String, fields.Str):
        return str
    if kind is fields.DateTime and field.format in (None, "iso", "iso8601"):  # type: ignore[attr-defined]
        return lambda value: value.isoformat()
    if kind in (fields.Raw, fields.Boolean, fields.Bool) and kind._serialize is fields.Field._serialize:
        return None
    raise TypeError(f"{schema.__class__.__name__}: field type {kind.__name__} is not compiled")


def compile_dump(schema: Schema) -> Dump:
    """``schema.dump`` for one object as a plain function (see the module docstring)."""
    if schema.only or schema.exclude or schema.many:
        raise TypeError("compile_dump takes a schema without only/exclude/many")
    plan: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any] | None, Callable[[Any], Any] | None]] = []
    for name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else name
        if field.dump_default is not _MISSING:
            raise TypeError(f"{schema.__class__.__name__}.{name}: dump_default is not compiled")
        if isinstance(field, fields.Method):
            method = getattr(schema, field.serialize_method_name) if field.serialize_method_name else None
            if method is None:
                continue  # a Method field without a serialize method is never dumped
            plan.append((key, lambda obj: None, None, method))
            continue
        attribute = field.attribute or name
        if "." in attribute:
            raise TypeError(f"{schema.__class__.__name__}.{name}: dotted attributes are not compiled")
        plan.append((key, _getter(attribute), _converter(field, schema), None))

    def dump(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, get, convert, method in plan:
            if method is not None:
                out[key] = method(obj)
                continue
            value = get(obj)
            if value is _MISSING:
                continue
            out[key] = value if value is None or convert is None else convert(value)
        return out

    return dump
