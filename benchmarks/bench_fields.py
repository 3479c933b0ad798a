"""Fields phase: the multigrid solver (kernels/multigrid.py) against the pseudo-time ADI
solver it replaced, side by side in one run, on the full-step benchmark's lattice.

Run: ``python benchmarks/bench_fields.py [--quick] [--radius R] [--steps N] [--threads T]
[--json PATH]`` (default: 1000x1000, tumour radius 420, 8 steps, 1 thread; JSON
``benchmarks/results/fields.json``).

Start state: ``bench_full_step.build_start_engine`` (the default scenario with all four
fields, tumour disc and vessels throughout, T cells and suppressive cells raised to 15000 /
5000 by the engine's own recruitment). Then ``steps`` engine steps, each phase in order as
``Engine.step`` runs them; around the ``fields`` phase:

* new: the wall time of the engine's fields phase (tables, IFN-gamma-induced and T-cell
  sources, one warm-started V-cycle per field, the oxygen division factor), and of each
  field's multigrid solve alone. The solver's right-hand side and reaction of each field are
  copied out for the two lines below (the copy is not timed);
* old: the ADI solver as the engine ran it before (``kernels/fields.py`` at commit
  ADI_COMMIT, loaded from git history; one pseudo-time cycle per field, warm-started from its
  own previous fields, float64), fed the SAME uptake and sources: per-kind tables built by
  the old ``kind_sources`` kernel (a copy below; its time counts for the old phase, as it
  did in the engine), the captured right-hand side as the source;
* accuracy: each field's converged steady state for this step's tables (multigrid to 1e-7
  of the maximum, at most 100 cycles; within ~1e-6 of the exact discrete steady state,
  tests/test_fields.py), and each solver's max |c - steady| / max steady.

Both solvers start from the same converged fields (the engine's first solve). Timings are
the sum over the steps, printed per step; they are measured in the same process, step by
step, so load from other processes hits both alike (the table gives the load averages).

Then the floors (each field's bytes at the stream bandwidths of arrays beyond the caches
and within the last-level cache), every field on coarser grids (``--grid-coarsening``), and
the phase with each field as coarse as the ADI solver's accuracy allows
(:func:`same_accuracy`: issue 13's target at "the same accuracy").
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (puts the repository root on sys.path)
from common import log  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

import bench_full_step as full  # noqa: E402
import bench_machine  # noqa: E402
from kernels import lattice  # noqa: E402
from kernels import microenvironment as micro  # noqa: E402
from kernels import multigrid as field_kernels  # noqa: E402
from kernels.jit import parallel_jit, prange  # noqa: E402
from simulator import engine as engine_mod  # noqa: E402
from simulator import scenario as scenario_mod  # noqa: E402
from simulator.model.tissue import FieldSolver  # noqa: E402

ADI_COMMIT = "bda5f05"     # the last commit with kernels/fields.py (pseudo-time ADI)
ADI_DIR = common.RESULTS / f".adi_{ADI_COMMIT}"   # git-ignored; its Numba cache lives there
TARGET_MS = 15.0           # issue 13: fields phase at 1000x1000, 1 thread, four fields
REFERENCE_TOLERANCE = 1e-7
REFERENCE_CYCLES = 100
MODES = dict(full=dict(full.MODES["full"], radius=420, steps=8),
             quick=dict(full.MODES["quick"], steps=3))


def load_adi():
    """kernels/fields.py at ADI_COMMIT as a module (``git show``; needs this git checkout)."""
    path = ADI_DIR / "adi_fields.py"
    if not path.exists():
        text = common.file_at(ADI_COMMIT, "kernels/fields.py")
        ADI_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    sys.path.insert(0, str(ADI_DIR))   # a plain import: Numba's cache finds it again
    return importlib.import_module("adi_fields")


@parallel_jit
def kind_sources(kind, uptake, source, uptake_by_kind, source_by_kind, line_length):
    """The old engine's per-site uptake and source of every field from the cell kind (as
    kernels.microenvironment.kind_sources at ADI_COMMIT, without the IFN-induced term, which
    here comes with the captured source)."""
    n_fields = uptake.shape[0]
    for line in prange(kind.shape[0] // line_length):
        base = line * line_length
        for col in range(line_length):
            i = base + col
            k = kind[i]
            for f in range(n_fields):
                uptake[f, i] = uptake_by_kind[f, k]
                source[f, i] = source_by_kind[f, k]


class AdiFields:
    """The replaced solver's state: float64 fields, their uptake / source arrays."""

    def __init__(self, engine, adi):
        tissue, sim = engine.tissue, engine.scenario.simulation
        self.adi = adi
        self.names = tissue.names
        self.padded = tissue.padded
        self.line_length = tissue.line_length
        n, n_sites = len(self.names), int(np.prod(self.padded))
        dt_min, dx2 = sim.dt_hours * 60.0, sim.spacing_um ** 2
        self.alpha, self.decay_dt = np.zeros(n), np.zeros(n)
        self.bc = []
        self.uptake_by_kind = np.zeros((n, len(lattice.KIND_NAMES)))
        for f, name in enumerate(self.names):
            s = engine.scenario.fields.settings(name)
            self.alpha[f] = s.diffusion_um2_per_min * dt_min / dx2
            self.decay_dt[f] = s.decay_per_min * dt_min
            self.bc.append(s.faces(sim.ndim))
            up = self.uptake_by_kind[f]
            up[lattice.TUMOR] = s.tumor_uptake_per_min * dt_min
            up[lattice.T_CELL] = up[lattice.SUPPRESSIVE] = s.immune_uptake_per_min * dt_min
            up[lattice.VESSEL] = s.vessel_exchange_per_min * dt_min
        self.source_by_kind = tissue.source_by_kind.astype(np.float64)
        self.uptake = np.zeros((n, n_sites))
        self.source = np.zeros((n, n_sites))
        self.work = np.zeros(self.padded)
        self.arrays = {name: tissue.arrays[name].astype(np.float64) for name in self.names}

    def sources(self, kind):
        kind_sources(kind, self.uptake, self.source, self.uptake_by_kind, self.source_by_kind,
                     self.line_length)

    def solve(self, f, source):
        """One warm-started pseudo-time cycle (the old engine's default) on field f, with
        the given source (the captured one)."""
        self.source[f] = source
        kinds, values = self.bc[f]
        self.adi.quasi_steady_state(self.arrays[self.names[f]], self.work, self.alpha[f],
                                    self.decay_dt[f], self.uptake[f].reshape(self.padded),
                                    self.source[f].reshape(self.padded), kinds, values,
                                    1e-3, 1)


def streamed_bytes(levels, three: bool, reaction_buffer: bool) -> tuple[int, int]:
    """Bytes one step of a field must move between memory and the cores in this scheme, if
    every array were streamed exactly once per pass (the floor of the streaming section):
    (its per-kind tables: the kinds read, the right-hand side and, with ``reaction_buffer``
    (a reaction that differs by kind), the reaction written; its solve: per level above the
    coarsest, a down and an up pass each reading and writing the field and reading the
    right-hand side (and reaction), writing the coarse right-hand side (down) or reading
    the coarse correction (up); each coarse correction zeroed once; the reaction restricted
    to every level). Writes count once, as in ``bench_machine.stream``."""
    geo = levels[0]
    size = [field_kernels.level_size(geo, l, three) for l in range(geo.shape[0])]
    k = int(reaction_buffer)
    solve = 0
    for l in range(len(size) - 1):
        solve += 2 * 4 * ((3 + k) * size[l] + size[l + 1])
        solve += 4 * size[l] if l > 0 else 0
        solve += 4 * k * (size[l] + size[l + 1])
    return size[0] * (1 + 4 + 4 * k), solve


def rel_error(c, ref):
    inner = (slice(1, -1),) * c.ndim
    r = ref[inner].astype(np.float64)
    return float(np.abs(c[inner].astype(np.float64) - r).max() / np.abs(r).max())


def fields_phases(engine, steps: int, clock: dict):
    """Advance ``engine`` ``steps`` steps phase by phase (as ``Engine.step``); after each
    fields phase yield (step, its wall seconds less ``clock["copy"]``, the time the
    caller's capture spent copying inside it)."""
    for step in range(steps):
        for name, phase in engine.phases:
            if name != "fields":
                phase()
                continue
            clock["copy"] = 0.0
            t0 = time.perf_counter()
            phase()
            yield step, time.perf_counter() - t0 - clock["copy"]
        engine.state.step += 1
        engine.observe()


def run_steps(start, adi_module, steps: int, threads: int):
    """The side-by-side steps (see the module docstring) on ``start``, which they advance;
    returns per-field and phase milliseconds per step and errors. Every field is solved
    in the fields phase: at 2 threads the engine would leave two for the tumour phase
    (``Engine.FIELDS_ALONGSIDE``), and this phase would then time, and capture, only two."""
    engine_mod.set_threads(threads)
    engine = start
    engine.FIELDS_ALONGSIDE = False
    tissue = engine.tissue
    solver = tissue.solver
    names = tissue.names
    old = AdiFields(engine, adi_module)
    ref_solver = FieldSolver(tissue.padded)
    n = solver.n_sites
    key_of = {f"fields.{name}": f for f, name in enumerate(names)}
    captured = {}
    clock = dict(solve=np.zeros(len(names)), copy=0.0)
    original = solver.solve

    def capture(c, levels, tolerance, max_cycles, cold, key, *coarse_grid):
        t0 = time.perf_counter()
        cycles = original(c, levels, tolerance, max_cycles, cold, key, *coarse_grid)
        t1 = time.perf_counter()
        clock["solve"][key_of[key]] += t1 - t0
        clock["tables"][key_of[key]] += clock["pending_tables"]  # built just before
        clock["pending_tables"] = 0.0
        captured[key_of[key]] = (solver.rhs[:n].copy(), solver.reaction[:n].copy(), levels)
        clock["copy"] += time.perf_counter() - t1
        return cycles

    def timed(kernel, add):
        def call(*args):
            t0 = time.perf_counter()
            kernel(*args)
            add(time.perf_counter() - t0)
        return call

    # the per-kind tables (one call per field, each just before its solve, to which they
    # are counted) and the IFN-gamma-induced secretion, timed inside the phase for the
    # streaming floor; since 2026-12-06 the chemokine's table and induced secretion are
    # one kernel when the tumour response left its Hill powers (every step but the
    # first): counted as the induced secretion
    clock.update(tables=np.zeros(len(names)), induced=np.zeros(1), pending_tables=0.0)
    originals = (field_kernels.fine_tables, micro.induced_secretion,
                 micro.induced_secretion_from_powers)

    def add_tables(seconds):
        clock["pending_tables"] += seconds

    def add_induced(seconds):
        clock["induced"][0] += seconds

    field_kernels.fine_tables = timed(originals[0], add_tables)
    micro.induced_secretion = timed(originals[1], add_induced)
    micro.induced_secretion_from_powers = timed(originals[2], add_induced)
    solver.solve = capture
    seconds = dict(new_phase=0.0, old_sources=0.0, old_solve=np.zeros(len(names)))
    errors = dict(new=np.zeros((steps, len(names))), old=np.zeros((steps, len(names))))
    for step, phase_seconds in fields_phases(engine, steps, clock):
        seconds["new_phase"] += phase_seconds
        t0 = time.perf_counter()
        old.sources(engine.state.kind)
        seconds["old_sources"] += time.perf_counter() - t0
        for f, name_f in enumerate(names):
            rhs, reaction, levels = captured[f]
            t0 = time.perf_counter()
            old.solve(f, rhs)
            seconds["old_solve"][f] += time.perf_counter() - t0
            ref = tissue.arrays[name_f].copy()
            ref_solver.rhs[:n] = rhs
            ref_solver.reaction[:n] = reaction
            ref_solver.solve(ref, levels, REFERENCE_TOLERANCE, REFERENCE_CYCLES, False,
                             f"fields.{name_f}", 0, None, tissue.reaction_rows[f])
            errors["new"][step, f] = rel_error(tissue.arrays[name_f], ref)
            errors["old"][step, f] = rel_error(old.arrays[name_f], ref)
    solver.solve = original
    (field_kernels.fine_tables, micro.induced_secretion,
     micro.induced_secretion_from_powers) = originals
    per_step = 1e3 / steps
    old_solve_ms = seconds["old_solve"] * per_step
    floor_bytes = [streamed_bytes(tissue.levels[f], solver.three,
                                  tissue.reaction_rows[f] is None) for f in range(len(names))]
    new_solve_ms = clock["solve"] * per_step
    return dict(
        threads=threads, steps=steps, fields=list(names),
        new_phase_ms=seconds["new_phase"] * per_step,
        new_solve_ms=new_solve_ms.tolist(),
        tables_ms=(clock["tables"] * per_step).tolist(),
        induced_secretion_ms=float(clock["induced"][0] * per_step),
        tables_bytes=[t for t, _ in floor_bytes],
        solve_bytes=[b for _, b in floor_bytes],
        old_sources_ms=seconds["old_sources"] * per_step,
        old_solve_ms=old_solve_ms.tolist(),
        # the old phase: its kind_sources, its solves, and what the new phase spends
        # besides the solves (IFN-gamma-induced and T-cell sources, division factor), which
        # the old engine spent too
        old_phase_ms=(seconds["old_sources"] * per_step + old_solve_ms.sum()
                      + max(seconds["new_phase"] * per_step - new_solve_ms.sum(), 0.0)),
        new_error_max=errors["new"].max(axis=0).tolist(),
        old_error_max=errors["old"].max(axis=0).tolist(),
        new_error_mean=errors["new"].mean(axis=0).tolist(),
        old_error_mean=errors["old"].mean(axis=0).tolist())


def run_coarse(start, factor, steps: int, threads: int):
    """The same steps from a copy of ``start`` with every field solved on a grid ``factor``
    times coarser (``fields.<name>.grid_coarsening``; a dict: each field's own factor; one
    untimed step first, whose solve starts the coarse grids from scratch): the fields
    phase's milliseconds per step, and
    each field's distance from the converged steady state ON THE LATTICE of the same
    step's tables (the accuracy a coarse grid gives up): max and root-mean-square of
    |c - steady| / max steady over the lattice, max and mean over the steps."""
    engine_mod.set_threads(threads)
    names = start.tissue.names
    fine_levels = start.tissue.levels
    fine_rows = start.tissue.reaction_rows
    factors = factor if isinstance(factor, dict) else dict.fromkeys(names, factor)
    scenario = scenario_mod.replace(
        start.scenario, fields={name: dict(grid_coarsening=factors[name]) for name in names})
    engine = engine_mod.fork(full.copy.deepcopy(start), scenario)
    engine.step()
    solver = engine.tissue.solver
    n = solver.n_sites
    ref_solver = FieldSolver(engine.tissue.padded)
    captured = {}
    original = solver.solve
    clock = dict(copy=0.0)

    def capture(c, levels, tolerance, max_cycles, cold, key, *coarse_grid):
        t0 = time.perf_counter()
        captured[key] = (solver.rhs[:n].copy(), solver.reaction[:n].copy())
        clock["copy"] += time.perf_counter() - t0
        return original(c, levels, tolerance, max_cycles, cold, key, *coarse_grid)

    solver.solve = capture
    phase_s = 0.0
    err_max = np.zeros((steps, len(names)))
    err_rms = np.zeros((steps, len(names)))
    for step, phase_seconds in fields_phases(engine, steps, clock):
        phase_s += phase_seconds
        for f, field in enumerate(names):
            rhs, reaction = captured[f"fields.{field}"]
            ref = engine.tissue.arrays[field].copy()
            ref_solver.rhs[:n] = rhs
            ref_solver.reaction[:n] = reaction
            ref_solver.solve(ref, fine_levels[f], REFERENCE_TOLERANCE, REFERENCE_CYCLES,
                             False, f"fields.{field}", 0, None, fine_rows[f])
            inner = (slice(1, -1),) * ref.ndim
            diff = (engine.tissue.arrays[field][inner].astype(np.float64)
                    - ref[inner].astype(np.float64))
            top = float(np.abs(ref[inner]).max())
            err_max[step, f] = float(np.abs(diff).max()) / top
            err_rms[step, f] = float(np.sqrt(np.mean(diff ** 2))) / top
    solver.solve = original
    return dict(factor=factor if not isinstance(factor, dict) else None,
                factors=[factors[name] for name in names],
                fields_ms=phase_s * 1e3 / steps, fields=list(names),
                error_max=err_max.max(axis=0).tolist(),
                error_rms=err_rms.mean(axis=0).tolist())


def same_accuracy(start, res: dict, steps: int, threads: int) -> dict:
    """Issue 13 asks for the fields phase at the ADI solver's accuracy, and allows a field on
    a coarser grid: each field on the coarsest grid measured whose error (all fields
    coarsened alike) stayed within the ADI solver's on the same steps, run together, with
    each field's error measured again (the fields' sources couple them) and checked."""
    r = res["result"]
    adi = dict(zip(r["fields"], r["old_error_max"]))
    factors = dict.fromkeys(r["fields"], 1)
    for row in res["coarse_grids"]:
        for name, error in zip(row["fields"], row["error_max"]):
            if error <= adi[name]:
                factors[name] = max(factors[name], row["factor"])
    out = run_coarse(start, factors, steps, threads)
    out["adi_error_max"] = [adi[name] for name in out["fields"]]
    out["within_adi"] = [bool(e <= adi[name]) for e, name in zip(out["error_max"],
                                                                  out["fields"])]
    return out


def streaming_floor(r: dict, gb_s: float) -> dict:
    """Each field's tables and solve, and the phase, against the time their bytes
    (:func:`streamed_bytes`) take at the measured stream bandwidth; the phase's floor adds
    the IFN-gamma-induced secretion as measured (a power per tumour cell: compute, not
    streams) and nothing for the rest of the phase."""
    per_field = []
    for f, name in enumerate(r["fields"]):
        moved = r["tables_bytes"][f] + r["solve_bytes"][f]
        measured = r["tables_ms"][f] + r["new_solve_ms"][f]
        floor = moved / gb_s / 1e6
        per_field.append(dict(field=name, megabytes=moved / 1e6, floor_ms=floor,
                              measured_ms=measured, measured_over_floor=measured / floor))
    floor_phase = sum(row["floor_ms"] for row in per_field) + r["induced_secretion_ms"]
    return dict(fields=per_field, induced_secretion_ms=r["induced_secretion_ms"],
                phase_floor_ms=floor_phase, phase_ms=r["new_phase_ms"],
                phase_over_floor=r["new_phase_ms"] / floor_phase)


def print_report(res):
    common.print_header(res, "Fields phase: multigrid vs pseudo-time ADI")
    s = res["start"]
    print(f"lattice {res['config']['dimensions']}, start step {s['start_step']}: "
          f"{s['start_counts']}")
    r = res["result"]
    print(f"{r['steps']} steps, {r['threads']} thread(s); ms per step; error = max over the "
          "steps of max |c - steady| / max steady")
    print(f"{'field':<22}{'ADI ms':>9}{'MG ms':>9}{'ratio':>8}{'ADI err':>11}{'MG err':>11}")
    for f, name in enumerate(r["fields"]):
        print(f"{name:<22}{r['old_solve_ms'][f]:9.2f}{r['new_solve_ms'][f]:9.2f}"
              f"{r['old_solve_ms'][f] / r['new_solve_ms'][f]:8.2f}"
              f"{r['old_error_max'][f]:11.2e}{r['new_error_max'][f]:11.2e}")
    print(f"{'four solves':<22}{sum(r['old_solve_ms']):9.2f}{sum(r['new_solve_ms']):9.2f}"
          f"{sum(r['old_solve_ms']) / sum(r['new_solve_ms']):8.2f}")
    print(f"{'fields phase':<22}{r['old_phase_ms']:9.2f}{r['new_phase_ms']:9.2f}"
          f"{r['old_phase_ms'] / r['new_phase_ms']:8.2f}"
          f"   (old: kind_sources {r['old_sources_ms']:.2f} ms + solves + the rest of the "
          "new phase)")
    floor = res.get("streaming_floor")
    cached = res.get("cached_streaming_floor")
    if floor and cached:
        print(f"\nStreaming floor: the bytes of each field's tables and solve if every array "
              f"moved once per pass, at the stream bandwidths measured in this run at "
              f"{r['threads']} thread(s): arrays beyond the caches "
              f"({res['stream_gb_s']:.1f} GB/s) and arrays that stay in the last-level cache "
              f"({res['cached_stream_gb_s']:.1f} GB/s), as this lattice's do")
        print(f"{'field':<22}{'MB':>8}{'DRAM floor':>12}{'cache floor':>13}{'measured':>10}"
              f"{'x DRAM':>8}{'x cache':>9}")
        for row, crow in zip(floor["fields"], cached["fields"]):
            print(f"{row['field']:<22}{row['megabytes']:8.1f}{row['floor_ms']:12.2f}"
                  f"{crow['floor_ms']:13.2f}{row['measured_ms']:10.2f}"
                  f"{row['measured_over_floor']:8.2f}{crow['measured_over_floor']:9.2f}")
        print(f"{'fields phase':<22}{'':>8}{floor['phase_floor_ms']:12.2f}"
              f"{cached['phase_floor_ms']:13.2f}{floor['phase_ms']:10.2f}"
              f"{floor['phase_over_floor']:8.2f}{cached['phase_over_floor']:9.2f}")
        state_mb = (res["start"]["bytes_per_site"]
                    * float(np.prod(res["config"]["dimensions"])) / 1e6)
        cache = res["machine"].get("last_level_cache_bytes")
        here = ("" if not cache else
                f": this machine's {cache / 2**20:g} MiB holds it" if cache >= state_mb * 1e6
                else f": this machine's {cache / 2**20:g} MiB holds less than that, so each "
                     "phase finds part of its arrays evicted by the phases before it")
        print(f"  (a floor adds the IFN-gamma-induced secretion as measured, "
              f"{floor['induced_secretion_ms']:.2f} ms; the engine's state here, "
              f"{state_mb:.0f} MB, fits in a last-level cache of that size or more, and then "
              f"the cache floor is the one that binds{here})")
    if res.get("coarse_grids"):
        print("\nFields on a coarser grid (fields.<name>.grid_coarsening, all four fields): "
              "fields phase ms per step; error against the converged steady state on the "
              "lattice, max over the sites (and root-mean-square), relative to the field's "
              "maximum, worst step (rms: mean over the steps)")
        print(f"{'coarsening':>10}{'phase ms':>10}" + "".join(f"{n:>26}" for n in
                                                         res["coarse_grids"][0]["fields"]))
        for row in res["coarse_grids"]:
            cells = "".join(f"{m:>15.2e} ({q:.1e})" for m, q in
                            zip(row["error_max"], row["error_rms"]))
            print(f"{row['factor']:>10}{row['fields_ms']:>10.2f}{cells}")
    same = res.get("same_accuracy")
    if same:
        print("\nAt the ADI solver's accuracy: each field on the coarsest grid above whose error "
              "stayed within the ADI solver's (" + ", ".join(
                  f"{n} {f}x" for n, f in zip(same["fields"], same["factors"])) + "), together")
        print(f"  fields phase {same['fields_ms']:.2f} ms per step; errors " + ", ".join(
            f"{n} {e:.2e} (ADI {a:.2e}: {'within' if ok else 'BEYOND'})"
            for n, e, a, ok in zip(same["fields"], same["error_max"], same["adi_error_max"],
                                   same["within_adi"])))
    common.print_targets(res["targets"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="400x400 smoke run, 3 steps")
    ap.add_argument("--radius", type=int, help="initial tumour radius in sites (default 420)")
    ap.add_argument("--steps", type=int, help="steps measured (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="Numba threads (default 1)")
    ap.add_argument("--grid-coarsening", type=int, nargs="*", default=[1, 2, 4],
                    metavar="F", help="also run every field on grids F times coarser "
                                      "(default: 1 2 4; none: skip)")
    ap.add_argument("--json", type=Path, default=common.default_json("fields"))
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    cfg = dict(MODES[mode], vessels="throughout", threads=args.threads)
    for key in ("radius", "steps"):
        if getattr(args, key):
            cfg[key] = getattr(args, key)
    res = common.new_result("fields", mode, cfg)
    adi = load_adi()
    log(f"building the start state ({cfg['dimensions']}, radius {cfg['radius']}) ...")
    start, res["start"] = full.build_start_engine(cfg, "throughout")
    res["start"].pop("populate_log", None)
    log("compiling the ADI solver and a warm-up step ...")
    warm = full.copy.deepcopy(start)
    run_steps(warm, adi, 1, args.threads)
    del warm
    res["coarse_grids"] = []
    for factor in args.grid_coarsening:
        log(f"fields on a {factor}x coarser grid ...")
        res["coarse_grids"].append(run_coarse(start, factor, cfg["steps"], args.threads))
    log("measuring ...")
    res["result"] = run_steps(start, adi, cfg["steps"], args.threads)
    if res["coarse_grids"]:
        log("fields as coarse as the old solver's accuracy allows ...")
        res["same_accuracy"] = same_accuracy(start, res, cfg["steps"], args.threads)
    log("measuring the memory bandwidth ...")
    res["stream_gb_s"] = bench_machine.stream_bandwidth([args.threads])[args.threads]
    res["cached_stream_gb_s"] = bench_machine.cached_bandwidth([args.threads])[args.threads]
    res["streaming_floor"] = streaming_floor(res["result"], res["stream_gb_s"])
    res["cached_streaming_floor"] = streaming_floor(res["result"], res["cached_stream_gb_s"])
    res["threading_layer"] = numba.threading_layer()
    common.finish_result(res)
    r = res["result"]
    res["targets"] = [common.target_row(
        f"fields phase ms/step, {cfg['dimensions'][0]}^2, {args.threads} thread(s)",
        r["new_phase_ms"], TARGET_MS, f"<= {TARGET_MS:g}", higher_is_better=False)]
    same = res.get("same_accuracy")
    if same and all(same["within_adi"]):
        res["targets"].append(common.target_row(
            "the same, fields as coarse as the ADI's accuracy allows", same["fields_ms"],
            TARGET_MS, f"<= {TARGET_MS:g}", higher_is_better=False))
    print_report(res)
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
