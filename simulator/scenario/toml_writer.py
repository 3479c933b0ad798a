"""Serialising resolved scenario tables back to TOML text (stored in every output file)."""
from __future__ import annotations


def toml_value(value) -> str:
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
        return '"' + "".join(_char(c) for c in value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _char(c: str) -> str:
    """One character of a TOML basic string: quotes, backslashes and control characters
    escaped (TOML forbids them raw), everything else as it is."""
    if c in '"\\':
        return "\\" + c
    if c == "\n":
        return "\\n"
    if c == "\t":
        return "\\t"
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\u{ord(c):04x}"
    return c


def _key(name: str) -> str:
    bare = name and name.isascii() and name.replace("_", "").replace("-", "").isalnum()
    return name if bare else toml_value(name)


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
            lines.append(f"{_key(key)} = {toml_value(value)}")
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
