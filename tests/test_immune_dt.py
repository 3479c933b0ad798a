"""The immune processes follow their continuous-time rates: the step length dt changes no
statistic beyond Monte Carlo noise (issue 10; docs/model.md, "dt convergence of the immune
processes").

Each test runs the engine (or a kernel with the engine's own per-step numbers) at several
dt, from 0.75 to 12 hours, and compares a rate per unit time with its continuous-time
expectation; the tolerance is derived from the statistic's own distribution (binomial or
Poisson) and stated in the test. Seeds are fixed. Each test names what the step-based
rule it replaces got wrong and by how much, so it fails on that rule.
"""
import math

import numpy as np
import pytest
from scipy.special import gammainc

from conftest import needs_jit
from kernels import lattice
from kernels import microenvironment as micro
from kernels.lattice import EMPTY, T_CELL, TUMOR, WALL
from simulator.engine import Engine
from simulator.model.tissue import FIELD_NAMES
from simulator.scenario import load

DTS = (0.75, 1.5, 3.0, 6.0, 12.0)
QUIET = ["tumor.division_rate_per_day=0", "tumor.death_rate_per_day=0",
         "tumor.dead_clearance_rate_per_day=0", "vessels.density=0",
         "initial.tumor_radius_sites=0", "output.snapshot_fields=[]",
         "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=0",
         "t_cells.expansion_probability_per_kill=0", "t_cells.death_rate_per_day=0",
         "t_cells.exhausted_death_rate_per_day=0", "t_cells.exhaustion_rate_per_day_pdl1=0",
         "t_cells.exhaustion_rate_per_day_suppression=0", "t_cells.pd1_max_inhibition=0"]
NO_FIELDS = [f"fields.{name}.enabled=false" for name in FIELD_NAMES]


# ----------------------------------------------------------------------------- helpers
def _engine(dims, dt, *overrides, seed=1, fields=NO_FIELDS):
    """An engine on an empty lattice (no tumour, no vessels unless given)."""
    e = Engine(load(None, [f"simulation.dimensions={list(dims)}", f"simulation.dt_hours={dt}",
                           f"simulation.seed={seed}", *QUIET, *fields, *overrides]))
    st = e.state
    st.kind[st.kind == TUMOR] = EMPTY
    _refresh(e)
    return e


def _refresh(e):
    e.state.refresh_extents()
    e._count_tumor_by_clone()
    im = e.immune
    im.pdl1[:] = np.nan
    im.pdl1[e.state.kind == TUMOR] = e.scenario.pd_l1.baseline


def _site(e, rows, cols):
    """Flat padded sites of interior coordinates."""
    return np.ravel_multi_index((np.asarray(rows) + 1, np.asarray(cols) + 1),
                                e.state.geometry.padded).astype(np.int64)


def _grid_of_cells(e, pitch, margin=2):
    """T-cell positions on a square grid of the given pitch (interior coordinates)."""
    n = e.state.geometry.padded[0] - 2
    r, c = np.meshgrid(np.arange(margin, n - margin, pitch), np.arange(margin, n - margin, pitch),
                       indexing="ij")
    return r.ravel(), c.ravel()


def _add_t_cells(e, sites):
    e.state.kind[sites] = T_CELL
    e.immune.t.append(np.sort(sites), kills_left=e.scenario.t_cells.kill_capacity)


def _add_tumour(e, sites):
    e.state.kind[sites] = TUMOR
    e.state.clone[sites] = 0
    _refresh(e)


def _run(e, hours):
    steps = hours / e.scenario.simulation.dt_hours
    assert steps == int(steps)
    for _ in range(int(steps)):
        e.step()


# ----------------------------------------------------------------------------- killing
def _kills_by(hours, rate_per_hour, handling, targets):
    """Mean and variance of the kills of one T cell facing ``targets`` tumour cells for
    ``hours``: kill k happens after k exponential attacks and k - 1 handlings, so
    P(N >= k) = P(Gamma(k, rate) <= hours - (k - 1) handling)."""
    tail = np.array([gammainc(k, rate_per_hour * max(hours - (k - 1) * handling, 0.0))
                     for k in range(1, targets + 1)])
    mean = tail.sum()
    return mean, (np.arange(1, targets + 1) * 2 - 1) @ tail - mean ** 2


@needs_jit
@pytest.mark.parametrize("dt", DTS)
def test_kills_and_handling_follow_continuous_time(dt):
    """2916 T cells, each in a 3x3 block of 8 tumour cells, kill at 2/day with 6 h of
    handling for 36 h. The mean kills per cell equals the renewal expectation (exact, from
    the Gamma distribution of the attack times) within 4.5 standard errors. The per-step
    rule (p = 1 - exp(-k dt), one kill per step, handling round(6 h / dt) steps from the
    step after the kill) gave 4-14% fewer kills at dt = 1.5-12 h (1.77 instead of 2.06
    at 6 h)."""
    e = _engine((220, 220), dt, "t_cells.kill_rate_per_day=2", "t_cells.handling_hours=6",
                "t_cells.kill_capacity=20")
    rows, cols = _grid_of_cells(e, 4)
    block = [_site(e, rows + dr, cols + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
             if dr or dc]
    _add_tumour(e, np.concatenate(block))
    _add_t_cells(e, _site(e, rows, cols))
    n = rows.size
    _run(e, 36)
    mean, var = _kills_by(36.0, 2.0 / 24, 6.0, 8)
    kills = e.immune.totals["kills"] / n
    assert abs(kills - mean) < 4.5 * math.sqrt(var / n), (dt, kills, mean)


@needs_jit
@pytest.mark.parametrize("dt", DTS)
def test_exhaustion_and_death_happen_at_their_own_times(dt):
    """2916 T cells in contact with one tumour cell each (PD-L1 0.5, no killing) exhaust at
    e_pd * P = 4/7 per day, i.e. at day 1.75, and die at 0.2/day before and 1.5/day after.
    Survivors at days 2 and 3 are binomial with p = exp(-H(t)), H(t) = 0.2 min(t, 1.75) +
    1.5 (t - 1.75)+: within 4.5 sd. With exhaustion and the death-rate switch applied at
    step ends, survival at day 2 was 0.36 instead of 0.48 at dt = 12 h."""
    e = _engine((220, 220), dt, "t_cells.kill_rate_per_day=0", "pd_l1.baseline=0.5",
                f"t_cells.exhaustion_rate_per_day_pdl1={8 / 7!r}", "t_cells.death_rate_per_day=0.2",
                "t_cells.exhausted_death_rate_per_day=1.5")
    rows, cols = _grid_of_cells(e, 4)
    _add_tumour(e, _site(e, rows, cols + 1))
    _add_t_cells(e, _site(e, rows, cols))
    n = rows.size
    for day, hours in ((2, 48.0), (3, 24.0)):
        _run(e, hours)
        p = math.exp(-0.2 * 1.75 - 1.5 * (day - 1.75))
        alive = e.immune.t.n
        assert abs(alive - n * p) < 4.5 * math.sqrt(n * p * (1 - p)), (dt, day, alive, n * p)
        assert np.all(e.immune.t.live("flags") & 1)  # every survivor is exhausted


@needs_jit
@pytest.mark.parametrize("dt", (1.5, 6.0, 12.0))
def test_expansion_is_per_kill_whatever_the_step(dt):
    """Each kill makes the T cell divide with probability 0.5, also when it dies later in
    the step: daughters / kills is binomial(kills, 0.5) / kills, within 4.5 sd. With
    expansion conditional on surviving the step (death 2/day), the ratio was 0.44, 0.30
    and 0.19 at dt = 1.5, 6 and 12 h."""
    e = _engine((220, 220), dt, "t_cells.kill_rate_per_day=6", "t_cells.handling_hours=2",
                "t_cells.death_rate_per_day=2", "t_cells.exhausted_death_rate_per_day=2",
                "t_cells.expansion_probability_per_kill=0.5")
    rows, cols = _grid_of_cells(e, 4)
    _add_tumour(e, _site(e, rows, cols + 1))
    _add_t_cells(e, _site(e, rows, cols))
    _run(e, 24)
    kills, born = e.immune.totals["kills"], e.immune.totals["t_expanded"]
    assert kills > 1000
    assert abs(born - 0.5 * kills) < 4.5 * math.sqrt(kills * 0.25), (dt, kills, born)


# ----------------------------------------------------------------------------- entry
def _vessels(n, pitch):
    return [[pitch // 2 + pitch * i, pitch // 2 + pitch * j] for i in range(n) for j in range(n)]


@needs_jit
@pytest.mark.parametrize("dt", DTS)
def test_t_cell_recruitment_does_not_saturate(dt):
    """64 vessels, 4 T cells per vessel per day for 3 days: the number recruited is Poisson
    with mean 768 (within 4.5 sd; a vessel's free neighbours cap it at 8 per step, which at
    2 per step expected changes the mean by < 0.1). At most one entry per vessel per step
    with p = 1 - exp(-lambda) gave 21%, 37% and 57% fewer at dt = 3, 6 and 12 h."""
    positions = _vessels(8, 25)
    e = _engine((200, 200), dt, f"vessels.positions={positions}",
                "t_cells.recruitment_rate_per_day=256", "t_cells.basal_recruitment_fraction=1")
    _run(e, 72)
    expected = 256 * 3
    got = e.immune.totals["t_recruited"]
    assert abs(got - expected) < 4.5 * math.sqrt(expected), (dt, got)


@needs_jit
@pytest.mark.parametrize("dt", DTS)
def test_suppressive_cells_are_an_immigration_death_process(dt):
    """Suppressive cells enter at 80/day (400 fixed tumour cells, 200 per 1000 per day, 16
    vessels) and die at 1/day, from none: N(t) is Poisson with mean 80 (1 - exp(-t)) (entries
    at uniform times within their step, deaths from the entry on). The mean over 8 seeds at
    day 2 is within 4.5 standard errors. The per-step rule (one entry per vessel per step,
    a full step's death probability for newcomers) gave 35-70% too few at dt = 3-12 h."""
    counts = []
    for seed in range(8):
        e = _engine((100, 100), dt, f"vessels.positions={_vessels(4, 25)}",
                    "t_cells.recruitment_rate_per_day=0",
                    "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=200",
                    "suppressive.death_rate_per_day=1", seed=seed,
                    fields=[f"fields.{name}.enabled={name == 'suppressive_cytokine'}".lower()
                            for name in FIELD_NAMES])
        r, c = np.meshgrid(np.arange(40, 60), np.arange(40, 60), indexing="ij")
        _add_tumour(e, _site(e, r.ravel(), c.ravel()))
        _run(e, 48)
        counts.append(e.immune.s.n)
    mean = 80 * (1 - math.exp(-2))
    assert abs(np.mean(counts) - mean) < 4.5 * math.sqrt(mean / len(counts)), (dt, counts)


# ----------------------------------------------------------------------------- migration
@needs_jit
@pytest.mark.parametrize("dt", (0.5, 0.75, 3.0))
def test_moves_per_unit_time_do_not_depend_on_dt(dt):
    """An unbiased walk at 1 um/min (1.5, 2.25 and 9 moves per step at these dt): the mean
    squared displacement after 6 h is 1.5 sites^2 per move x 18 moves, within 5 / sqrt(N)
    relative (as in test_immune_behaviour's MSD test: 2000 walkers at 5% density).
    round(speed dt / spacing) moves made it 32% too large at dt = 0.5 h and 14% too small at
    0.75 h."""
    e = _engine((400, 400), dt, "t_cells.chemotaxis_bias=0", "t_cells.speed_um_per_min=1")
    g = np.random.default_rng(5)
    grid = np.arange(e.state.geometry.n_sites).reshape(e.state.geometry.padded)
    start = np.sort(g.choice(grid[100:301, 100:301].ravel(), 2000, replace=False))
    _add_t_cells(e, start)
    begin = np.stack(np.unravel_index(e.immune.t.live("sites"), grid.shape), -1)
    _run(e, 6)
    assert e.immune.t.n == 2000
    end = np.stack(np.unravel_index(e.immune.t.live("sites"), grid.shape), -1)
    msd = ((end - begin) ** 2).sum(1).mean()
    assert abs(msd / (1.5 * 18) - 1) < 5 / math.sqrt(2000), (dt, msd)


# ----------------------------------------------------------------------------- tumour response
def _tumor_response_engine(dt):
    return _engine((30, 30), dt, "t_cells.recruitment_rate_per_day=1", fields=[])


@needs_jit
@pytest.mark.parametrize("dt", DTS)
def test_necrosis_rate_ramps_not_the_probability(dt):
    """20000 tumour cells at an oxygen level halfway down the necrosis ramp turn necrotic at
    half the full rate (4/day): survivors after 24 h are binomial with p = exp(-2), within
    4.5 sd, at every dt (the engine's per-step number, the kernel's rule). Ramping the
    step's probability instead gave p = 0.5 (1 - exp(-r dt)) per step: survival 0.32 instead
    of 0.135 at dt = 12 h."""
    e = _tumor_response_engine(dt)
    hyp = e.scenario.hypoxia
    n, line = 20000, 100
    kind = np.full((n // line + 2) * (line + 2), WALL, np.uint8)
    grid = kind.reshape(-1, line + 2)
    grid[1:-1, 1:-1] = TUMOR
    oxygen = np.full(kind.size, 0.5 * (hyp.necrosis_threshold_mmhg + hyp.necrosis_full_mmhg))
    n_lines = grid.shape[0]
    lo, hi = np.empty(n_lines, np.int64), np.empty(n_lines, np.int64)
    lattice.tissue_extents(kind, line + 2, lo, hi)
    pdl1 = np.where(kind == TUMOR, 0.1, np.nan)
    necrotic = np.zeros((n_lines, 1), np.int64)
    steps = int(24 / dt)
    for step in range(steps):
        micro.tumor_response(kind, np.zeros(kind.size, np.uint8), pdl1, oxygen, np.empty(0),
                             lo, hi, lo, hi, line + 2, hyp.necrosis_threshold_mmhg,
                             hyp.necrosis_full_mmhg, e.immune.necrosis_hazard,
                             np.uint64(1000 + step), 0.1, 1.0, 0.11, 1.26, 1.0, necrotic,
                             np.empty(0, np.float32), 0, n_lines)
    p = math.exp(-0.5 * hyp.necrosis_rate_per_day)
    alive = int((kind == TUMOR).sum())
    assert abs(alive - n * p) < 4.5 * math.sqrt(n * p * (1 - p)), (dt, alive, n * p)


@needs_jit
def test_pdl1_relaxation_is_exact_in_dt():
    """PD-L1 relaxing to a fixed target is integrated exactly (keep factor exp(-k dt)), so
    after 24 h every dt gives the same level to rounding. (Already dt-consistent before.)"""
    levels = []
    for dt in DTS:
        e = _tumor_response_engine(dt)
        level = 1.0
        for _ in range(int(24 / dt)):
            level = 0.1 + (level - 0.1) * e.immune.pdl1_keep
        levels.append(level)
    expected = 0.1 + 0.9 * math.exp(-24 * e.scenario.pd_l1.decay_rate_per_hour)
    np.testing.assert_allclose(levels, expected, rtol=1e-12)


@needs_jit
def test_antigen_signal_integrates_exactly():
    """A constant 48 tumour deaths per day drive the antigen signal A towards 48 (q = 1)
    with time constant priming_delay_days: after 6 days every dt gives 48 (1 - exp(-6 /
    tau)) to rounding (the exponential integrator is exact for a constant input per step).
    (Already dt-consistent before.)"""
    values = []
    for dt in DTS:
        e = _tumor_response_engine(dt)
        im = e.immune
        for step in range(int(144 / dt)):
            im.state_phase(step, e.immune_effects, 48 * dt / 24, 0, 0, e._tumor_by_clone)
        values.append(im.antigen_per_day)
    tau = e.scenario.t_cells.priming_delay_days
    np.testing.assert_allclose(values, 48 * (1 - math.exp(-6 / tau)), rtol=1e-9)
