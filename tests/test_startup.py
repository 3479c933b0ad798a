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

LIBRARY_RUN = textwrap.dedent("""
    # Runs every library scenario, shrunk, for a few steps; prints JSON: the kernels each
    # scenario would announce in a fresh process (read before anything is loaded) and the
    # dispatchers compiled (not loaded from the cache) while running them all.
    import json, sys
    import numba.core.event as ev
    from simulator import engine as E
    from simulator.scenario import library_dir, load
    from kernels import jit as kernel_jit
    compiled = []
    class Listener(ev.Listener):
        def on_start(self, event):
            f = event.data["dispatcher"].py_func
            compiled.append(f"{f.__module__}.{f.__qualname__}")
        def on_end(self, event):
            pass
    ev.register("numba:compile", Listener())
    scenarios = {}
    for path in sorted(library_dir().glob("*.toml")):
        ndim = len(load(path).simulation.dimensions)
        scenarios[path.stem] = load(path, [f"simulation.dimensions={[12] * 3 if ndim == 3 else [40, 40]}",
                                           "initial.tumor_radius_sites=4", "vessels.positions=[]",
                                           "simulation.treatment_start_day=0"])
    announced = {name: kernel_jit.needs_compiling(E.kernels_for(s)) for name, s in scenarios.items()}
    E.set_threads(1)
    per_scenario = {}
    for name, s in scenarios.items():
        before = len(compiled)
        engine = E.Engine(s)
        for _ in range(3):
            engine.step()
        engine.observe()
        per_scenario[name] = compiled[before:]
    print(json.dumps(dict(announced=announced, compiled=compiled, per_scenario=per_scenario)))
""")


def _library_run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", LIBRARY_RUN], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Small helpers called with different integer or array types from different call sites:
# each type is its own compilation, but they are a few lines each.
SMALL_HELPERS_OF_SEVERAL_TYPES = {"kernels.tumor._grow", "kernels.lattice.nth_set_bit"}


@needs_jit
def test_second_run_of_every_library_scenario_compiles_nothing(tmp_path):
    """A fresh cache: the first process compiles, each kernel once per scenario (a literal
    argument or a float32/float64 mix would compile a second copy: the cold start pays for
    it); the second, running every library scenario again, would announce nothing for any
    of them and compiles nothing."""
    first = _library_run(tmp_path)
    assert first["compiled"], "the first run on an empty cache should compile"
    for name, compiled in first["per_scenario"].items():
        twice = {f for f in compiled if f.startswith("kernels.") and compiled.count(f) > 1}
        assert twice <= SMALL_HELPERS_OF_SEVERAL_TYPES, (name, sorted(twice))
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

    for name, module in list(sys.modules.items()):
        if not name.startswith("simulator"):
            continue
        for attr, value in list(vars(module).items()):
            if (isinstance(value, types.ModuleType) and value.__name__.startswith("kernels.")
                    and value.__name__ not in ("kernels.rng", "kernels.jit")):
                monkeypatch.setattr(module, attr, Counting(value))
    for path in sorted(library_dir().glob("*.toml")):
        ndim = len(load(path).simulation.dimensions)
        scenario = load(path, [f"simulation.dimensions={[12] * 3 if ndim == 3 else [40, 40]}",
                               "initial.tumor_radius_sites=4", "vessels.positions=[]",
                               "simulation.treatment_start_day=0"])
        listed = {f"{k.py_func.__module__}.{k.__name__}" for k in E.kernels_for(scenario)}
        called.clear()
        engine = E.Engine(scenario)
        for _ in range(4):
            engine.step()
        engine.observe()
        assert called == listed, (path.stem, sorted(called - listed), sorted(listed - called))


if __name__ == "__main__":
    pytest.main([__file__])
