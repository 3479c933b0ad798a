"""Generate ``docs/parameters.md`` from the scenario schema (``simulator.schema.describe``).

    python -m simulator.output.docs            # rewrite docs/parameters.md
    python -m simulator.output.docs --check    # exit 1 if the committed file is out of date

Every scenario key is listed with its meaning, default, unit and source, one table per
top-level section, in the order of the ``Scenario`` dataclass. ``tests/test_docs.py`` fails
when the committed file differs from what this module generates.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulator.schema import describe

DOCS = Path(__file__).resolve().parents[2] / "docs" / "parameters.md"

HEADER = """# Scenario parameters

Generated from the scenario schema by `python -m simulator.output.docs`; do not edit by hand (a test
fails when this file is out of date). Every key carries its unit in its name; rates in
scenario files are physical and become per-step probabilities `1 - exp(-k dt)` once, when
the engine is built. `<name>` stands for a name you choose (a drug), `[]` for an entry of a
list of tables. See `docs/model.md` for what each process does and the order of phases.
"""


def _value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if value else '""'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or " "


def parameters_markdown() -> str:
    from simulator.scenario import Scenario
    sections: dict[str, list] = {}
    for key, default, unit, doc, source in describe(Scenario):
        section = key.split(".")[0].split("[")[0] if "." in key or "[" in key else "(top level)"
        sections.setdefault(section, []).append((key, default, unit, doc, source))
    lines = [HEADER]
    for section, rows in sections.items():
        title = section if section == "(top level)" else f"`[{section}]`"
        lines += [f"## {title}", "", "| key | meaning | default | unit | source |",
                  "|---|---|---|---|---|"]
        for key, default, unit, doc, source in rows:
            lines.append(f"| `{key}` | {_cell(doc)} | `{_cell(_value(default))}` | "
                         f"{_cell(unit)} | {_cell(source)} |")
        lines.append("")
    return "\n".join(lines)


def generated_doc_main(argv, *, prog: str, path: Path, text: str) -> int:
    """The command line of a generated document: write ``text`` to ``path`` (``-o``), or with
    ``--check`` exit 1 when the committed file differs (the docs tests use the same text)."""
    parser = argparse.ArgumentParser(prog=prog, description=f"write {path.name}")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 if {path.name} is out of date")
    parser.add_argument("-o", "--output", type=Path, default=path)
    args = parser.parse_args(argv)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run {prog}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


def main(argv=None) -> int:
    return generated_doc_main(argv, prog="python -m simulator.output.docs", path=DOCS,
                              text=parameters_markdown())


if __name__ == "__main__":
    sys.exit(main())
