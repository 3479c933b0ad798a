"""The tumour kernels against the plain-Python reference in naive.py, step by step."""
import numba
import numpy as np
import pytest

import naive
from conftest import JIT_DISABLED
from kernels import lattice, rng, tumor
from simulator.engine import Engine
from simulator.model.state import kernel_flavour
from simulator.scenario import library_dir, load, replace
from simulator.schema import ScenarioError


def _scenario(dimensions, radius, **tumor):
    overrides = [f"simulation.dimensions={list(dimensions)}",
                 f"initial.tumor_radius_sites={radius}", "initial.resistant_fraction=0.2",
                 "simulation.seed=7"]
    overrides += [f"tumor.{k}={v!r}".replace("'", '"') for k, v in tumor.items()]
    return load(library_dir() / "tumor_only.toml", overrides)


def _keys(engine):
    names = dict(death=rng.STREAM_TUMOR_EVENT, attempt=rng.STREAM_TUMOR_ATTEMPT,
                 target=rng.STREAM_DIVISION_TARGET, mutation=rng.STREAM_MUTATION,
                 clearance=rng.STREAM_CLEARANCE)
    sim = engine.scenario.simulation
    return {name: naive.step_key(naive.stream_key(sim.seed, sim.replicate, s), engine.state.step)
            for name, s in names.items()}


def _compare_steps(engine, steps, **naive_extra):
    """Step the engine and the naive event-by-event reference side by side; returns the
    summed (births, deaths, mutations, mutable divisions)."""
    geo = engine.state.geometry
    kind = engine.state.kind.reshape(geo.padded).copy()
    clone = engine.state.clone.reshape(geo.padded).copy()
    r = engine.rates
    n_targets = len(engine.scenario.tumor.resistance_targets)
    total = np.zeros(4, np.int64)
    for _ in range(steps):
        extra = {k: (v(engine) if callable(v) else v) for k, v in naive_extra.items()}
        expected = naive.tumor_events(kind, clone, geo.padded, r.death_hazard,
                                      r.division_hazard, r.mutation_probability, n_targets,
                                      r.clear_dead_hazard, r.clear_necrotic_hazard,
                                      _keys(engine), dt_days=engine.dt_days, **extra)
        before = engine.state.totals.copy()
        engine.step()
        got = tuple(engine.state.totals[k] - before[k]
                    for k in ("divisions", "deaths", "mutations", "mutable_divisions"))
        assert got == expected
        np.testing.assert_array_equal(engine.state.kind, kind.ravel())
        np.testing.assert_array_equal(engine.state.clone[kind.ravel() == naive.TUMOR],
                                      clone.ravel()[kind.ravel() == naive.TUMOR])
        total += expected
    return total


@pytest.mark.parametrize("dimensions, radius, targets, dt_hours", [
    ((14, 12), 3, ["BRAF"], 6.0),
    ((14, 12), 3, ["BRAF"], 30.0),
    ((9, 8, 7), 2, ["BRAF", "MEK"], 6.0),
])
def test_tumor_step_matches_naive(dimensions, radius, targets, dt_hours):
    """Event by event against the plain-Python reference: births, deaths, mutations and the
    lattice after every step; with long steps (30 h, several events per cell) too."""
    scenario = _scenario(dimensions, radius, division_rate_per_day=3.0,
                         death_rate_per_day=0.8, mutation_rate_per_division=0.2,
                         dead_clearance_rate_per_day=1.5, resistance_targets=targets)
    scenario = replace(scenario, simulation={"dt_hours": dt_hours})
    engine = Engine(scenario)
    total = _compare_steps(engine, 12)
    assert total[0] > 0 and total[1] > 0 and total[2] > 0  # births, deaths, mutations seen


def _most_debris_in_a_line(engine):
    """The largest share of DEAD or NECROTIC sites in one line's tissue extent."""
    state, line_length = engine.state, engine.state.geometry.line_length
    kind = state.kind.reshape(-1, line_length)
    share = 0.0
    for line in range(kind.shape[0]):
        if state.lo[line] <= state.hi[line]:
            extent = kind[line, state.lo[line]:state.hi[line] + 1]
            share = max(share, np.mean((extent == naive.DEAD) | (extent == naive.NECROTIC)))
    return share


@pytest.mark.parametrize("dimensions", [(40, 36), (12, 11, 10)])
def test_debris_mixed_among_the_cells_matches_naive(dimensions):
    """Debris that clears slowly fills the tumour with DEAD sites mixed among the cells (a
    third of some line's extent or more), as in a necrotic core: ``schedule`` sorts each
    line into tumour and debris columns first (``kernels.tumor._schedule_line``), and the
    events and lattice stay the naive reference's, step by step."""
    scenario = _scenario(dimensions, 12 if len(dimensions) == 2 else 4,
                         division_rate_per_day=2.0, death_rate_per_day=1.0,
                         dead_clearance_rate_per_day=0.3, mutation_rate_per_division=0.1,
                         resistance_targets=["BRAF"])
    engine = Engine(scenario)
    most = 0.0
    for _ in range(10):
        most = max(most, _most_debris_in_a_line(engine))
        _compare_steps(engine, 1)
    assert most > 1 / 3


def test_a_site_turning_over_twice_in_a_step_matches_naive():
    """Fast turnover in long steps: a site's cell is born, schedules its next attempt, dies,
    is cleared and replaced within one step, so the first cell's attempt must be found
    stale. The kernel tells owners apart by a per-site count of the step's births; this
    case failed when a death cleared the flag that makes the count readable."""
    scenario = _scenario((24, 22), 7, division_rate_per_day=4.0,
                         death_rate_per_day=2.0, mutation_rate_per_division=0.1,
                         dead_clearance_rate_per_day=30.0, resistance_targets=["BRAF"])
    scenario = replace(scenario, simulation={"dt_hours": 24.0})
    total = _compare_steps(Engine(scenario), 8)
    assert total[0] > 0 and total[1] > 0


def test_event_heap_growth_matches_naive(monkeypatch):
    """Fast turnover in long steps from a small colony: the step's drawn events outgrow the
    kernel's event heap (1024 entries at first; 906 initial events), which the event loop
    hands back to ``run_events`` to double twice and resumes where it stopped. Without JIT
    the test also counts the growths, so the case cannot silently stop exercising them."""
    grown = []
    scenario = _scenario((40, 38), 2, division_rate_per_day=8.0, death_rate_per_day=4.0,
                         mutation_rate_per_division=0.1, dead_clearance_rate_per_day=30.0,
                         resistance_targets=["BRAF"])
    scenario = replace(scenario, simulation={"dt_hours": 48.0})
    if JIT_DISABLED:  # run_events is plain Python: it looks _grow up at each call
        called = kernel_flavour(scenario.simulation.dimensions).tumor  # the engine's flavour
        original = called._grow
        monkeypatch.setattr(called, "_grow",
                            lambda a, size: grown.append(size) or original(a, size))
    total = _compare_steps(Engine(scenario), 2)
    assert total[0] > 5000 and total[1] > 5000
    if JIT_DISABLED:
        assert 2048 in grown and 4096 in grown


def test_extents_and_counts_match_naive():
    scenario = _scenario((20, 17), 5, death_rate_per_day=2.0)
    engine = Engine(scenario)
    for _ in range(5):
        engine.step()
    s, geo = engine.state, engine.state.geometry
    lo = np.empty(geo.n_lines, np.int64)
    hi = np.empty(geo.n_lines, np.int64)
    lattice.tissue_extents(s.kind, geo.line_length, lo, hi)
    grid = s.kind.reshape(geo.n_lines, geo.line_length)
    for line in range(geo.n_lines):
        cols = np.nonzero(np.isin(grid[line], (naive.TUMOR, naive.DEAD, naive.NECROTIC)))[0]
        assert (lo[line], hi[line]) == ((cols[0], cols[-1]) if len(cols) else
                                        (lattice.NO_EXTENT_LO, lattice.NO_EXTENT_HI))
    counts = np.zeros((geo.n_lines, 8), np.int64)
    lattice.count_kinds(s.kind, geo.line_length, geo.n_lines, counts)
    np.testing.assert_array_equal(counts.sum(0), naive.count_kinds(s.kind))


@numba.njit
def _compiled_block_counts(kind, start):
    return lattice.block_kind_counts(kind, start)


@pytest.mark.parametrize("line_length", [5, 63, 64, 65, 130, 1002])
def test_kind_counts_per_line_match_naive(line_length):
    """count_kinds per line - whole blocks of 64 sites counted at once, then the rest one by
    one - as the reference's count of each line, on lines shorter than a block, of exactly
    one, with a tail, and as long as the benchmark's; runs of one kind and mixed stretches.
    The compiled block count equals its plain-Python definition."""
    generator = np.random.default_rng(line_length)
    n_lines = 7
    kind = generator.integers(0, 8, n_lines * line_length).astype(np.uint8)
    kind[:line_length] = naive.TUMOR           # a whole line of one kind
    kind[-line_length // 2:] = naive.NECROTIC  # a run across the last line's blocks
    counts = np.full((n_lines, 8), -1, np.int64)
    lattice.count_kinds(kind, line_length, n_lines, counts)
    for line in range(n_lines):
        np.testing.assert_array_equal(
            counts[line], naive.count_kinds(kind[line * line_length:(line + 1) * line_length]))
    for start in range(0, kind.size - lattice.BLOCK + 1, 37):
        assert _compiled_block_counts(kind, start) == lattice.block_kind_counts(kind, start)


def test_rng_matches_naive():
    for seed, rep, stream, step in [(0, 0, 1, 0), (1, 3, 4, 10), (2**62 + 5, 7, 16, 123456)]:
        key = rng.stream_key(seed, rep, stream)
        assert int(key) & naive.MASK64 == naive.stream_key(seed, rep, stream)
        k = np.uint64(rng.step_key(np.uint64(key), step))
        nk = naive.step_key(naive.stream_key(seed, rep, stream), step)
        assert int(k) == nk
        for index in (0, 1, 999, 10**7):
            assert rng.uniform(k, index) == naive.uniform(nk, index)


def test_tumor_phase_with_oxygen_matches_naive():
    """With the oxygen field on, each cell's division hazard is scaled by the linear
    oxygen factor at its own site (daughters at theirs): the tumour phase of the immune
    model, event by event against naive.py."""
    scenario = load(None, ["simulation.dimensions=[30,30]", "initial.tumor_radius_sites=6",
                           "tumor.division_rate_per_day=2.0", "tumor.death_rate_per_day=0.3",
                           "hypoxia.proliferation_saturation_mmhg=26",
                           "hypoxia.proliferation_threshold_mmhg=18"])
    engine = Engine(scenario)
    geo = engine.state.geometry
    hyp = scenario.hypoxia
    compared = 0
    for _ in range(8):
        before = engine.state.totals.copy()
        for name, phase in engine.phases:
            if name == "tumor":
                kind = engine.state.kind.reshape(geo.padded).copy()
                clone = engine.state.clone.reshape(geo.padded).copy()
                oxygen = engine.tissue.flat("oxygen").reshape(geo.padded)
                r = engine.rates
                expected = naive.tumor_events(
                    kind, clone, geo.padded, r.death_hazard, r.division_hazard,
                    r.mutation_probability, 1, r.clear_dead_hazard, r.clear_necrotic_hazard,
                    _keys(engine), oxygen=oxygen,
                    oxygen_threshold=hyp.proliferation_threshold_mmhg,
                    oxygen_span=hyp.proliferation_saturation_mmhg
                    - hyp.proliferation_threshold_mmhg, dt_days=engine.dt_days)
                phase()
                np.testing.assert_array_equal(engine.state.kind, kind.ravel())
                got = tuple(engine.state.totals[k] - before[k] for k in
                            ("divisions", "deaths", "mutations", "mutable_divisions"))
                assert got == expected
                compared += 1
                # the oxygen factor is strictly between 0 and 1 somewhere in the tumour
                tumour = kind == naive.TUMOR
                factor = (oxygen[tumour] - hyp.proliferation_threshold_mmhg) / 8.0
                assert np.any((factor > 0) & (factor < 1))
            else:
                phase()
        engine.state.step += 1
    assert compared == 8


def test_fires_within_step_is_the_event_time_test():
    """The logarithm-free decision of the schedule pass equals the computed
    ``event_time(u, h) < 1.0`` for every draw, including draws within 2000 ulp of the
    boundary p = -expm1(-h) and of both edges of its exact-fallback band, and for zero,
    tiny, huge and infinite hazards (the kernel's results depend on it bit for bit)."""
    from kernels import tumor
    hazards = [0.0, 5e-324, 1e-300, 1e-12, 1e-6, 0.01, 0.0625, 0.125, 0.5, 1.0, 2.5, 20.0,
               36.0, 37.5, 40.0, 700.0, 1e10, np.inf]
    draws = np.random.default_rng(3).random(2000)
    checked = 0
    for h in map(np.float64, hazards):  # as the kernel gets them (and without the JIT,
        p = -np.expm1(-h)                # NumPy's division by zero, not Python's, applies)
        u = np.concatenate([draws, np.linspace(0.0, 1.0, 2001)[:-1]]
                           + [_ulp_walk(x, 2000) for x in
                              (p, p * (1.0 - tumor.BAND), p * (1.0 + tumor.BAND))])
        for x in u[(u >= 0.0) & (u < 1.0)]:
            assert tumor.fires_within_step(x, h, p) == (tumor.event_time(x, h) < 1.0), (x, h)
            checked += 1
    assert checked > 150_000


def test_next_event_never_skips_a_clock_that_fires():
    """The shortcut of the event loop: ``next_event`` returns the computed
    ``t + event_time(u, h)`` or, without computing it, 2.0 only where that time is not
    below 1 either, for draws within 2000 ulp of the boundary and of the band's edge, at
    start times t across the step (near its end too)."""
    from kernels import tumor
    hazards = [0.0, 1e-300, 1e-12, 0.01, 0.125, 0.5, 1.0, 2.5, 20.0, 700.0, np.inf]
    starts = [0.0, 1e-9, 0.25, 0.5, 0.7, 0.999, 1.0 - 2.0 ** -40, 1.0 - 2.0 ** -53]
    skipped = 0
    for h in map(np.float64, hazards):
        p = -np.expm1(-h)
        u = np.concatenate([np.linspace(0.0, 1.0, 201)[:-1]]
                           + [_ulp_walk(x, 2000) for x in (p, p * (1.0 + tumor.BAND))])
        for x in u[(u >= 0.0) & (u < 1.0)]:
            for t in starts:
                exact = t + tumor.event_time(x, h)
                got = tumor.next_event(t, x, h, p)
                if tumor.surely_late(x, p):
                    assert got == 2.0 and not exact < 1.0, (x, h, t)
                    skipped += 1
                else:
                    assert got == exact or (np.isnan(got) and np.isnan(exact)), (x, h, t)
    assert skipped > 50_000  # the shortcut does apply


def test_a_draw_late_at_the_clones_hazard_is_late_at_any_lower_one():
    """The bound the event loop and the schedule pass use without drug fields: oxygen only
    scales a cell's division hazard by a factor in [0, 1], so a draw ``surely_late`` at the
    clone's probability must give a computed ``t + event_time(u, h)`` not below 1 at every
    lower hazard h too (draws within 2000 ulp of the band's edge, factors down to 0 and up
    to 1 - 2^-53, start times across the step)."""
    from kernels import tumor
    hazards = [1e-300, 1e-12, 0.01, 0.125, 0.5, 1.0, 2.5, 20.0, 700.0]
    factors = [0.0, 1e-9, 0.3, 0.5, 0.9, 0.999999, 1.0 - 2.0 ** -53, 1.0]
    starts = [0.0, 0.25, 0.7, 1.0 - 2.0 ** -40]
    bounded = 0
    for h in map(np.float64, hazards):
        p = -np.expm1(-h)
        u = np.concatenate([np.linspace(0.0, 1.0, 201)[:-1], _ulp_walk(p * (1.0 + tumor.BAND),
                                                                       2000)])
        for x in u[(u >= 0.0) & (u < 1.0)]:
            if not tumor.surely_late(x, p):
                continue
            for f in factors:
                lower = np.float64(h * f)
                for t in starts:
                    assert not t + tumor.event_time(x, lower) < 1.0, (x, h, f, t)
                    bounded += 1
    assert bounded > 50_000


def test_scaled_hazard_decision_is_the_event_time_test():
    """The schedule pass's decision for a hypoxic cell's first attempt (oxygen scales the
    clone's hazard H by a factor in [0, 1]): ``fires_scaled_within_step`` equals the
    computed ``event_time(u, h) < 1.0`` for every draw, including draws within 2000 ulp
    of both bounds it decides by (x times the clone's probability and h) and of their
    band edges, at factors from 0 to just below 1 (the kernel's results depend on it bit
    for bit)."""
    from kernels import tumor
    hazards = [1e-300, 1e-12, 1e-6, 0.01, 0.0625, 0.125, 0.5, 1.0, 2.5, 20.0, 700.0]
    factors = [0.0, 1e-9, 0.01, 0.3, 0.5, 0.9, 0.999999, 1.0 - 2.0 ** -53]
    draws = np.random.default_rng(5).random(500)
    checked = typical = spared = 0
    for full in map(np.float64, hazards):
        full_p = -np.expm1(-full)
        for f in factors:
            h = np.float64(full * f)  # as cell_hazards scales it
            low = h / full * full_p
            u = np.concatenate([draws, np.linspace(0.0, 1.0, 501)[:-1]]
                               + [_ulp_walk(x, 2000) for x in
                                  (low, low * (1.0 - tumor.BAND), h, h * (1.0 + tumor.BAND),
                                   -np.expm1(-h))])
            for x in u[(u >= 0.0) & (u < 1.0)]:
                got = tumor.fires_scaled_within_step(x, h, full, full_p)
                assert got == (tumor.event_time(x, h) < 1.0), (x, full, f)
                checked += 1
            if 0.01 <= full <= 0.125:  # the model's hazards per step: the bounds decide
                typical += draws.size  # nearly every random draw without the logarithm
                spared += np.count_nonzero((draws < low * (1.0 - tumor.BAND))
                                           | (draws > h * (1.0 + tumor.BAND)))
    assert checked > 1_000_000 and spared > 0.9 * typical


def _ulp_walk(x, n):
    """The non-negative floats from n units in the last place below x to n above."""
    bits = np.float64(x).view(np.int64) + np.arange(-n, n + 1)
    return bits[bits >= 0].view(np.float64)


def test_more_births_at_a_site_than_the_count_holds_stop_the_run():
    """The per-site birth count is a uint8: a step in which some site sees more than
    MAX_BIRTHS births cannot tell stale events apart, so the engine refuses it with a
    ScenarioError naming the step (exit 2 from the CLI) instead of running on wrongly.
    ~500 deaths per cell per 12 h step make that certain here."""
    scenario = _scenario((8, 8), 2, division_rate_per_day=5000.0,
                         death_rate_per_day=1000.0, dead_clearance_rate_per_day=20000.0)
    scenario = replace(scenario, simulation={"dt_hours": 12.0})
    engine = Engine(scenario)
    with pytest.raises(ScenarioError) as err:
        engine.step()
    assert err.value.key == "simulation.dt_hours"
    assert f"more than {tumor.MAX_BIRTHS} tumour births" in str(err.value)
