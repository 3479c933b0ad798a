"""Immune behaviour of the whole engine, shown with common random numbers: the same seed
with one switch changed, so two runs differ only where the switch acts."""
import math

import numpy as np
import pytest

from conftest import needs_jit
from kernels import lattice
from simulator.engine import Engine
from simulator.model.immune import moves_per_step
from simulator.scenario import library_dir, load

# ----------------------------------------------------------------------------- helpers
NO_TUMOUR_TURNOVER = ["tumor.division_rate_per_day=0", "tumor.death_rate_per_day=0"]
NO_T_CELL_TURNOVER = ["t_cells.recruitment_rate_per_day=0", "t_cells.death_rate_per_day=0",
                      "t_cells.exhausted_death_rate_per_day=0", "t_cells.kill_rate_per_day=0",
                      "t_cells.exhaustion_rate_per_day_pdl1=0",
                      "t_cells.exhaustion_rate_per_day_suppression=0",
                      "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=0"]


def _scenario(*overrides):
    return load(None, list(overrides))


def _place_t_cells(engine, sites):
    engine.state.kind[sites] = lattice.T_CELL
    engine.immune.t.append(np.sort(sites), kills_left=engine.scenario.t_cells.kill_capacity)


def _coords(engine, sites):
    return np.stack(np.unravel_index(sites, engine.state.geometry.padded), -1).astype(float)


def _burden(seed, *switches, days=50):
    engine = Engine(_scenario("simulation.dimensions=[200,200]", f"simulation.seed={seed}",
                              *switches))
    for _ in range(int(days * 24 / engine.scenario.simulation.dt_hours)):
        engine.step()
    return engine.observe()["tumor_cells"]


# ----------------------------------------------------------------------------- burden
@needs_jit
def test_t_cells_lower_burden_and_suppressive_cells_blunt_them():
    """Paired runs (same seed) at day 50: T cells off > T cells + suppressive cells > T cells
    alone. The effects are large against the replicate spread (without immunity the burden
    at day 50 is ~2-3 times that with it; without suppressive cells T cells clear the
    tumour), so every pair must be ordered; three seeds guard against a lucky one."""
    off_s = "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=0"
    off_t = "t_cells.recruitment_rate_per_day=0"
    for seed in (1, 2, 3):
        no_immunity = _burden(seed, off_t, off_s)
        with_both = _burden(seed)
        t_only = _burden(seed, off_s)
        assert no_immunity > with_both > t_only, (seed, no_immunity, with_both, t_only)
        assert with_both < 0.8 * no_immunity, (seed, no_immunity, with_both)


# ----------------------------------------------------------------------------- PD-L1
@needs_jit
def test_pdl1_is_higher_where_ifn_gamma_is_higher():
    """PD-L1 relaxes (half-life 7 h, about one step) towards its target baseline + induced *
    Hill(IFN-gamma), a rising function, so across tumour cells it must rank with the local
    IFN-gamma. A tumour of radius 30 sites attacked from its margin has an IFN-gamma
    gradient; the only noise is each cell's lag behind a field that moves each step, which
    at most halves a difference in targets (55% of a gap closes per step). So: the rank
    correlation exceeds 0.8, and the mean PD-L1 of the quarter of cells with the most
    IFN-gamma exceeds that of the quarter with the least by over half the gap in targets."""
    engine = Engine(_scenario("simulation.dimensions=[200,200]", "initial.tumor_radius_sites=30"))
    for _ in range(40):
        engine.step()
    tumour = engine.state.kind == lattice.TUMOR
    ifn = engine.tissue.flat("ifn_gamma")[tumour]
    pdl1 = engine.immune.pdl1[tumour]
    p = engine.scenario.pd_l1
    target = p.baseline + p.ifn_induced / (1 + (p.ifn_half_saturation_ng_per_ml / ifn)
                                           ** p.ifn_hill_coefficient)
    assert tumour.sum() > 500 and ifn.max() > p.ifn_half_saturation_ng_per_ml
    low, high = np.quantile(ifn, [0.25, 0.75])
    gap = target[ifn >= high].mean() - target[ifn <= low].mean()
    assert gap > 0.05
    assert pdl1[ifn >= high].mean() - pdl1[ifn <= low].mean() > 0.5 * gap
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    rho = np.corrcoef(rank(ifn), rank(pdl1))[0, 1]
    assert rho > 0.8, rho


# ----------------------------------------------------------------------------- migration
@needs_jit
def test_unbiased_walk_has_linear_mean_squared_displacement():
    """With no chemokine bias a T cell makes n = round(speed dt / spacing) moves per step,
    each to a uniformly chosen free Moore neighbour: displacement per move has E|d|^2 =
    (4 * 1 + 4 * 2) / 8 = 1.5 sites^2 and moves are uncorrelated, so MSD(t) = 1.5 n t.
    For m moves the displacement is ~ normal with variance 0.75 m per axis, so |r|^2 ~
    0.75 m chi^2_2 (mean 1.5 m, sd 1.5 m) and the mean over N walkers has relative sd
    1 / sqrt(N). With N = 2000 walkers (density 1.3%: collisions remove < 1% of moves) we
    allow 5 sd = 11% at every time; the walkers stay > 4 axis sd from the walls."""
    engine = Engine(_scenario("simulation.dimensions=[400,400]", "initial.tumor_radius_sites=0",
                              "vessels.density=0", "t_cells.chemotaxis_bias=0",
                              *NO_TUMOUR_TURNOVER, *NO_T_CELL_TURNOVER))
    state = engine.state
    state.kind[state.kind == lattice.TUMOR] = lattice.EMPTY
    state.refresh_extents()
    engine._count_tumor_by_clone()
    g = np.random.default_rng(5)
    grid = np.arange(state.geometry.n_sites).reshape(state.geometry.padded)
    middle = grid[100:301, 100:301].ravel()
    start = np.sort(g.choice(middle, 2000, replace=False))
    _place_t_cells(engine, start)
    n = moves_per_step(4.0, 6.0, 20.0)
    assert n == 72
    origin = {int(s): c for s, c in zip(start, _coords(engine, start))}
    # follow each walker: agents keep their order (no deaths), so index a stays walker a
    order = engine.immune.t.live("sites").copy()
    start_coords = np.array([origin[int(s)] for s in order])
    for step in range(1, 9):
        engine.step()
        now = _coords(engine, engine.immune.t.live("sites"))
        msd = ((now - start_coords) ** 2).sum(1).mean()
        expected = 1.5 * n * step
        assert abs(msd / expected - 1) < 5 / math.sqrt(2000), (step, msd, expected)
    assert engine.immune.t.n == 2000


def _margin_count(bias, seed=3, steps=6):
    """T cells within 3 sites of a fixed tumour disc's edge after a few steps."""
    engine = Engine(_scenario("simulation.dimensions=[200,200]", f"simulation.seed={seed}",
                              "initial.tumor_radius_sites=15", "vessels.density=0",
                              f"t_cells.chemotaxis_bias={bias}",
                              "fields.chemokine.tumor_secretion_per_min=0.01",
                              *NO_TUMOUR_TURNOVER, *NO_T_CELL_TURNOVER))
    state = engine.state
    g = np.random.default_rng(seed)
    empty = np.flatnonzero(state.kind == lattice.EMPTY)
    _place_t_cells(engine, np.sort(g.choice(empty, 400, replace=False)))
    for _ in range(steps):
        engine.step()
    centre = np.array([101.0, 101.0])
    distance = np.sqrt(((_coords(engine, engine.immune.t.live("sites")) - centre) ** 2).sum(1))
    return int(np.count_nonzero(distance <= 15 + 3)), engine


@needs_jit
def test_chemokine_bias_gathers_t_cells_at_the_tumour_margin():
    """Paired runs (same seed, same starting T cells, a fixed tumour secreting chemokine):
    with chemotaxis the count of T cells at the margin must exceed the unbiased count by
    far more than its own Poisson-scale fluctuation (5 sqrt(count))."""
    unbiased, _ = _margin_count(0.0)
    biased, engine = _margin_count(0.8)
    assert engine.tissue.flat("chemokine").max() > 0
    assert biased > unbiased + 5 * math.sqrt(max(unbiased, 1)), (unbiased, biased)


# ----------------------------------------------------------------------------- record
def _densities_by_definition(engine):
    """docs/model.md "Observables", site by site: T cells per mm^ndim closer to the tumour's
    centre of mass than R - w (core) and within w of R (margin), R the equivalent radius of
    the tumour's N cells, w = output.margin_width_um."""
    geo, sim = engine.state.geometry, engine.scenario.simulation
    tumour = np.argwhere(engine.state.kind.reshape(geo.padded) == lattice.TUMOR)
    n, centre = len(tumour), tumour.mean(axis=0)
    if geo.ndim == 2:
        radius, volume = math.sqrt(n / math.pi), lambda r: math.pi * r ** 2
    else:
        radius, volume = (3 * n / (4 * math.pi)) ** (1 / 3), lambda r: 4 / 3 * math.pi * r ** 3
    width = engine.scenario.output.margin_width_um / sim.spacing_um
    inner, outer = max(radius - width, 0.0), radius + width
    distances = [math.dist(np.unravel_index(site, geo.padded), centre)
                 for site in engine.immune.t.live("sites")]
    per_mm = (1000.0 / sim.spacing_um) ** geo.ndim
    core = sum(d < inner for d in distances) / volume(inner) * per_mm
    margin = sum(inner <= d <= outer for d in distances) / (volume(outer) - volume(inner))
    closest = min(abs(d - r) for d in distances for r in (inner, outer))
    return core, margin * per_mm, closest


@pytest.mark.parametrize("dimensions", ["[80,80]", "[40,40,40]"])
def test_record_counts_t_cells_in_the_core_and_the_margin(dimensions):
    """The record's T-cell densities equal their definition, evaluated site by site, for T
    cells placed along the axes in the core, in the margin and outside it (none within half
    a site of either boundary, so rounding cannot move a cell across one)."""
    engine = Engine(_scenario(f"simulation.dimensions={dimensions}",
                              "initial.tumor_radius_sites=10"))
    geo = engine.state.geometry
    middle = np.array(geo.padded) // 2
    sites = []
    for axis in range(geo.ndim):
        for sign, distance in [(1, 2), (-1, 4), (1, 7), (-1, 9), (1, 12), (-1, 14), (1, 17)]:
            position = middle.copy()
            position[axis] += sign * distance
            sites.append(np.ravel_multi_index(tuple(position), geo.padded))
    _place_t_cells(engine, np.array(sites))
    observed = engine.observe()
    core, margin, closest = _densities_by_definition(engine)
    assert core > 0 and margin > 0 and closest > 0.5 and engine.immune.t.n == 7 * geo.ndim
    assert observed["t_cell_density_core"] == pytest.approx(core, rel=1e-12)
    assert observed["t_cell_density_margin"] == pytest.approx(margin, rel=1e-12)


# ----------------------------------------------------------------------------- switches
def test_phase_names_are_pinned():
    """The documented phase order (simulator.engine docstring, docs/model.md)."""
    full = Engine(_scenario("simulation.dimensions=[40,40]", "initial.tumor_radius_sites=3"))
    assert full.phase_names == ["doses", "fields", "tumor", "tumor_response", "recruitment",
                                "t_cells", "suppressive_cells", "immune_state", "record"]
    tumour_only = Engine(load(library_dir() / "tumor_only.toml",
                              ["simulation.dimensions=[40,40]", "initial.tumor_radius_sites=3"]))
    assert tumour_only.phase_names == ["doses", "tumor", "record"]
    assert tumour_only.immune is None and tumour_only.tissue is None


@needs_jit
def test_immune_off_is_the_tumour_only_model():
    """With every immune switch off the run is the tumour-only model: no vessels, no agents,
    no fields; burdens are those of the tumour kernels alone (same seed, same steps)."""
    over = ["simulation.dimensions=[60,60]", "initial.tumor_radius_sites=5"]
    off = Engine(load(library_dir() / "tumor_only.toml", over))
    for _ in range(20):
        off.step()
    obs = off.observe()
    assert obs["t_cells"] == obs["suppressive_cells"] == obs["kills_total"] == 0
    assert not (off.state.kind == lattice.VESSEL).any()
    assert math.isnan(obs["mean_pdl1"])


def test_suppressive_cells_need_their_cytokine():
    from simulator.schema import ScenarioError
    with pytest.raises(ScenarioError, match="suppressive_cytokine"):
        _scenario("fields.suppressive_cytokine.enabled=false")
    with pytest.raises(ScenarioError, match="fields.oxygen.boundary"):
        _scenario("fields.oxygen.boundary=['no_flux','fixed_value','no_flux']")
    with pytest.raises(ScenarioError, match="disabled"):
        _scenario("fields.ifn_gamma.enabled=false", "output.snapshot_fields=['ifn_gamma']")


def test_vessels_inside_the_initial_tumour_use_the_same_draws():
    """``vessels.inside_initial_tumor``: the same vessel draws, now also on the initial
    tumour's sites (those cells become vessels, clone 0); outside the tumour nothing
    changes. The number inside is binomial(tumour sites, density): within 4 sd of its mean."""
    common = ["simulation.dimensions=[120,120]", "initial.tumor_radius_sites=30",
              "vessels.density=0.02"]
    outside = Engine(_scenario(*common)).state
    inside = Engine(_scenario(*common, "vessels.inside_initial_tumor=true")).state
    tumour_before = outside.kind == lattice.TUMOR
    moved = inside.kind != outside.kind
    assert np.all(tumour_before[moved])                  # only tumour sites changed ...
    assert np.all(inside.kind[moved] == lattice.VESSEL)  # ... into vessels
    assert np.all(inside.clone[moved] == 0)
    n, p = int(tumour_before.sum()), 0.02
    assert abs(int(moved.sum()) - n * p) < 4 * math.sqrt(n * p * (1 - p))
    lo, hi = inside.lo.copy(), inside.hi.copy()
    inside.refresh_extents()                             # the extents were refreshed
    assert np.array_equal(lo, inside.lo) and np.array_equal(hi, inside.hi)
