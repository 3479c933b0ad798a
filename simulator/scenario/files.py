"""Scenario files: TOML -> inheritance -> overrides -> a typed, frozen, validated Scenario.

``base = "other.toml"`` inherits every key of another file (resolved beside the file, then
in the built-in library) and overrides it; tables merge key by key, everything else
replaces. ``--set key.path=value`` overrides apply last, with the value in TOML syntax.
"""
from __future__ import annotations

import importlib.resources
import os
import stat
import tomllib
from pathlib import Path

from simulator import schema
from simulator.scenario import bounds
from simulator.scenario.assemble import Scenario
from simulator.scenario.overrides import apply_overrides, merge
from simulator.schema import ScenarioError

DEFAULT_SCENARIO = "default.toml"
# A scenario (or base) file is a regular file of at most this size, and a chain of bases
# at most this deep: the library's files are < 20 KiB and 3 deep, and a shared scenario
# must not be able to point ``base`` at /dev/zero or a FIFO and hold the reader forever.
MAX_SCENARIO_BYTES = 1 << 20
MAX_BASE_DEPTH = 32


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


def read_text(path: Path) -> str:
    """A scenario file's text: a regular file of at most MAX_SCENARIO_BYTES, UTF-8. Opened
    without blocking and checked before reading, so a FIFO or device is refused at once."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ScenarioError("no such file", source=str(path)) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror or exc.__class__.__name__}",
                            source=str(path)) from None
    except ValueError:  # a NUL byte in the path
        raise ScenarioError("is not a valid file name", source=repr(str(path))) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ScenarioError("is a directory, not a scenario file" if stat.S_ISDIR(mode) else
                            "is not a regular file (a device, FIFO or socket)",
                            source=str(path))
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_SCENARIO_BYTES + 1)
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"is larger than {MAX_SCENARIO_BYTES >> 10} KiB; a scenario file "
                            "is a short text file", source=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"is not UTF-8 text (byte {exc.start})", source=str(path)) from None


def _read_table(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    if path in chain:
        raise ScenarioError("circular 'base' inheritance: "
                            + " -> ".join(p.name for p in chain + (path,)), "base", str(path))
    if len(chain) >= MAX_BASE_DEPTH:
        raise ScenarioError(f"'base' chain deeper than {MAX_BASE_DEPTH} files", "base",
                            str(chain[-1]))
    text = read_text(path)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid TOML: {exc}", source=str(path)) from None
    base = table.pop("base", None)
    if base is None:
        return table
    if not isinstance(base, str) or not base or "\x00" in base:
        raise ScenarioError(f"expected a file name, got {base!r}", "base", str(path))
    return merge(_read_table(_resolve_base(base, path), chain + (path,)), table)


def load(path: str | Path | None = None, overrides: list[str] = (), *,
         check_memory: bool = True) -> Scenario:
    """Read, inherit, override and validate a scenario; None = the built-in default.
    ``check_memory``: also refuse a run that would not fit in the machine's available
    memory (``tumorsim inspect`` turns it off to show the estimate)."""
    path = library_dir() / DEFAULT_SCENARIO if path is None else Path(path)
    table = _read_table(path)
    try:
        table = apply_overrides(table, list(overrides))
        scenario = schema.build(Scenario, table)
        if check_memory:
            bounds.check_memory(scenario)
        return scenario
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
