"""Cold start: a run announces, compiles and caches exactly the kernels its scenario uses,
so a second run of any library scenario compiles nothing and says nothing (issue 13)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from numba.core.registry import CPUDispatcher

from conftest import ROOT, needs_jit
from simulator.study.precompile import recorded_name

LIBRARY_RUN = textwrap.dedent("""
    # Runs every library scenario, shrunk, for a few steps; prints JSON: the kernels each
    # scenario would announce in a fresh process (read before anything is loaded), the
    # dispatchers compiled (not loaded from the cache) while running them all, the entry
    # kernels (``kernels_for`` of any scenario) and every compilation started from Python
    # with its argument types and seconds.
    import json, sys, time
    import numba.core.event as ev
    from simulator import engine as E
    from simulator.scenario import library_dir, load
    from kernels import jit as kernel_jit
    from simulator.study.precompile import encode_type, recorded_name
    compiled = []
    top_level = []   # compilations started from Python: kernel, encoded args, seconds
    started = []
    class Listener(ev.Listener):
        def on_start(self, event):
            f = event.data["dispatcher"].py_func
            compiled.append(f"{f.__module__}.{f.__qualname__.removeprefix('serial.')}")
            started.append(time.perf_counter())
        def on_end(self, event):
            begun = started.pop()
            if not started:
                f = event.data["dispatcher"].py_func
                top_level.append(dict(kernel=recorded_name(f"{f.__module__}.{f.__name__}"),
                                      args=[encode_type(t) for t in event.data["args"]],
                                      seconds=time.perf_counter() - begun))
    ev.register("numba:compile", Listener())
    scenarios = {}
    for path in sorted(library_dir().glob("*.toml")):
        ndim = len(load(path).simulation.dimensions)
        scenarios[path.stem] = load(path, [f"simulation.dimensions={[12] * 3 if ndim == 3 else [40, 40]}",
                                           "initial.tumor_radius_sites=4", "vessels.positions=[]",
                                           "simulation.treatment_start_day=0"])
    announced = {name: kernel_jit.needs_compiling(E.kernels_for(s)) for name, s in scenarios.items()}
    entries = sorted({recorded_name(f"{k.py_func.__module__}.{k.__name__}")
                      for s in scenarios.values() for k in E.kernels_for(s)})
    E.set_threads(1)
    per_scenario = {}
    for name, s in scenarios.items():
        before = len(compiled)
        engine = E.Engine(s)
        for _ in range(3):
            engine.step()
        engine.observe()
        per_scenario[name] = compiled[before:]
    print(json.dumps(dict(announced=announced, compiled=compiled, per_scenario=per_scenario,
                          entries=entries, top_level=top_level)))
""")


def _library_run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", LIBRARY_RUN], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Small helpers called with different integer or array types from different call sites:
# each type is its own compilation, but they are a few lines each.
SMALL_HELPERS_OF_SEVERAL_TYPES = {"kernels.tumor._grow", "kernels.lattice._nth_set_bit_deposit",
                                  "kernels.lattice._nth_set_bit_broadword"}


@pytest.fixture(scope="module")
def first_library_run(tmp_path_factory):
    """Every library scenario run on an empty cache: (the cache directory, what it saw)."""
    cache = tmp_path_factory.mktemp("numba-cache")
    return cache, _library_run(cache)


def recorded_signatures(run) -> dict:
    """What ``kernel_signatures.json`` should hold, from a library run on an empty cache:
    every compilation of an entry kernel started from Python."""
    from simulator.study.precompile import Signature
    found = {}
    for c in run["top_level"]:
        if c["kernel"] in run["entries"]:
            signatures = found.setdefault(c["kernel"], [])
            # (one record of what both flavours compile: recorded_name)
            if all(s.args != tuple(c["args"]) for s in signatures):
                signatures.append(Signature(c["kernel"], tuple(c["args"]), c["seconds"]))
    return found


def _signature_set(signatures: dict) -> set:
    return {(name, json.dumps(s.args)) for name, sigs in signatures.items() for s in sigs}


@needs_jit
def test_second_run_of_every_library_scenario_compiles_nothing(first_library_run):
    """A fresh cache: the first process compiles, each kernel once per scenario (a literal
    argument or a float32/float64 mix would compile a second copy: the cold start pays for
    it); the second, running every library scenario again, would announce nothing for any
    of them and compiles nothing."""
    tmp_path, first = first_library_run
    assert first["compiled"], "the first run on an empty cache should compile"
    for name, compiled in first["per_scenario"].items():
        twice = {f for f in compiled if f.startswith("kernels.") and compiled.count(f) > 1}
        assert {recorded_name(f) for f in twice} <= SMALL_HELPERS_OF_SEVERAL_TYPES, (
            name, sorted(twice))
    second = _library_run(tmp_path)
    assert {name: k for name, k in second["announced"].items() if k} == {}
    assert second["compiled"] == []


@needs_jit
def test_announced_kernels_are_those_the_scenario_calls(monkeypatch):
    """Every kernel a library scenario calls from Python is in ``kernels_for`` (so it is
    announced while it is not cached), and every kernel listed there is called (so the
    cache fills and the next run says nothing). Counted through proxies of the kernel
    modules as ``simulator`` sees them; ``kernels.rng``'s small helpers are left out (not
    announced). Treatment starts at day 0 so the drug kernels run within the four steps."""
    import types

    import kernels
    from simulator import engine as E
    from simulator.scenario import library_dir, load
    called = set()

    class Counting:
        def __init__(self, module):
            self._module = module

        def __getattr__(self, name):
            obj = getattr(self._module, name)
            if not isinstance(obj, CPUDispatcher):
                return obj

            def wrapper(*args, **kwargs):
                called.add(f"{self._module.__name__}.{name}")
                return obj(*args, **kwargs)
            return wrapper

    scenarios = {}
    for path in sorted(library_dir().glob("*.toml")):
        ndim = len(load(path).simulation.dimensions)
        scenario = load(path, [f"simulation.dimensions={[12] * 3 if ndim == 3 else [40, 40]}",
                               "initial.tumor_radius_sites=4", "vessels.positions=[]",
                               "simulation.treatment_start_day=0"])
        scenarios[path] = (scenario, {f"{k.py_func.__module__}.{k.__name__}"
                                      for k in E.kernels_for(scenario)})
    for name, module in list(sys.modules.items()):
        if not name.startswith("simulator"):
            continue
        for attr, value in list(vars(module).items()):
            if (isinstance(value, types.ModuleType) and value.__name__.startswith("kernels.")
                    and value.__name__ not in ("kernels.rng", "kernels.jit")):
                monkeypatch.setattr(module, attr, Counting(value))
    # and the modules of the flavour a run calls (``kernels.flavour``)
    flavour = kernels.flavour

    def counting_flavour(serial):
        package = flavour(serial)
        return types.SimpleNamespace(jit=package.jit, **{
            name: Counting(getattr(package, name)) for name in kernels.MODULES})
    monkeypatch.setattr(kernels, "flavour", counting_flavour)
    for path, (scenario, listed) in scenarios.items():
        called.clear()
        engine = E.Engine(scenario)
        for _ in range(4):
            engine.step()
        engine.observe()
        assert called == listed, (path.stem, sorted(called - listed), sorted(listed - called))


@needs_jit
def test_recorded_signatures_are_what_the_library_compiles(first_library_run):
    """``compile_ahead`` compiles from ``kernel_signatures.json``: it must hold exactly the
    argument types with which the library's entry kernels compile (a kernel whose
    arguments changed would otherwise compile ahead in vain and again at its first call).
    Regenerate with ``python tests/test_startup.py --write-signatures``."""
    from simulator.study.precompile import load_signatures
    _, first = first_library_run
    expected = recorded_signatures(first)
    assert expected, "the library run compiled no entry kernel"
    recorded = load_signatures()
    missing = _signature_set(expected) - _signature_set(recorded)
    stale = _signature_set(recorded) - _signature_set(expected)
    assert not missing and not stale, (
        f"kernel_signatures.json is out of date (python tests/test_startup.py "
        f"--write-signatures): missing {sorted(missing)}, stale {sorted(stale)}")


COMPILE_AHEAD_THEN_RUN = textwrap.dedent("""
    # On an empty cache: compile the default scenario's kernels ahead on two processes,
    # then build its engine and step it; prints JSON: how many compiled ahead and the
    # entry kernels compiled afterwards (should be none: all load from the cache).
    import json
    import numba.core.event as ev
    from simulator import engine as E
    from simulator.scenario import load
    from simulator.study.precompile import compile_ahead
    scenario = load(None, ["simulation.dimensions=[40, 40]", "initial.tumor_radius_sites=4"])
    entries = {f"{k.py_func.__module__}.{k.__name__}" for k in E.kernels_for(scenario)}
    ahead, workers = compile_ahead(E.kernels_for(scenario), workers=2)
    compiled = []
    class Listener(ev.Listener):
        def on_start(self, event):
            f = event.data["dispatcher"].py_func
            compiled.append(f"{f.__module__}.{f.__name__}")
        def on_end(self, event):
            pass
    ev.register("numba:compile", Listener())
    E.set_threads(1)
    engine = E.Engine(scenario)
    for _ in range(3):
        engine.step()
    print(json.dumps(dict(ahead=ahead, workers=workers, entries=sorted(entries),
                          compiled_after=sorted(set(compiled) & entries))))
""")


@needs_jit
def test_compile_ahead_leaves_nothing_for_the_first_step(tmp_path):
    """The default scenario's kernels, compiled ahead by a pool of two processes on an
    empty cache, all load from the cache when the engine first calls them."""
    from simulator.study.precompile import load_signatures
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("TUMORSIM_COMPILE_WORKERS", None)
    done = subprocess.run([sys.executable, "-c", COMPILE_AHEAD_THEN_RUN], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    recorded = load_signatures()
    assert result["workers"] == 2
    assert result["ahead"] == sum(len(recorded.get(recorded_name(k), ()))
                                  for k in result["entries"])
    assert result["ahead"] > 0
    assert result["compiled_after"] == []


if __name__ == "__main__":
    if "--write-signatures" in sys.argv:
        import tempfile
        from simulator.study.precompile import write_signatures
        with tempfile.TemporaryDirectory() as cache:
            write_signatures(recorded_signatures(_library_run(cache)),
                             "python tests/test_startup.py --write-signatures")
    else:
        pytest.main([__file__])
