"""The two flavours of the kernels (``kernels.flavour``): ``kernels.serial`` is the same
source compiled without ``parallel``, cached apart from the parallel kernels, and a run
gives the same bits whichever it calls; small 2D lattices call the serial one
(``simulator.model.state.kernel_flavour``)."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np

import kernels
from conftest import ROOT, needs_jit
from simulator import engine as E
from simulator.model import state as state_mod
from simulator.scenario import load


def _function(kernel):
    """The Python function of a kernel (itself without JIT)."""
    return getattr(kernel, "py_func", kernel)


def test_the_serial_flavour_is_the_same_source_compiled_serial():
    parallel, serial = kernels.flavour(False), kernels.flavour(True)
    assert parallel is kernels and serial.__name__ == "kernels.serial"
    assert not parallel.jit.SERIAL and serial.jit.SERIAL
    for name in kernels.MODULES:
        assert getattr(serial, name).__file__ == getattr(parallel, name).__file__
    one, other = parallel.lattice.count_kinds, serial.lattice.count_kinds
    assert one is not other
    assert _function(one).__code__.co_code == _function(other).__code__.co_code
    if not numba.config.DISABLE_JIT:
        assert one.targetoptions.get("parallel") is True
        assert "parallel" not in other.targetoptions
        # a serial kernel calls serial callees: each module's globals are its own flavour's
        assert serial.t_cells.by_site_bucket is serial.immune.by_site_bucket
        assert serial.t_cells.by_site_bucket is not parallel.immune.by_site_bucket


def test_small_2d_lattices_call_the_serial_flavour():
    below = state_mod.SERIAL_KERNELS_BELOW
    side = int(below ** 0.5)
    assert state_mod.kernel_flavour((side - 1, side)) is kernels.flavour(True)
    assert state_mod.kernel_flavour((side + 1, side + 1)) is kernels.flavour(False)
    assert state_mod.kernel_flavour((20, 20, 20)) is kernels.flavour(False)  # 3D: no lanes
    scenario = load(None, ["simulation.dimensions=[40, 40]"])
    assert {_function(k).__module__.split(".")[1] for k in E.kernels_for(scenario)} == {"serial"}


CACHE_FILES = textwrap.dedent("""
    import json, sys
    import kernels
    import numpy as np
    from kernels.lattice import EMPTY
    kind = np.full(3 * 6, EMPTY, np.uint8)
    out = {}
    for serial in (False, True):
        count_kinds = kernels.flavour(serial).lattice.count_kinds
        counts = np.zeros((3, 8), np.int64)
        count_kinds(kind, 6, 3, counts)
        out[str(serial)] = [int(counts.sum()), len(count_kinds.stats.cache_hits)]
    print(json.dumps(out))
""")


@needs_jit
def test_each_flavour_has_cache_entries_of_its_own(tmp_path):
    """Numba names a kernel's cache files by its source file and qualified name, and its
    cache key holds neither the module nor the parallel flag: without the serial
    flavour's own names, whichever flavour compiled last would serve both."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def run():
        done = subprocess.run([sys.executable, "-c", CACHE_FILES], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()[-1]

    assert run() == '{"False": [18, 0], "True": [18, 0]}'   # both compiled
    assert run() == '{"False": [18, 1], "True": [18, 1]}'   # both loaded
    names = sorted(p.name for p in tmp_path.rglob("*count_kinds*.nbi"))
    assert len(names) == 2 and sum(".serial.count_kinds-" in n for n in names) == 1, names


PRUNED = textwrap.dedent("""
    import json
    import kernels
    from simulator import engine as E
    from simulator.scenario import load
    from simulator.study import precompile
    scenario = load(None, ["simulation.dimensions=[300, 300]"])
    wanted = ("migrate", "restrict_levels_2d")
    for s in precompile.pending([k for k in E.kernels_for(scenario) if k.__name__ in wanted]):
        precompile.compile_signature(s.kernel, s.args)
    k, p = kernels.flavour(True), kernels.flavour(False)
    p.multigrid.restrict_levels_2d.compile(k.multigrid.restrict_levels_2d.signatures[0])
    print(json.dumps(dict(
        serial=[len(k.immune.migrate.signatures), len(k.immune._team_substeps.signatures),
                len(k.multigrid._restrict_in_parallel.signatures)],
        parallel=len(p.multigrid._restrict_in_parallel.signatures))))
""")


@needs_jit
def test_the_serial_flavour_never_compiles_the_parallel_branches(tmp_path):
    """``if SERIAL or ...:`` branches are pruned before typing in the serial flavour: on an
    empty cache, compiling its migration and restriction compiles neither migration's team
    nor the restriction in parallel chunks, which the parallel flavour's restriction does
    compile (the check can fail)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", PRUNED], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == '{"serial": [1, 0, 0], "parallel": 1}'


def _final_state(scenario, steps, serial, threads, monkeypatch):
    monkeypatch.setattr(state_mod, "SERIAL_KERNELS_BELOW", 2 ** 62 if serial else 0)
    E.set_threads(threads)
    engine = E.Engine(scenario)
    assert engine.state.geometry.kernels is kernels.flavour(serial)
    for _ in range(steps):
        engine.step()
    arrays = dict(kind=engine.state.kind, clone=engine.state.clone,
                  pdl1=engine.immune.pdl1, t_sites=engine.immune.t.live("sites"),
                  s_sites=engine.immune.s.live("sites"),
                  **{f"field_{name}": engine.tissue.arrays[name]
                     for name in engine.tissue.names})
    return {k: np.array(v, copy=True) for k, v in arrays.items()}, engine.observe()


@needs_jit
def test_either_flavour_gives_the_same_run(monkeypatch):
    """A small 2D run with immune cells (in chunks at 2 threads in the parallel flavour)
    and all four fields, at 1 and 2 threads with the parallel kernels and at 2 with the
    serial ones: the same lattice, agents, fields and counts, bit for bit."""
    scenario = load(None, ["simulation.dimensions=[90, 80]", "initial.tumor_radius_sites=12",
                           "t_cells.recruitment_rate_per_day=600",
                           "t_cells.basal_recruitment_fraction=1",
                           "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=400",
                           *(f"fields.{f}.enabled=true" for f in
                             ("oxygen", "chemokine", "ifn_gamma", "suppressive_cytokine"))])
    before = numba.get_num_threads()
    try:
        runs = [_final_state(scenario, 12, serial, threads, monkeypatch)
                for serial, threads in ((False, 1), (False, 2), (True, 2))]
    finally:
        numba.set_num_threads(before)
    (first, counts), others = runs[0], runs[1:]
    assert kernels.immune.chunks_for(counts["t_cells"], 2) > 2
    for arrays, observed in others:
        assert arrays.keys() == first.keys()
        for name in first:
            assert arrays[name].tobytes() == first[name].tobytes(), name
        assert repr(observed) == repr(counts)  # (NaN equals NaN in a repr)


@needs_jit
def test_pending_signatures_are_recorded_once_for_both_flavours(monkeypatch):
    """Signatures are recorded under the parallel flavour's names; a serial kernel compiles
    ahead from them under its own name."""
    from simulator.study import precompile
    from simulator.study.precompile import Signature
    import kernels.jit as kernel_jit
    serial = kernels.flavour(True)
    recorded = {"kernels.tumor.schedule": [Signature("kernels.tumor.schedule", ("int64",), 3.0)]}
    monkeypatch.setattr(kernel_jit, "needs_compiling", lambda ks: [k.__name__ for k in ks])
    todo = precompile.pending((serial.tumor.schedule,), recorded)
    assert todo == [Signature("kernels.serial.tumor.schedule", ("int64",), 3.0)]
    assert precompile.recorded_name("kernels.serial.tumor.schedule") == "kernels.tumor.schedule"
