"""Scenario files: TOML -> inheritance -> overrides -> a typed, frozen, validated Scenario.

``base = "other.toml"`` inherits every key of another file (resolved beside the file, then
in the built-in library) and overrides it; tables merge key by key, everything else
replaces. ``--set key.path=value`` overrides apply last, with the value in TOML syntax.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import tomllib
from dataclasses import dataclass
from pathlib import Path

from simulator import schema
from simulator.cohort import CohortParameter
from simulator.immune import PdL1, SuppressiveCells, TCells, check_scenario as check_immune
from simulator.drugs import Drug, check_drugs
from simulator.parameters import (EndpointSettings, Initial, Output, RegimenSettings, Simulation,
                                  Tumor)
from simulator.penetration import FIELD_PREFIX as PENETRATION_FIELD_PREFIX
from simulator.penetration import penetrating
from simulator.schema import ScenarioError, param
from simulator.tissue import FIELD_NAMES, Fields, Hypoxia, Vessels

DEFAULT_SCENARIO = "default.toml"


@dataclass(frozen=True)
class Scenario:
    description: str = param("", doc="one line saying what this scenario asks")
    simulation: Simulation = param(Simulation())
    initial: Initial = param(Initial())
    tumor: Tumor = param(Tumor())
    drugs: dict[str, Drug] = param({})
    regimen: RegimenSettings = param(RegimenSettings())
    endpoints: EndpointSettings = param(EndpointSettings())
    output: Output = param(Output())
    vessels: Vessels = param(Vessels())
    fields: Fields = param(Fields())
    hypoxia: Hypoxia = param(Hypoxia())
    pd_l1: PdL1 = param(PdL1())
    t_cells: TCells = param(TCells())
    suppressive: SuppressiveCells = param(SuppressiveCells())
    cohort: list[CohortParameter] = param([])

    def check(self):
        sim = self.simulation
        check_drugs(self.drugs, self.tumor.resistance_targets, sim.duration_days,
                    sim.treatment_start_day)
        drug_fields = {PENETRATION_FIELD_PREFIX + n for n in penetrating(self.drugs)}
        known_fields = set(FIELD_NAMES) | drug_fields
        for name in self.output.snapshot_fields:
            if name not in known_fields:
                raise ScenarioError(f"unknown field {name!r}; known: "
                                    f"{', '.join(sorted(known_fields))}",
                                    "output.snapshot_fields")
            if name not in drug_fields and not self.fields.settings(name).enabled:
                raise ScenarioError(f"field {name!r} is disabled (fields.{name}.enabled)",
                                    "output.snapshot_fields")
        if drug_fields and not (self.vessels.density > 0 or self.vessels.positions):
            name = penetrating(self.drugs)[0]
            raise ScenarioError("a drug that penetrates from vessels needs vessels "
                                "(vessels.density > 0 or vessels.positions)",
                                f"drugs.{name}.penetration")
        check_immune(self)

    def to_toml(self) -> str:
        """The resolved scenario as TOML text (stored in every output file)."""
        return dumps_toml(schema.to_table(self))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_toml().encode()).hexdigest()


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


# ----------------------------------------------------------------------------- TOML writer
def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else _toml_value(name)


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dumps_toml(table: dict, prefix: str = "") -> str:
    """Serialise nested dicts to TOML: scalars first, then sub-tables, then table arrays."""
    lines, tables, arrays = [], [], []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif _is_table_array(value):
            arrays.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}{_key(key)}"
        body = dumps_toml(value, name + ".")
        scalars = any(not isinstance(v, dict) and not _is_table_array(v) for v in value.values())
        header = f"\n[{name}]\n" if scalars or not value else "\n"
        out += header + body
    for key, items in arrays:
        name = f"{prefix}{_key(key)}"
        for item in items:
            out += f"\n[[{name}]]\n" + dumps_toml(item, name + ".")
    return out
