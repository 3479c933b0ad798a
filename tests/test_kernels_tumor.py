"""The tumour kernels against the plain-Python reference in naive.py, step by step."""
import numpy as np
import pytest

import naive
from kernels import lattice, rng
from simulator.engine import Engine
from simulator.scenario import library_dir, load


def _scenario(dimensions, radius, **tumor):
    overrides = [f"simulation.dimensions={list(dimensions)}",
                 f"initial.tumor_radius_sites={radius}", "initial.resistant_fraction=0.2",
                 "simulation.seed=7"]
    overrides += [f"tumor.{k}={v!r}".replace("'", '"') for k, v in tumor.items()]
    return load(library_dir() / "tumor_only.toml", overrides)


def _keys(engine):
    names = dict(event=rng.STREAM_TUMOR_EVENT, target=rng.STREAM_DIVISION_TARGET,
                 priority=rng.STREAM_DIVISION_PRIORITY, mutation=rng.STREAM_MUTATION,
                 clearance=rng.STREAM_CLEARANCE)
    sim = engine.scenario.simulation
    return {name: naive.step_key(naive.stream_key(sim.seed, sim.replicate, s), engine.state.step)
            for name, s in names.items()}


@pytest.mark.parametrize("dimensions, radius, targets", [
    ((14, 12), 3, ["BRAF"]),
    ((9, 8, 7), 2, ["BRAF", "MEK"]),
])
def test_tumor_step_matches_naive(dimensions, radius, targets):
    scenario = _scenario(dimensions, radius, division_rate_per_day=3.0,
                         death_rate_per_day=0.8, mutation_rate_per_division=0.2,
                         dead_clearance_rate_per_day=1.5, resistance_targets=targets)
    engine = Engine(scenario)
    geo = engine.state.geometry
    kind = engine.state.kind.reshape(geo.padded).copy()
    clone = engine.state.clone.reshape(geo.padded).copy()
    r = engine.rates
    for _ in range(12):
        expected = naive.tumor_step(kind, clone, geo.padded, r.p_die, r.p_divide,
                                    r.mutation_probability, len(targets), r.p_clear_dead,
                                    r.p_clear_necrotic, _keys(engine))
        before = engine.state.totals.copy()
        engine.step()
        got = tuple(engine.state.totals[k] - before[k]
                    for k in ("divisions", "deaths", "mutations", "mutable_divisions"))
        assert got == expected
        np.testing.assert_array_equal(engine.state.kind, kind.ravel())
        np.testing.assert_array_equal(engine.state.clone[kind.ravel() == naive.TUMOR],
                                      clone.ravel()[kind.ravel() == naive.TUMOR])
    assert sum(expected) > 0  # the comparison exercised births and deaths


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


def test_rng_matches_naive():
    for seed, rep, stream, step in [(0, 0, 1, 0), (1, 3, 4, 10), (2**62 + 5, 7, 16, 123456)]:
        key = rng.stream_key(seed, rep, stream)
        assert int(key) & naive.MASK64 == naive.stream_key(seed, rep, stream)
        k = np.uint64(rng.step_key(np.uint64(key), step))
        nk = naive.step_key(naive.stream_key(seed, rep, stream), step)
        assert int(k) == nk
        for index in (0, 1, 999, 10**7):
            assert rng.uniform(k, index) == naive.uniform(nk, index)
