"""The package layout by role (DESIGN.md, "packages by role"): data flows one way.

A module imports only from ``kernels/`` and from the layers listed before its own (or its
own layer), kernels never import ``simulator``, and no import cycle joins two modules —
counting imports inside functions, which hide cycles from Python but not from a reader.

Layer order differs from DESIGN.md's list in one place, on purpose: ``output/`` (the HDF5
recorder and readers, plots, report) sits *below* ``study/``, because the study runner
writes run files with the recorder; ``output/`` reads study files from disk and never
imports ``study/``.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["schema", "model", "treatment", "analysis", "scenario", "engine", "output", "study",
          "app", "cli"]
FACADES = {"simulator", "simulator.__main__"}  # the public API re-exports from every layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every ``simulator``/``kernels`` module a file imports, at any depth of the file
    (relative imports, as the kernels' are, resolved against the file's package)."""
    found = set()
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or node.level):
            base = (".".join(package[:len(package) - node.level + 1] + [node.module or ""])
                    .strip(".") if node.level else node.module)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_module(candidate) else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in ("simulator", "kernels")}


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "simulator" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def graph() -> dict[str, set[str]]:
    files = list((ROOT / "simulator").rglob("*.py")) + list((ROOT / "kernels").rglob("*.py"))
    return {module_name(p): imports_of(p) for p in files}


def test_every_simulator_module_belongs_to_a_layer():
    for module in graph():
        if module.startswith("simulator") and module not in FACADES:
            assert layer(module) is not None, f"{module} is in no layer of {LAYERS}"


def test_imports_go_down_the_layers_only():
    wrong = []
    for module, imported in graph().items():
        if module in FACADES:
            continue
        if module.startswith("kernels"):
            wrong += [f"{module} -> {m}" for m in imported if m.startswith("simulator")]
            continue
        own = layer(module)
        for target in imported:
            other = layer(target)
            if other is not None and other > own:
                wrong.append(f"{module} ({LAYERS[own]}) -> {target} ({LAYERS[other]})")
    assert not wrong, "imports that go up a layer:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    edges = {m: {t for t in targets if t != m} for m, targets in graph().items()
             if m not in FACADES}
    packages = {m for m in edges if (ROOT.joinpath(*m.split(".")) / "__init__.py").exists()}
    # a package's __init__ re-exporting its own modules is not a cycle with them
    for pkg in packages:
        edges[pkg] = {t for t in edges[pkg] if not t.startswith(pkg + ".")}
    cycles = []
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
