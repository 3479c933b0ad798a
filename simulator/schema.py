"""Typed, validated parameters: one dataclass field per scenario key.

A scenario section is a frozen dataclass whose fields are declared with :func:`param`,
which carries the default, unit, allowed range, meaning and literature source. The same
metadata drives validation (:func:`build`), ``tumorsim inspect`` and ``docs/parameters.md``.

Supported field types: bool, int, float, str, ``X | None``, ``list[X]``, ``tuple[X, ...]``,
nested section dataclasses, ``list[Section]`` (TOML arrays of tables) and
``dict[str, Section]`` (named tables such as ``[drugs.vemurafenib]``).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any

# An integer key without its own ``high`` fits a signed 32-bit integer: the engine keeps
# counts such as a T cell's remaining kills in int32 arrays, and no count a scenario sets
# needs more. Keys that do (``simulation.seed``) declare their own bound.
INT_HIGH = 2**31 - 1
INT_LOW = -(2**63)


class ScenarioError(ValueError):
    """Bad input, reported as one line: ``FILE: key.path: what is wrong``."""

    def __init__(self, message: str, key: str = "", source: str = ""):
        self.message = message
        self.key = key
        self.source = source
        super().__init__(self.line())

    def line(self) -> str:
        parts = [p for p in (self.source, self.key) if p]
        return one_line(": ".join(parts + [self.message]))

    def located(self, source: str) -> "ScenarioError":
        return ScenarioError(self.message, self.key, self.source or source)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so an error that
    quotes user input (a key, a path, a value) stays on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def param(default, *, unit: str = "", doc: str = "", source: str = "", low=None, high=None,
          low_open: bool = False, choices: tuple = ()):
    """Declare a scenario key. ``low``/``high`` are inclusive unless ``low_open``."""
    meta = dict(unit=unit, doc=doc, source=source, low=low, high=high, low_open=low_open,
                choices=tuple(choices))
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        frozen = default
        return dataclasses.field(default_factory=lambda: _copy(frozen), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _copy(value):
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(tp) -> str:
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a table"
    return str(tp)


def _convert(value: Any, tp, path: str):
    """Convert a TOML value to ``tp`` or raise ScenarioError naming ``path``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"expected true or false, got {value!r}", path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ScenarioError(f"expected an integer, got {value!r}", path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"expected a number, got {value!r}", path)
        value = float(value)
        if math.isnan(value):
            raise ScenarioError("expected a number, got nan", path)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ScenarioError(f"expected a string, got {value!r}", path)
        if "\x00" in value:  # HDF5 attributes and C strings end at the first NUL
            raise ScenarioError("must not contain a NUL character", path)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # e.g. undecodable bytes of a --set argument
            raise ScenarioError(f"is not valid Unicode text: {value!r}", path) from None
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ScenarioError(f"expected a list, got {value!r}", path)
        (item_tp, *_) = typing.get_args(tp)
        items = [_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        _, item_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ScenarioError(f"expected a table, got {value!r}", path)
        return {k: _convert(v, item_tp, _join(path, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ScenarioError(f"expected a table, got {value!r}", path)
        return build(tp, value, path)
    raise TypeError(f"unsupported parameter type {tp!r} at {path}")


def _check_range(value, meta, path: str):
    if value is None:
        return
    choices = meta.get("choices") or ()
    if choices and value not in choices:
        raise ScenarioError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}", path)
    low, high = meta.get("low"), meta.get("high")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if low is not None and (v < low or (meta.get("low_open") and v == low)):
            rel = ">" if meta.get("low_open") else ">="
            raise ScenarioError(f"must be {rel} {low}, got {v!r}", path)
        if high is not None and v > high:
            raise ScenarioError(f"must be <= {high}, got {v!r}", path)
        if isinstance(v, int) and high is None and v > INT_HIGH:
            raise ScenarioError(f"must be <= {INT_HIGH}, got {v!r}", path)
        if isinstance(v, int) and v < INT_LOW:
            raise ScenarioError(f"must be >= {INT_LOW}, got {v!r}", path)
        if isinstance(v, float) and math.isinf(v):
            raise ScenarioError(f"must be finite, got {v!r}", path)


def build(cls, table: dict, path: str = ""):
    """Make a ``cls`` instance from a TOML table, validating every key."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            known = "" if close else f"; known keys: {', '.join(sorted(fields))}"
            raise ScenarioError(f"unknown key{hint}{known}", _join(path, key))
    values = {}
    for name, f in fields.items():
        if name not in table:
            continue
        key_path = _join(path, name)
        value = _convert(table[name], hints[name], key_path)
        _check_range(value, f.metadata, key_path)
        values[name] = value
    try:
        obj = cls(**values)
    except TypeError as exc:  # a required field without default
        raise ScenarioError(str(exc), path) from None
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ScenarioError as exc:
            raise ScenarioError(exc.message, _join(path, exc.key) if exc.key else path) from None
    return obj


def to_table(obj) -> dict:
    """The inverse of :func:`build`: plain dicts and lists, TOML-serialisable."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_table(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if getattr(obj, f.name) is not None}
    if isinstance(obj, dict):
        return {k: to_table(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_table(v) for v in obj]
    return obj


def _optional_section(tp):
    """The section class of an ``X | None`` field whose X is a section, else None."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1 \
            and dataclasses.is_dataclass(args[0]):
        return args[0]
    return None


def describe(cls, path: str = ""):
    """Yield (key_path, default, unit, doc, source) for every scalar key of a section.

    An optional sub-table (``X | None``) is listed itself and then its keys; when several
    keys of one section share the sub-table type (the effect channels of a drug), its keys
    are listed once, under a placeholder named after the type (``<effect>``)."""
    hints = typing.get_type_hints(cls)
    optional = [_optional_section(hints[f.name]) for f in dataclasses.fields(cls)]
    expanded = set()
    for f, sub in zip(dataclasses.fields(cls), optional):
        tp = hints[f.name]
        key_path = _join(path, f.name)
        if dataclasses.is_dataclass(tp):
            yield from describe(tp, key_path)
            continue
        if sub is not None:
            m = f.metadata
            yield key_path, None, m.get("unit", ""), m.get("doc", ""), m.get("source", "")
            if sub not in expanded:
                expanded.add(sub)
                shared = optional.count(sub) > 1
                yield from describe(sub, _join(path, f"<{sub.__name__.lower()}>") if shared
                                    else key_path)
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        origin = typing.get_origin(tp)
        if origin is dict or (origin in (list,) and dataclasses.is_dataclass(typing.get_args(tp)[0])):
            item = typing.get_args(tp)[-1]
            suffix = ".<name>" if origin is dict else "[]"
            yield from describe(item, key_path + suffix)
            continue
        m = f.metadata
        yield key_path, default, m.get("unit", ""), m.get("doc", ""), m.get("source", "")


def key_type(cls, key_path: str, table: dict):
    """The declared type of the scalar key ``key_path`` (``"tumor.antigenicity"``) in a
    section ``cls`` whose resolved table is ``table``, or ScenarioError naming the first
    unknown part (with a suggestion). Named tables (``drugs.<name>``) must exist in
    ``table``; an optional sub-table (``X | None``) is looked up in X."""
    parts = key_path.split(".")
    tp, here = cls, table
    for i, part in enumerate(parts):
        done = ".".join(parts[:i])
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                close = difflib.get_close_matches(part, list(hints), n=1, cutoff=0.6)
                hint = f" (did you mean '{_join(done, close[0])}'?)" if close else ""
                raise ScenarioError(f"{key_path!r} is not a scenario key: no "
                                    f"'{_join(done, part)}'{hint}")
            tp = hints[part]
        elif typing.get_origin(tp) is dict:
            if not isinstance(here, dict) or part not in here:
                names = ", ".join(sorted(here)) if isinstance(here, dict) else ""
                raise ScenarioError(f"{key_path!r} is not a scenario key: no "
                                    f"'{_join(done, part)}' (defined: {names or 'none'})")
            tp = typing.get_args(tp)[1]
        else:
            raise ScenarioError(f"{key_path!r} is not a scenario key: '{done}' is a value, "
                                "not a table")
        here = here.get(part) if isinstance(here, dict) else None
        section = _optional_section(tp)
        if section is not None:
            tp = section
    return tp
