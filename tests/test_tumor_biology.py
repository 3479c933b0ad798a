"""Statistical and geometric properties of tumour growth on the lattice."""
import math

import numpy as np

from conftest import needs_jit
from kernels import lattice
from simulator.engine import Engine
from simulator.scenario import library_dir, load


def _scenario(*overrides):
    return load(library_dir() / "tumor_only.toml", list(overrides))


@needs_jit
def test_mutations_given_divisions_are_binomial():
    """Each division of a cell that can still gain a resistance draws once: given D such
    divisions the number of mutation events is Binomial(D, u) (Bozic 2013; exact on any
    lattice). Over 40 seeds: (1) the pooled count, Binomial(sum D, u), lies within 4 standard
    deviations of u sum D (two-sided p ~ 6e-5); (2) the dispersion statistic
    sum (M - uD)^2 / (D u (1 - u)) is approximately chi-square with 40 degrees of freedom:
    within 40 +/- 4 sqrt(80)."""
    u = 0.02
    d_counts, m_counts = [], []
    for seed in range(40):
        engine = Engine(_scenario("simulation.dimensions=[60,60]", f"simulation.seed={seed}",
                                  "initial.tumor_radius_sites=4", "initial.resistant_fraction=0",
                                  f"tumor.mutation_rate_per_division={u}",
                                  "tumor.death_rate_per_day=0.2"))
        for _ in range(40):
            engine.step()
        d_counts.append(engine.state.totals["mutable_divisions"])
        m_counts.append(engine.state.totals["mutations"])
    d, m = np.array(d_counts, float), np.array(m_counts, float)
    assert d.min() > 100
    z = (m.sum() - u * d.sum()) / math.sqrt(d.sum() * u * (1 - u))
    assert abs(z) < 4, z
    dispersion = np.sum((m - u * d) ** 2 / (d * u * (1 - u)))
    assert abs(dispersion - 40) < 4 * math.sqrt(80), dispersion


@needs_jit
def test_mutation_rate_shows_in_resistant_clone():
    """With mutations off and no pre-existing resistance, no resistant cell ever appears."""
    engine = Engine(_scenario("simulation.dimensions=[60,60]", "initial.resistant_fraction=0",
                              "tumor.mutation_rate_per_division=0"))
    for _ in range(40):
        engine.step()
    assert engine.observe()["tumor_resistant"] == 0
    assert engine.state.totals["mutable_divisions"] > 0


def _equivalent_radius(n):
    return math.sqrt(n / math.pi)


@needs_jit
def test_colony_grows_compact_with_linear_radius():
    """Eden growth (division into free neighbours only, no death): the colony stays compact
    and its radius grows linearly in time once past the first cell cycles (Richardson 1973;
    Eden 1961; Bru 2003). Checks: a straight line fits r(t) over days 10-40 with R^2 > 0.995,
    the late and early slopes agree within 15% (exponential growth would make the late slope
    many times the early one), and the colony fills > 90% of the disc of its equivalent
    radius centred on its centre of mass (compactness)."""
    engine = Engine(_scenario("simulation.dimensions=[260,260]", "initial.tumor_radius_sites=0",
                              "tumor.death_rate_per_day=0", "simulation.dt_hours=6",
                              "tumor.division_rate_per_day=1.0"))
    times, radii = [], []
    steps_per_day = 4
    for day in range(1, 41):
        for _ in range(steps_per_day):
            engine.step()
        times.append(day)
        radii.append(_equivalent_radius(engine.observe()["tumor_cells"]))
    t, r = np.array(times[9:], float), np.array(radii[9:])
    slope, intercept = np.polyfit(t, r, 1)
    fitted = slope * t + intercept
    r_squared = 1 - np.sum((r - fitted) ** 2) / np.sum((r - r.mean()) ** 2)
    assert r_squared > 0.995, r_squared
    half = len(t) // 2
    early = np.polyfit(t[:half], r[:half], 1)[0]
    late = np.polyfit(t[half:], r[half:], 1)[0]
    assert abs(late / early - 1) < 0.15, (early, late)
    grid = engine.state.grid()
    cells = np.argwhere(grid == lattice.TUMOR)
    centre = cells.mean(axis=0)
    radius = _equivalent_radius(len(cells))
    yy, xx = np.indices(grid.shape)
    disc = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= (0.95 * radius) ** 2
    filled = np.mean(grid[disc] == lattice.TUMOR)
    assert filled > 0.9, filled


@needs_jit
def test_recorded_counts_equal_lattice_and_cells_are_conserved():
    """The recorded counts equal a direct count of the lattice, and tumour cells are
    conserved: N(t+1) = N(t) + births - deaths at every step — a daughter placed on an
    occupied site would break it — while the wall layer stays intact."""
    engine = Engine(_scenario("simulation.dimensions=[50,40,30]", "initial.tumor_radius_sites=5",
                              "tumor.death_rate_per_day=0.5", "tumor.division_rate_per_day=2",
                              "tumor.mutation_rate_per_division=0.01",
                              "initial.resistant_fraction=0.1"))
    walls = engine.state.kind == lattice.WALL
    previous = engine.observe()
    for _ in range(30):
        totals = dict(engine.state.totals)
        engine.step()
        now = engine.observe()
        kinds = np.bincount(engine.state.kind, minlength=8)
        assert now["tumor_cells"] == kinds[lattice.TUMOR]
        assert now["dead_cells"] == kinds[lattice.DEAD]
        tumour = engine.state.kind == lattice.TUMOR
        assert now["tumor_resistant"] == np.count_nonzero(engine.state.clone[tumour])
        births = engine.state.totals["divisions"] - totals["divisions"]
        deaths = engine.state.totals["deaths"] - totals["deaths"]
        assert now["tumor_cells"] == previous["tumor_cells"] + births - deaths
        previous = now
    assert np.array_equal(engine.state.kind == lattice.WALL, walls)
    assert engine.state.totals["deaths"] > 0 and engine.state.totals["divisions"] > 0
