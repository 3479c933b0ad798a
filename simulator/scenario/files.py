"""Scenario files: TOML -> inheritance -> overrides -> a typed, frozen, validated Scenario.

``base = "other.toml"`` inherits every key of another file (resolved beside the file, then
in the built-in library) and overrides it; tables merge key by key, everything else
replaces. ``--set key.path=value`` overrides apply last, with the value in TOML syntax.
"""
from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path

from simulator import schema
from simulator.scenario.assemble import Scenario
from simulator.scenario.overrides import apply_overrides, merge
from simulator.schema import ScenarioError

DEFAULT_SCENARIO = "default.toml"


def library_dir() -> Path:
    """The built-in scenario library (the ``scenarios`` package)."""
    return Path(str(importlib.resources.files("scenarios")))


def _resolve_base(name: str, including: Path) -> Path:
    beside = (including.parent / name).resolve()
    if beside.exists():
        return beside
    builtin = library_dir() / name
    if builtin.exists():
        return builtin
    raise ScenarioError(f"base file {name!r} not found beside the file or in the library",
                        "base", str(including))


def _read_table(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    if path in chain:
        raise ScenarioError("circular 'base' inheritance: "
                            + " -> ".join(p.name for p in chain + (path,)), "base", str(path))
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError("no such file", source=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read: {exc.__class__.__name__}", source=str(path)) from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid TOML: {exc}", source=str(path)) from None
    base = table.pop("base", None)
    if base is None:
        return table
    if not isinstance(base, str):
        raise ScenarioError(f"expected a file name, got {base!r}", "base", str(path))
    return merge(_read_table(_resolve_base(base, path), chain + (path,)), table)


def load(path: str | Path | None = None, overrides: list[str] = ()) -> Scenario:
    """Read, inherit, override and validate a scenario; None = the built-in default."""
    path = library_dir() / DEFAULT_SCENARIO if path is None else Path(path)
    table = _read_table(path)
    try:
        table = apply_overrides(table, list(overrides))
        return schema.build(Scenario, table)
    except ScenarioError as exc:
        raise exc.located(str(path)) from None


def from_toml(text: str, source: str = "<string>") -> Scenario:
    """Validate a scenario given as text (e.g. one read back from an output file)."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid TOML: {exc}", source=source) from None
    table.pop("base", None)
    try:
        return schema.build(Scenario, table)
    except ScenarioError as exc:
        raise exc.located(source) from None


def replace(scenario: Scenario, **sections) -> Scenario:
    """A copy with whole sections or section keys replaced, e.g.
    ``replace(s, simulation={"seed": 3})``; validated like a file."""
    table = schema.to_table(scenario)
    return schema.build(Scenario, merge(table, sections))
