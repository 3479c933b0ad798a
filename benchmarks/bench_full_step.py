"""Full-step benchmark: tumour + immune compartment + all four tissue fields on a 2D
1000x1000 lattice with ~300k tumour cells, ~15k T cells and ~5k suppressive cells, at 1 and
2 Numba threads, with a per-phase breakdown and a 1-vs-2-thread bit-identity check.

Run: ``python benchmarks/bench_full_step.py [--quick] [--3d] [--set KEY=VALUE ...] [--json
PATH]`` (default JSON: ``benchmarks/results/full_step.json``, with ``--3d``
``full_step_3d.json``, with ``--set`` ``full_step_set.json``). See ``benchmarks/README.md``.

``--set`` adds scenario overrides (the CLI's ``--set`` syntax) to the full model's, after
the benchmark's own: the same state and timings for another configuration, e.g.
``--set fields.chemokine.grid_coarsening=2``. The tumour-only model is not changed by them.

Scenario: the built-in default (``load(None)``, immune compartment on) with the overrides
``simulation.dimensions=[1000,1000]``, ``initial.tumor_radius_sites=309``,
``fields.<oxygen|chemokine|ifn_gamma|suppressive_cytokine>.enabled=true``, plus
``simulation.duration_days=1000`` and ``output.snapshot_every_days=0`` so that no step of
the benchmark is the scenario's last.

How the start state is made (deterministic: same seed, same state on every run):

1. Lattice: the radius-309 disc of tumour cells (``seed_tumor``) and vessels at the
   scenario's density (``vessels.density`` = 0.01). ``--vessels throughout`` (default)
   keeps the vessel draws of ``place_vessels`` over the *whole* lattice, inside the disc too
   (a vascularised tumour); ``--vessels outside`` is the engine's own construction, which
   puts vessels only on empty sites, outside the initial tumour: then the disc interior has
   no oxygen source and most of it turns necrotic within a day (see README).
2. Immune cells: the engine's own recruitment phase (``ImmuneSystem.recruit`` ->
   ``kernels.immune.place_beside``: one cell beside a vessel per draw) runs with raised
   rates: each step the engine is forked (``simulator.engine.fork``) into the scenario with
   ``t_cells.basal_recruitment_fraction = 1`` and ``t_cells.recruitment_rate_per_day`` /
   ``suppressive.recruitment_rate_per_day_per_1000_tumor_cells`` set so the expected
   number of recruits this step covers the missing cells plus last step's losses, scaled
   up by last step's delivered / expected ratio (at most 3 per vessel), and one full step
   is run, until both populations are within 2% of their targets
   (15000 T cells, 5000 suppressive cells). Then the engine is forked back into the
   benchmark scenario (default rates) and runs ``warm_steps`` more steps, so new cells
   have moved off the vessels. Deaths and the default recruitment act from then on, so
   the populations drift during the timed steps: the table gives the counts at the start
   and end of the timed steps.

Fields beside the tumour phase: before timing, a copy of the start engine runs its first
steps at 2 threads, in which the engine times solving IFN-gamma and the suppressive
cytokine beside the tumour phase against solving them before it
(``simulator.model.alongside.Choice``), and the start engine takes over its choice. So
every timed 2-thread repeat runs the way a long run settles on, not the 12 steps of its
first comparison; the report gives the choice and the probe's times.

Timed: ``Engine.step()`` alone, ``steps`` consecutive steps from a deep copy of the start
engine, per repeat; ``Engine.observe()`` (what the recorder reads each step) is called
between steps outside the timed region and gives the cell counts. Cell-updates per second =
(tumour + T + suppressive cells at the start of each timed step, summed over the steps) /
wall seconds. Thread counts alternate repeat by repeat, so each repeat's 1- and 2-thread
runs are a pair timed back to back; the 2-thread speed-up is judged on the median of the
paired ratios and its 95% distribution-free interval (PASS only when the whole interval
clears the target). The per-phase breakdown runs the
same steps once more per thread count calling each entry of ``Engine.phases`` in order with
a timer around each (exactly what ``Engine.step`` does: the phases in order, then
``state.step += 1``), plus ``Engine.observe()`` as ``record``. Bit-identity: the engine
after the timed steps at 1 and at 2 threads (and the phase-timed engines) are compared
array by array: the lattice state, the immune agents, PD-L1, the fields and the Hill
powers the next step reads from the solver's workspace (the rest of the workspaces is
scratch, rewritten before it is read), the engine's per-line counters, and the totals.
Last, the machine's memory bandwidth at each thread count (``bench_machine.stream_bandwidth``,
in the same run), for arrays beyond the caches (800 MB) and for arrays that stay in the
last-level cache (32 MB; the header prints this machine's last-level cache: the Intel
host's 300 MB L3 held the whole 43 MB state of the 1000x1000 lattice, so its sweeps ran at
the second figure, the AMD host's 32 MiB holds less): their 2-thread / 1-thread ratios
bound the 2-thread speed-up of whatever part of the step is bound by streaming.
"""
from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_machine  # noqa: E402
import common  # noqa: E402  (puts the repository root on sys.path)
from common import ForeignCpu, log, summarise  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from kernels import lattice  # noqa: E402
from simulator import engine as engine_mod  # noqa: E402
from simulator import scenario as scenario_mod  # noqa: E402
from simulator.analysis.statistics import median_interval  # noqa: E402
from simulator.model.alongside import Choice  # noqa: E402
from simulator.model.state import LatticeState, seed_tumor  # noqa: E402
from simulator.model.tissue import FIELD_NAMES, place_vessels  # noqa: E402
from simulator.schema import ScenarioError  # noqa: E402

# issue 13's targets at 1000 x 1000 (2D full mode): full step and fields phase at 1 thread,
# the 2-thread speed-up, and the full step over the tumour-only step at the same lattice
TARGETS = dict(step_ms=40.0, fields_ms=15.0, thread_ratio=1.8, over_tumor_only=6.0)
POPULATE_TOLERANCE = 0.02     # stop raising recruitment once within 2% of both targets
POPULATE_MAX_STEPS = 60

MODES = dict(
    # ~300k tumour cells, 15k T cells, 5k suppressive cells on 10^6 sites
    full=dict(dimensions=[1000, 1000], radius=309, t_cells=15000, suppressive=5000,
              steps=16, repeats=9, warm_steps=2),
    # 3D at size (issue 13 item 5): 200^3 = 8M sites, a ball of ~1M tumour cells and the
    # 2D case's immune cells per tumour cell (5% T, 1.7% suppressive)
    threeD=dict(dimensions=[200, 200, 200], radius=62, t_cells=50000, suppressive=17000,
                steps=4, repeats=1, warm_steps=1),
    # the same densities on 400x400 (0.16 of the sites), for a smoke test
    quick=dict(dimensions=[400, 400], radius=124, t_cells=2400, suppressive=800,
               steps=3, repeats=1, warm_steps=1),
)


def side_by_side_start(quick: bool) -> dict:
    """The start state of the scripts that time one phase side by side with an earlier
    revision (profile_migration, tumor_phase_against, hill_power): ``--radius 420`` on
    1000x1000, or with ``quick`` the 400x400 smoke state."""
    return dict(MODES["quick"]) if quick else dict(MODES["full"], radius=420)


# ---------------------------------------------------------------------- scenario and state
def full_step_overrides(dimensions, radius) -> list[str]:
    return [f"simulation.dimensions={list(dimensions)}",
            f"initial.tumor_radius_sites={radius}",
            *(f"fields.{name}.enabled=true" for name in FIELD_NAMES),
            "simulation.duration_days=1000", "output.snapshot_every_days=0",
            "output.record_every_steps=1"]


def full_step_scenario(dimensions, radius, extra=()):
    """The built-in default scenario (immune compartment on) with the benchmark overrides."""
    return scenario_mod.load(None, full_step_overrides(dimensions, radius) + list(extra))


def initial_state(scenario, vessels: str) -> LatticeState | None:
    """The tumour disc and vessels (see the module docstring); None = the engine builds its
    own (vessels outside the initial tumour only)."""
    if vessels == "outside":
        return None
    sim = scenario.simulation
    state = LatticeState.empty(sim.dimensions)
    seed_tumor(state, scenario.initial.tumor_radius_sites, scenario.initial.resistant_fraction,
               len(scenario.tumor.resistance_targets), sim.seed, sim.replicate)
    drawn = LatticeState.empty(sim.dimensions)       # the engine's vessel draws, everywhere
    place_vessels(drawn, scenario.vessels, sim.seed, sim.replicate)
    vessel = drawn.kind == lattice.VESSEL
    state.kind[vessel] = lattice.VESSEL
    state.clone[vessel] = 0
    state.refresh_extents()
    return state


def populate(engine, scenario, t_target: int, s_target: int):
    """Raise recruitment until both immune populations are within POPULATE_TOLERANCE of
    their targets (see the module docstring); returns the engine, forked back into
    ``scenario``, and one log row per step.

    Each step asks for (missing cells + last step's losses) / (last step's delivered /
    expected): not every vessel has a free neighbour and the extravasation weights are
    uneven, so fewer cells enter than the rate asks for; deaths remove some every step."""
    dt_days = scenario.simulation.dt_hours / 24.0
    cap = 3.0 * engine.immune.vessel_sites.size     # p = 1 - exp(-3) at an average vessel
    efficiency = dict(t=1.0, s=1.0)
    loss = dict(t=0.0, s=0.0)
    rows, prev = [], None
    for _ in range(POPULATE_MAX_STEPS):
        counts = engine.observe()
        im = engine.immune
        n = dict(t=im.t.n, s=im.s.n)
        recruited = dict(t=im.totals["t_recruited"], s=im.totals["s_recruited"])
        if prev is not None:
            for pop in ("t", "s"):
                entered = recruited[pop] - prev["recruited"][pop]
                if prev["expected"][pop] > 0:
                    efficiency[pop] = float(np.clip(entered / prev["expected"][pop], 0.05, 1.0))
                born = im.totals["t_expanded"] - prev["expanded"] if pop == "t" else 0
                loss[pop] = max(prev["n"][pop] + entered + born - n[pop], 0)
        need = dict(t=t_target - n["t"], s=s_target - n["s"])
        if (abs(need["t"]) <= POPULATE_TOLERANCE * t_target
                and abs(need["s"]) <= POPULATE_TOLERANCE * s_target):
            break
        expected = {pop: float(np.clip((need[pop] + loss[pop]) / efficiency[pop], 0, cap))
                    for pop in ("t", "s")}
        tumour = max(counts["tumor_cells"], 1)
        raised = scenario_mod.replace(
            scenario,
            t_cells=dict(recruitment_rate_per_day=expected["t"] / dt_days,
                         basal_recruitment_fraction=1.0),
            suppressive=dict(recruitment_rate_per_day_per_1000_tumor_cells=(
                expected["s"] / dt_days / (tumour / 1000.0))))
        prev = dict(n=n, recruited=recruited, expanded=im.totals["t_expanded"],
                    expected=expected)
        engine = engine_mod.fork(engine, raised)
        engine.step()
        rows.append(dict(step=engine.state.step, expected_t=expected["t"],
                         expected_s=expected["s"], t_cells=engine.immune.t.n,
                         suppressive=engine.immune.s.n, tumor_cells=counts["tumor_cells"]))
    else:
        raise RuntimeError(f"populations not within {POPULATE_TOLERANCE:.0%} of "
                           f"{t_target} / {s_target} after {POPULATE_MAX_STEPS} steps: "
                           f"{engine.immune.t.n} / {engine.immune.s.n}")
    return engine_mod.fork(engine, scenario), rows


def build_start_engine(cfg, vessels: str, extra=()):
    """The benchmark's start engine: scenario, lattice, populations, warm-up steps (at 1
    thread); returns (engine, description dict)."""
    scenario = full_step_scenario(cfg["dimensions"], cfg["radius"], extra)
    engine_mod.set_threads(1)
    t0 = time.perf_counter()
    engine = engine_mod.Engine(scenario, state=initial_state(scenario, vessels))
    seeded = int(np.count_nonzero(engine.state.kind == lattice.TUMOR))
    n_vessels = int(engine.immune.vessel_sites.size)
    engine, rows = populate(engine, scenario, cfg["t_cells"], cfg["suppressive"])
    for _ in range(cfg["warm_steps"]):
        engine.step()
    counts = engine.observe()
    info = dict(
        scenario="built-in default (load(None))",
        overrides=full_step_overrides(cfg["dimensions"], cfg["radius"]) + list(extra),
        vessels=vessels, vessel_sites=n_vessels, tumor_cells_seeded=seeded,
        targets=dict(t_cells=cfg["t_cells"], suppressive_cells=cfg["suppressive"]),
        populate_steps=len(rows), populate_log=rows, warm_steps=cfg["warm_steps"],
        start_step=engine.state.step, build_s=time.perf_counter() - t0,
        bytes_per_site=array_bytes(engine) / engine.state.kind.size,
        start_counts={k: counts[k] for k in ("tumor_cells", "t_cells", "suppressive_cells",
                                             "necrotic_cells", "dead_cells")},
        dt_hours=scenario.simulation.dt_hours,
        t_moves_per_step=engine.immune.t_moves, s_moves_per_step=engine.immune.s_moves,
        method=("tumour disc + vessels (" + ("whole-lattice draws, inside the tumour too"
                                             if vessels == "throughout"
                                             else "engine placement: outside the initial "
                                                  "tumour only")
                + "); immune cells by the engine's recruitment phase at raised rates "
                  f"({len(rows)} steps, forked each step), forked back into the default "
                  f"rates, then {cfg['warm_steps']} warm-up step(s)"))
    return engine, info


def array_bytes(root) -> int:
    """Bytes of every distinct numpy array reachable from ``root`` through attributes,
    dicts, lists and tuples (the engine's whole state and scratch; the scenario excluded)."""
    seen, total, stack = set(), 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, scenario_mod.Scenario)):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj if obj.base is None else obj.base
            if id(base) not in seen or base is obj:
                seen.add(id(base))
                total += base.nbytes if isinstance(base, np.ndarray) else obj.nbytes
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
    return total


# ---------------------------------------------------------------------- identity
def fingerprint(engine) -> dict:
    """sha256 of every array and scalar that makes up a run's state (and the scratch)."""
    out = {}

    def add(name, value):
        if isinstance(value, np.ndarray):
            out[name] = hashlib.sha256(np.ascontiguousarray(value).view(np.uint8)).hexdigest()
        elif isinstance(value, (int, float, np.integer, np.floating)):
            out[name] = repr(float(value)) if isinstance(value, (float, np.floating)) \
                else str(int(value))
        elif isinstance(value, dict):
            for k, v in value.items():
                add(f"{name}.{k}", v)

    s = engine.state
    for name in ("kind", "clone", "proposal", "lo", "hi", "step", "totals"):
        add(f"state.{name}", getattr(s, name))
    for name in ("_tumor_by_clone", "_events_per_line", "_tumor_events", "_tissue_lo",
                 "_tissue_hi"):
        add(f"engine.{name}", getattr(engine, name))
    im = engine.immune
    if im is not None:
        for name in ("pdl1", "proposal", "antigen_per_day", "tag", "totals"):
            add(f"immune.{name}", getattr(im, name))
        for pop in ("t", "s"):
            agents = getattr(im, pop)
            add(f"immune.{pop}.n", agents.n)
            for key, arr in agents.arrays.items():
                add(f"immune.{pop}.{key}", arr[:agents.n])
    if engine.tissue is not None:
        tissue = engine.tissue
        add("tissue", tissue.arrays)
        # of the solver's buffers, the next step reads only the Hill powers the tumour
        # response left at the tumour cells (TissueFields.hill_powers_buffer); the rest is
        # rewritten first, and which field wrote it last depends on the lanes (TissueFields.LANES)
        add("tissue.hill_powers_left", -1 if tissue.hill_powers_left is None
            else tissue.hill_powers_left)
        if tissue.hill_powers_left is not None:
            add("tissue.hill_powers", tissue.hill_powers_buffer()[
                s.kind.reshape(-1) == lattice.TUMOR])
    return out


SCRATCH = ("state.proposal", "immune.proposal", "immune.tag")


def differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


# ---------------------------------------------------------------------- timing
def counts_of(observation) -> tuple[int, int, int]:
    return (observation["tumor_cells"], observation["t_cells"],
            observation["suppressive_cells"])


def timed_steps(start, steps: int, threads: int):
    """``steps`` timed ``Engine.step()`` calls from a copy of ``start``; returns wall
    seconds, cell-updates, (counts at start, counts at end) and the final engine."""
    engine_mod.set_threads(threads)
    engine = copy.deepcopy(start)
    gc.collect()
    wall, updates, first = 0.0, 0, None
    for _ in range(steps):
        counts = counts_of(engine.observe())
        first = first or counts
        updates += sum(counts)
        t0 = time.perf_counter()
        engine.step()
        wall += time.perf_counter() - t0
    return wall, updates, (first, counts_of(engine.observe())), engine


def timed_phases(start, steps: int, threads: int):
    """The same steps with a timer around each entry of ``Engine.phases`` (and
    ``observe`` as ``record``); returns seconds per phase (summed) and the final engine."""
    engine_mod.set_threads(threads)
    engine = copy.deepcopy(start)
    names = [name for name, _ in engine.phases] + ["record"]
    seconds = dict.fromkeys(names, 0.0)
    gc.collect()
    for _ in range(steps):
        for name, phase in engine.phases:       # == Engine.step()
            t0 = time.perf_counter()
            phase()
            seconds[name] += time.perf_counter() - t0
        engine.state.step += 1
        t0 = time.perf_counter()
        engine.observe()
        seconds["record"] += time.perf_counter() - t0
    return seconds, engine


def warm_threads(start, threads_list):
    """Start each thread count's pool (and load every kernel) outside the timed region."""
    for t in threads_list:
        timed_steps(start, 1, t)


def settle_alongside(start, threads: int) -> dict:
    """Let a copy of ``start`` make the engine's choice of how its fields phase runs
    (``simulator.model.alongside.Choice``: at 2+ threads it times solving fields beside
    the tumour phase or not, in two lanes or one, the ways in turn for its first steps)
    and hand the choice to ``start`` (with the workspace of the fields' second lane,
    ``TissueFields.LANES``): every timed copy then runs as a long run does once it has
    chosen, rather than 16 steps most of which compare."""
    engine_mod.set_threads(threads)
    probe = copy.deepcopy(start)
    probe.step()
    choice = probe._alongside_choice
    for _ in range(len(choice.ways) * Choice.PROBE - 1 if choice is not None else 0):
        probe.step()
    start._alongside_choice = copy.deepcopy(choice)
    if probe.tissue is not None:
        # and the second lane's solver workspace, made at its first fields phase at 2
        # threads (TissueFields.LANES): a long run makes it once, not once per 16 steps
        start.tissue._second_workspace = copy.deepcopy(probe.tissue._second_workspace)
    if choice is None:
        return dict(threads=threads, considered=False)
    # the times the choice compared: from the fields phase's start to the tumour response's
    # end, per way (beside, lanes)
    times = {f"{beside}, {lanes}": [1e3 * sec for used, sec in choice.history
                                    if used == (beside, lanes)]
             for beside, lanes in choice.ways}
    beside, lanes = choice.chosen
    return dict(threads=threads, considered=True, chosen=beside, chosen_lanes=lanes,
                ms_by_way=times, bytes_per_site=array_bytes(start) / start.state.kind.size)


def bench(start, cfg, threads_list) -> dict:
    dt_hours = start.scenario.simulation.dt_hours
    steps = cfg["steps"]
    warm_threads(start, threads_list)
    alongside = settle_alongside(start, max(threads_list)) if max(threads_list) > 1 else {}
    walls = {t: [] for t in threads_list}
    outcomes = {t: [] for t in threads_list}
    info = {}
    with ForeignCpu() as foreign:
        for r in range(cfg["repeats"]):
            for t in threads_list:
                log(f"  repeat {r + 1}/{cfg['repeats']}, {t} thread(s) ...")
                wall, updates, counts, final = timed_steps(start, steps, t)
                walls[t].append(wall)
                outcomes[t].append(fingerprint(final))
                info[t] = (updates, counts)
                del final
    rows = []
    for t in threads_list:
        updates, (first, last) = info[t]
        row = dict(threads=t, steps=steps, repeats=cfg["repeats"], cell_updates=updates,
                   counts_at_start=dict(zip(("tumor", "t_cells", "suppressive"), first)),
                   counts_at_end=dict(zip(("tumor", "t_cells", "suppressive"), last)),
                   identical_across_repeats=all(o == outcomes[t][0] for o in outcomes[t]),
                   **summarise(walls[t], updates, steps))
        row["ms_per_sim_hour_best"] = row["ms_per_step_best"] / dt_hours
        row["ms_per_sim_hour_median"] = row["ms_per_step_median"] / dt_hours
        rows.append(row)
    log("  per-phase breakdown ...")
    phases, phase_fp = {}, {}
    with ForeignCpu() as foreign_phases:
        for t in threads_list:
            seconds, final = timed_phases(start, steps, t)
            phases[t] = {name: 1e3 * sec / steps for name, sec in seconds.items()}
            phase_fp[t] = fingerprint(final)
            del final
    identity = {}
    if 1 in outcomes and 2 in outcomes:
        diff = differences(outcomes[1][0], outcomes[2][0])
        identity = dict(steps=steps, identical=not diff, differing=diff,
                        differing_state=[d for d in diff if d not in SCRATCH],
                        arrays_compared=len(outcomes[1][0]))
    phase_vs_step = {t: differences(phase_fp[t], outcomes[t][0]) for t in threads_list}
    return dict(rows=rows, phases_ms_per_step=phases, identity_1_vs_2_threads=identity,
                fields_alongside=alongside,
                phase_timed_equals_step=all(not d for d in phase_vs_step.values()),
                phase_timed_differences=phase_vs_step,
                thread_ratio=thread_ratio(rows), foreign_cpu_cores=foreign.cores,
                foreign_cpu_cores_phases=foreign_phases.cores)


def thread_ratio(rows):
    """The 2-thread speed-up: best over best and median over median of the repeats, and
    the paired ratios (each repeat's 1-thread wall over its 2-thread wall, timed right
    after it, so that a slow spell of the machine falls on both) with their median and its
    distribution-free interval (``median_interval``: order statistics at binomial(n, 1/2)
    ranks, coverage >= 95%; no interval below 6 repeats)."""
    by_t = {r["threads"]: r for r in rows}
    if 1 not in by_t or 2 not in by_t:
        return None
    out = {stat: by_t[1][f"{stat}_s"] / by_t[2][f"{stat}_s"] for stat in ("best", "median")}
    paired = [one / two for one, two in zip(by_t[1]["walls_s"], by_t[2]["walls_s"])]
    median, low, high = median_interval(paired)
    return dict(out, paired=paired, paired_median=median, paired_low=low, paired_high=high)


def ratio_verdict(ratio: dict, target: float) -> str:
    """PASS only when the paired ratios' interval lies at or above the target, FAIL when it
    lies below; UNDECIDED when it straddles the target or there are too few repeats for
    one: single runs of this benchmark can fall on either side of a target near the
    speed-up itself."""
    low, high = ratio["paired_low"], ratio["paired_high"]
    if math.isnan(low):
        return "UNDECIDED"
    return "PASS" if low >= target else "FAIL" if high < target else "UNDECIDED"


def tumor_only_step(cfg, threads_list) -> dict:
    """The tumour-only model (``scenarios/tumor_only.toml``) on the same lattice and disc:
    ``Engine.step()`` timed like the full step, for the ratio full / tumour-only."""
    scenario = scenario_mod.load(scenario_mod.library_dir() / "tumor_only.toml",
                                 [f"simulation.dimensions={list(cfg['dimensions'])}",
                                  f"initial.tumor_radius_sites={cfg['radius']}",
                                  "simulation.duration_days=1000"])
    engine_mod.set_threads(1)
    start = engine_mod.Engine(scenario)
    for _ in range(cfg["warm_steps"] + 1):
        start.step()
    out = {}
    for t in threads_list:
        walls = []
        for _ in range(cfg["repeats"]):
            wall, updates, counts, _ = timed_steps(start, cfg["steps"], t)
            walls.append(wall)
        out[t] = dict(tumor_cells=counts[0][0], **summarise(walls, updates, cfg["steps"]))
    return out


# ---------------------------------------------------------------------- report
def build_targets(res):
    out = []
    fs = res["full_step"]
    one = next((r for r in fs["rows"] if r["threads"] == 1), None)
    full_2d = res.get("mode") == "full"     # the targets are stated for the 2D full mode
    if one is not None and full_2d:
        out.append(common.target_row("full step, 1 thread (ms, best)", one["ms_per_step_best"],
                                     TARGETS["step_ms"], f"<= {TARGETS['step_ms']:g} ms",
                                     higher_is_better=False))
        phases = _by_threads(fs["phases_ms_per_step"], 1)
        if phases:
            out.append(common.target_row("fields phase, 1 thread (ms)", phases["fields"],
                                         TARGETS["fields_ms"], f"<= {TARGETS['fields_ms']:g} ms",
                                         higher_is_better=False))
    ratio = fs["thread_ratio"]
    if ratio and full_2d:
        out.append(dict(name="full step: 2 threads / 1 thread (paired repeats, median)",
                        value=ratio["paired_median"], target=f">= {TARGETS['thread_ratio']}x",
                        verdict=ratio_verdict(ratio, TARGETS["thread_ratio"])))
    over = _by_threads(res.get("full_over_tumor_only") or {}, 1)
    if over is not None and full_2d:
        out.append(common.target_row("full step / tumour-only step, 1 thread", over,
                                     TARGETS["over_tumor_only"],
                                     f"<= {TARGETS['over_tumor_only']:g}x",
                                     higher_is_better=False))
    ident = fs["identity_1_vs_2_threads"]
    if ident:
        out.append(dict(name="state bit-identical at 1 and 2 threads", value=None,
                        target="identical", verdict="PASS" if ident["identical"] else "FAIL"))
    return out


def _by_threads(table: dict, threads: int):
    """``table[threads]`` whether the keys are ints (in memory) or strings (from JSON)."""
    return table.get(threads, table.get(str(threads)))


def print_phase_table(phases: dict, rows: list, beside: bool = False) -> None:
    threads = sorted(phases)
    step_ms = {r["threads"]: r["ms_per_step_best"] for r in rows}
    # with 1 and n threads: each phase's speed-up, and the ms it spends at n threads beyond
    # a perfect n-fold split of its 1-thread time (where the step's speed-up goes)
    scaling = threads[0] == 1 and len(threads) > 1
    head = f"  {'phase':<20}" + "".join(f"{f'{t} thr ms':>11}{'share':>7}" for t in threads)
    if scaling:
        head += f"{'speed-up':>10}{f'over 1/{threads[-1]}':>11}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    names = list(phases[threads[0]])
    totals = {t: sum(v for k, v in phases[t].items() if k != "record") for t in threads}

    def scaling_columns(one, many):
        speed_up = f"{one / many:>9.2f}x" if many > 0 else f"{'-':>10}"
        return speed_up + f"{many - one / threads[-1]:>11.2f}"

    for name in names:
        line = f"  {name:<20}"
        for t in threads:
            v = phases[t][name]
            line += f"{v:>11.2f}{100 * v / totals[t]:>6.1f}%"
        if scaling:
            line += scaling_columns(phases[1][name], phases[threads[-1]][name])
        print(line)
    line = f"  {'sum of step phases':<20}" + "".join(f"{totals[t]:>11.2f}{'':>7}" for t in threads)
    if scaling:
        line += scaling_columns(totals[1], totals[threads[-1]])
    print(line)
    print(f"  {'(Engine.step best)':<20}" + "".join(f"{step_ms.get(t, float('nan')):>11.2f}"
                                                    f"{'':>7}" for t in threads))
    print("  share = of the sum of the step's phases ('record' = Engine.observe, outside "
          "the step, shown as a share of it too)")
    if scaling:
        print(f"  over 1/{threads[-1]} = ms at {threads[-1]} threads beyond the phase's "
              f"1-thread time / {threads[-1]}: what it costs the step's speed-up")
    together = ("fields", "tumor", "tumor_response")
    if beside and set(together) <= set(names) and scaling:
        one = sum(phases[1][name] for name in together)
        many = sum(phases[threads[-1]][name] for name in together)
        print(f"  fields beside the tumour phase: at {threads[-1]} threads IFN-gamma's and the "
              "suppressive cytokine's solves (and then the tumour response, on large 2D "
              "lattices) run during 'tumor' and count there; the three phases together: "
              f"{one:.2f} / {many:.2f} ms, {one / many:.2f}x, over 1/{threads[-1]} "
              f"{many - one / threads[-1]:.2f}")


def print_report(res):
    common.print_header(res, "tumorsim full-step benchmark")
    st, fs = res["start"], res["full_step"]
    c = st["start_counts"]
    print("")
    print(f"Start state: {res['config']['dimensions']}, disc radius {res['config']['radius']} "
          f"({st['tumor_cells_seeded']} tumour cells seeded), {st['vessel_sites']} vessels "
          f"({st['vessels']}); built in {st['build_s']:.1f} s")
    print(f"  {st['method']}")
    print(f"  arrays held by the engine (state, fields, solver levels, scratch): "
          f"{st['bytes_per_site']:.1f} bytes per site")
    print(f"  at step {st['start_step']}: {c['tumor_cells']} tumour, {c['t_cells']} T, "
          f"{c['suppressive_cells']} suppressive, {c['necrotic_cells']} necrotic, "
          f"{c['dead_cells']} dead; T cells move {st['t_moves_per_step']} sites/step, "
          f"suppressive {st['s_moves_per_step']}")
    print("")
    print(f"Full step (Engine.step), {res['config']['steps']} steps x "
          f"{res['config']['repeats']} repeats, dt = {st['dt_hours']:g} h")
    head = (f"  {'thr':>3}{'tumour':>9}{'T':>7}{'supp':>7}{'ms/step':>10}{'med':>9}"
            f"{'ms/sim-h':>10}{'Mupd/s':>9}{'med':>8}{'end: tumour':>13}{'T':>7}{'supp':>7}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in fs["rows"]:
        a, e = r["counts_at_start"], r["counts_at_end"]
        print(f"  {r['threads']:>3}{a['tumor']:>9}{a['t_cells']:>7}{a['suppressive']:>7}"
              f"{r['ms_per_step_best']:>10.1f}{r['ms_per_step_median']:>9.1f}"
              f"{r['ms_per_sim_hour_best']:>10.2f}{r['updates_per_s_best'] / 1e6:>9.2f}"
              f"{r['updates_per_s_median'] / 1e6:>8.2f}{e['tumor']:>13}{e['t_cells']:>7}"
              f"{e['suppressive']:>7}")
    print("  cell-updates = tumour + T + suppressive cells at the start of each timed step, "
          "summed")
    ratio = fs["thread_ratio"]
    if ratio:
        interval = ("no interval below 6 repeats" if math.isnan(ratio["paired_low"]) else
                    f"95% interval {ratio['paired_low']:.2f}-{ratio['paired_high']:.2f}x")
        print(f"  2 threads / 1 thread: {ratio['best']:.2f}x best, {ratio['median']:.2f}x "
              f"median; paired repeats {ratio['paired_median']:.2f}x median, {interval} "
              "(each repeat: " + ", ".join(f"{r:.2f}" for r in ratio["paired"]) + ")")
    ident = fs["identity_1_vs_2_threads"]
    if ident:
        if ident["identical"]:
            verdict = "IDENTICAL"
        elif not ident["differing_state"]:
            verdict = f"state identical, scratch differs ({', '.join(ident['differing'])})"
        else:
            verdict = f"DIFFERENT: {', '.join(ident['differing'])}"
        print(f"  bit-identity after {ident['steps']} steps, 1 vs 2 threads "
              f"({ident['arrays_compared']} arrays / scalars compared): {verdict}")
    print("  repeats identical: "
          + ", ".join(f"{r['threads']} thr {'yes' if r['identical_across_repeats'] else 'NO'}"
                      for r in fs["rows"])
          + f"; phase-timed run equals Engine.step run: "
          f"{'yes' if fs['phase_timed_equals_step'] else 'NO'}")
    al = fs.get("fields_alongside") or {}
    if al.get("considered"):
        med = {way: float(np.median(ms)) for way, ms in al["ms_by_way"].items()}
        print(f"  the fields phase's way at {al['threads']} threads: "
              f"{'beside' if al['chosen'] else 'before'} the tumour phase, "
              f"{'two lanes' if al['chosen_lanes'] else 'one lane'} (fields, tumour and "
              f"tumour response phases, median of {Choice.PROBE} probe steps each way, "
              "beside / lanes: " + ", ".join(f"{way}: {ms:.2f} ms" for way, ms in med.items())
              + ")")
        if "bytes_per_site" in al:
            print(f"  arrays held by the engine at {al['threads']} threads (with the fields' "
                  f"second lane, in 2D): {al['bytes_per_site']:.1f} bytes per site")
    if fs.get("foreign_cpu_cores") is not None:
        print(f"  CPU used by other processes meanwhile: {fs['foreign_cpu_cores']:.2f} cores")
    print("")
    for t, row in res["tumor_only"].items():
        print(f"  tumour-only model, same lattice, {t} thr: {row['ms_per_step_best']:.2f} ms/step "
              f"({row['tumor_cells']} cells); full / tumour-only = "
              f"{res['full_over_tumor_only'][t]:.1f}x")
    print("")
    print("Per-phase breakdown (ms per step, one pass of the same steps per thread count)")
    print_phase_table(fs["phases_ms_per_step"], fs["rows"],
                      beside=bool((fs.get("fields_alongside") or {}).get("chosen")))
    for key, what in (("memory_bandwidth_gb_s", "800 MB per call, best of 5"),
                      ("cached_bandwidth_gb_s", "32 MB per call, in the last-level cache, "
                                                "best of 20")):
        bandwidth = res.get(key) or {}
        if not bandwidth:
            continue
        print("")
        print(f"Machine memory bandwidth (bench_machine.py's stream, {what}): "
              + ", ".join(f"{bandwidth[t]:.1f} GB/s at {t} thr" for t in sorted(bandwidth)))
        one, two = _by_threads(bandwidth, 1), _by_threads(bandwidth, 2)
        if one and two:
            print(f"  2 threads / 1 thread: {two / one:.2f}x, the ceiling of the 2-thread "
                  "speed-up for the part of a step bound by that traffic")
    common.print_targets(res["targets"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 400x400 at the same densities, 3 steps, 1 repeat")
    ap.add_argument("--json", type=Path,
                    help="where to write the results (default benchmarks/results/full_step.json; "
                         "with --3d, full_step_3d.json)")
    ap.add_argument("--steps", type=int, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, help="repeats per thread count")
    ap.add_argument("--3d", dest="three_d", action="store_true",
                    help="3D 200^3 with a ~1M-cell ball and proportional immune cells "
                         "(4 steps, 1 repeat; the tumour-only comparison is skipped)")
    ap.add_argument("--radius", type=int,
                    help="initial tumour disc radius in sites (default 309; --quick 124)")
    ap.add_argument("--threads", type=int, nargs="+",
                    help="thread counts to time (default: 1 and 2); on a busy machine time 1 only")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE",
                    help="a scenario override for the full model, after the benchmark's own "
                         "(repeatable), e.g. fields.chemokine.grid_coarsening=2")
    ap.add_argument("--vessels", choices=("throughout", "outside"), default="throughout",
                    help="vessel placement: over the whole lattice, inside the tumour too "
                         "(default), or the engine's own (outside the initial tumour only)")
    args = ap.parse_args(argv)

    mode = "quick" if args.quick else "threeD" if args.three_d else "full"
    if args.json is None:  # a 3D run and a run with overrides keep their own files: the
        # plain 2D one is the 1000x1000 record
        args.json = common.default_json("full_step_3d" if args.three_d else
                                        "full_step_set" if args.overrides else "full_step")
    cfg = dict(MODES[mode], vessels=args.vessels, overrides=list(args.overrides))
    if args.radius is not None:
        cfg["radius"] = args.radius
    for key in ("steps", "repeats"):
        if getattr(args, key):
            cfg[key] = getattr(args, key)
    res = common.new_result("full_step", mode, cfg)
    threads_list = [t for t in (args.threads or (1, 2)) if t <= numba.config.NUMBA_NUM_THREADS]
    if 2 not in threads_list:
        common.warn(res, "no 2-thread rows: " + ("--threads leaves them out" if args.threads
                                                  else "only 1 Numba thread available"))

    log(f"building the start state ({cfg['dimensions']}, {args.vessels}) ...")
    if args.overrides:
        common.warn(res, "scenario overrides " + " ".join(args.overrides) + ": issue 13's "
                    "targets are stated for the benchmark's own configuration")
    try:
        start, res["start"] = build_start_engine(cfg, args.vessels, args.overrides)
    except ScenarioError as exc:
        print(f"bench_full_step.py: --set: {exc}", file=sys.stderr)
        sys.exit(2)
    log("timing the full step ...")
    res["full_step"] = bench(start, cfg, threads_list)
    log("timing the tumour-only step on the same lattice ...")
    res["tumor_only"] = {} if args.three_d else tumor_only_step(cfg, threads_list)
    res["full_over_tumor_only"] = {} if args.three_d else {
        t: row["ms_per_step_best"] / res["tumor_only"][t]["ms_per_step_best"]
        for t in threads_list for row in res["full_step"]["rows"] if row["threads"] == t}
    res["threading_layer"] = numba.threading_layer()
    log("measuring the machine's memory bandwidth ...")
    res["memory_bandwidth_gb_s"] = bench_machine.stream_bandwidth(threads_list)
    res["cached_bandwidth_gb_s"] = bench_machine.cached_bandwidth(threads_list)
    common.check_foreign(res, res["full_step"]["foreign_cpu_cores"], "the timed steps")
    common.check_loaded_from_cache(res, {f"{k.py_func.__module__}.{k.__name__}": k
                                         for k in engine_mod.kernels_for(start.scenario)},
                                   "the timed steps")
    common.finish_result(res)
    res["targets"] = build_targets(res)
    print_report(res)
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
