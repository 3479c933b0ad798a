"""Merging scenario tables and ``--set key.path=value`` overrides (values in TOML syntax)."""
from __future__ import annotations

import tomllib

from simulator.schema import ScenarioError


def merge(base: dict, override: dict) -> dict:
    """Tables merge key by key; any other value in ``override`` replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[list[str], object]:
    """``'a.b.c=VALUE'`` -> (['a', 'b', 'c'], value); VALUE in TOML syntax, else a string."""
    if "=" not in text:
        raise ScenarioError(f"expected key.path=value, got {text!r}", source="--set")
    key, raw = text.split("=", 1)
    path = [p.strip() for p in key.strip().split(".")]
    if not all(path):
        raise ScenarioError(f"bad key path {key!r}", source="--set")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path, value


def apply_overrides(table: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        nested = {path[-1]: value}
        for part in reversed(path[:-1]):
            nested = {part: nested}
        table = merge(table, nested)
    return table
