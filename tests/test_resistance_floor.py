"""The floors at baseline (``initial.min_resistant_cells_at_baseline``,
``initial.min_escape_cells_at_baseline``): a lattice lesion of a few hundred cells rounds a
small resistant or antigen-loss fraction to none by chance, which a clinical lesion of ~1e9
cells never does (Bozic 2013), so a scenario can require a minimum number of such cells
when the treatment starts."""
import math

import numpy as np

from kernels import lattice
from simulator.engine import Engine, fork, run
from simulator.model.state import ensure_resistant_cells
from simulator.model.tumor import escape_bit
from simulator.scenario import load

# baseline at step 8 (day 2, dt 6 h)
LESION = ["simulation.dimensions=[80,80]", "initial.tumor_radius_sites=12",
          "simulation.treatment_start_day=2", "simulation.duration_days=3"]


def _resistant(engine):
    return int(np.count_nonzero((engine.state.clone[engine.state.kind == lattice.TUMOR] & 1)))


def _scenario(*overrides):
    return load(None, [*LESION, *overrides])


def test_floor_applies_at_the_treatment_start_and_only_there():
    """No resistant cell before the treatment start (fraction 0, no mutation), exactly the
    floor from the baseline step on (division and death off: nothing else changes them),
    and each new resistant cell was a live tumour cell that keeps its escape bit."""
    sc = _scenario("initial.resistant_fraction=0", "tumor.mutation_rate_per_division=0",
                   "tumor.division_rate_per_day=0", "tumor.death_rate_per_day=0",
                   "initial.escape_fraction=0.3", "initial.min_resistant_cells_at_baseline=9")
    e = Engine(sc)
    run(sc, engine=e, until_step=7)
    assert _resistant(e) == 0
    before = e.state.clone.copy()
    run(sc, engine=e, until_step=8)
    assert _resistant(e) == 9 and e.observe()["tumor_resistant"] == 9
    changed = np.flatnonzero(e.state.clone != before)
    assert len(changed) == 9
    assert np.all(e.state.kind[changed] == lattice.TUMOR)
    bit = escape_bit(sc)
    np.testing.assert_array_equal(e.state.clone[changed] & bit, before[changed] & bit)
    run(sc, engine=e)
    assert _resistant(e) == 9


def test_floor_at_day_zero_applies_to_the_seeded_lesion():
    sc = _scenario("initial.resistant_fraction=0", "simulation.treatment_start_day=0",
                   "initial.min_resistant_cells_at_baseline=5")
    assert _resistant(Engine(sc)) == 5
    assert _resistant(Engine(_scenario("initial.resistant_fraction=0",
                                       "simulation.treatment_start_day=0"))) == 0


def test_a_lesion_above_the_floor_is_untouched():
    """With more resistant cells than the floor, the run is the run without it, cell for
    cell, at the end."""
    plain, floored = (_scenario("initial.resistant_fraction=0.2", *extra) for extra in
                      ([], ["initial.min_resistant_cells_at_baseline=3"]))
    a, b = run(plain), run(floored)
    np.testing.assert_array_equal(a.state.kind, b.state.kind)
    np.testing.assert_array_equal(a.state.clone, b.state.clone)


def test_forked_arms_share_the_floored_lesion():
    """An arm forked at the baseline continues from the floored lesion and does not apply
    the floor a second time (same cells as the run that never forked)."""
    sc = _scenario("initial.resistant_fraction=0", "initial.min_resistant_cells_at_baseline=6")
    shared = run(sc, until_step=8)
    arm = run(sc, engine=fork(shared, sc))
    whole = run(sc)
    np.testing.assert_array_equal(arm.state.clone, whole.state.clone)
    np.testing.assert_array_equal(arm.state.kind, whole.state.kind)


def test_chosen_cells_are_a_uniform_sample():
    """The floor picks cells uniformly among the sensitive ones: of k = 300 picks among the
    disc's cells, the number inside the inner disc is hypergeometric with the inner share p
    of the candidates; within 4 sd (sd <= sqrt(k p (1 - p)))."""
    sc = _scenario("initial.resistant_fraction=0", "simulation.treatment_start_day=0")
    e = Engine(sc)
    state = e.state
    k = 300
    before = state.clone.copy()
    assert ensure_resistant_cells(state, k, 1, seed=3, replicate=0) == k
    candidates = np.flatnonzero(state.kind == lattice.TUMOR)
    chosen = np.flatnonzero(state.clone != before)
    centre = np.array([40, 40])
    padded = state.geometry.padded

    def inner(sites):
        coords = np.stack(np.unravel_index(sites, padded), -1) - 1  # one-site padding
        return ((coords - centre) ** 2).sum(1) <= (12 / math.sqrt(2)) ** 2

    p = inner(candidates).mean()
    assert 0.3 < p < 0.7
    assert abs(inner(chosen).sum() - k * p) < 4 * math.sqrt(k * p * (1 - p))


def test_a_floor_above_the_lesion_makes_every_cell_resistant():
    sc = _scenario("initial.resistant_fraction=0", "simulation.treatment_start_day=0",
                   "initial.tumor_radius_sites=2")
    e = Engine(sc)
    n = e.live_tumor_cells
    assert ensure_resistant_cells(e.state, 10 * n, 1, seed=1, replicate=0) == n
    assert ensure_resistant_cells(e.state, 10 * n, 1, seed=1, replicate=0) == 0


# ------------------------------------------------------------ the immune-escape floor
def _escapes(engine, bit):
    return int(np.count_nonzero(engine.state.clone[engine.state.kind == lattice.TUMOR] & bit))


def test_escape_floor_applies_at_the_treatment_start_and_keeps_resistance():
    """``initial.min_escape_cells_at_baseline``: with no escape fraction the key alone gives
    the clones an escape bit; no variant before the treatment start, exactly the floor from
    the baseline step on (turnover off), each a live tumour cell that keeps its resistance
    bits."""
    sc = _scenario("initial.resistant_fraction=0.2", "tumor.mutation_rate_per_division=0",
                   "tumor.division_rate_per_day=0", "tumor.death_rate_per_day=0",
                   "initial.min_escape_cells_at_baseline=7")
    bit = escape_bit(sc)
    assert bit == 2
    e = Engine(sc)
    assert e.n_clones == 4
    run(sc, engine=e, until_step=7)
    assert _escapes(e, bit) == 0
    before = e.state.clone.copy()
    run(sc, engine=e, until_step=8)
    assert _escapes(e, bit) == 7
    gained = np.flatnonzero(e.state.clone != before)
    assert len(gained) == 7 and np.all(e.state.kind[gained] == lattice.TUMOR)
    np.testing.assert_array_equal(e.state.clone & 1, before & 1)  # resistance kept
    assert _resistant(e) > 0  # so that "kept" is tested on cells that have resistance
    run(sc, engine=e)
    assert _escapes(e, bit) == 7


def test_escape_floor_draws_its_own_cells():
    """The escape floor's picks are not the resistance floor's (draws of their own): with
    both floors of k = 30 on a lesion of n cells without either, the overlap is what
    independent uniform picks give: hypergeometric, mean k^2 / n, within 4 sd."""
    sc = _scenario("initial.resistant_fraction=0", "simulation.treatment_start_day=0",
                   "initial.min_resistant_cells_at_baseline=30",
                   "initial.min_escape_cells_at_baseline=30")
    e = Engine(sc)
    tumour = e.state.clone[e.state.kind == lattice.TUMOR]
    n = tumour.size
    both = int(np.count_nonzero((tumour & 3) == 3))
    assert _resistant(e) == 30 and _escapes(e, 2) == 30
    k = 30
    mean = k * k / n
    sd = math.sqrt(k * (k / n) * (1 - k / n) * (n - k) / (n - 1))
    assert abs(both - mean) < 4 * sd


def test_an_escape_floor_below_the_variants_changes_nothing():
    plain, floored = (_scenario("initial.escape_fraction=0.3", *extra) for extra in
                      ([], ["initial.min_escape_cells_at_baseline=5"]))
    a, b = run(plain), run(floored)
    np.testing.assert_array_equal(a.state.kind, b.state.kind)
    np.testing.assert_array_equal(a.state.clone, b.state.clone)
