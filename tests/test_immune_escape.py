"""Immune-escape variants (``initial.escape_fraction``, ``tumor.escape_antigenicity``) and
T-cell recognition (``t_cells.recognition_threshold``) in the whole engine. Paired runs
share a seed, so they differ only where the switch acts."""
import math

import h5py
import numpy as np

from conftest import needs_jit
from kernels import lattice
from simulator.engine import Engine
from simulator.model.tumor import clone_count, escape_bit
from simulator.scenario import load

DISC = ["simulation.dimensions=[120,120]", "initial.tumor_radius_sites=40"]


def _engine(*overrides):
    return Engine(load(None, [*DISC, *overrides]))


def _tumour_clones(engine):
    return engine.state.clone[engine.state.kind == lattice.TUMOR]


def test_escape_variants_are_seeded_independently_of_resistance():
    """The resistance draws are those of the scenario without escape variants (own draws
    for the escape bit); the escape share is binomial(n, f), within 4 sd, and the same
    among resistant and sensitive cells (independence: each share within 4 sd)."""
    plain = _engine("initial.resistant_fraction=0.2")
    both = _engine("initial.resistant_fraction=0.2", "initial.escape_fraction=0.1")
    bit = escape_bit(both.scenario)
    assert bit == 2 and clone_count(both.scenario) == 4 and clone_count(plain.scenario) == 2
    assert both.n_clones == 4
    clones = _tumour_clones(both)
    np.testing.assert_array_equal(clones & 1, _tumour_clones(plain))
    escape = (clones & bit) != 0
    resistant = (clones & 1) != 0
    for group in (np.ones_like(escape), resistant, ~resistant):
        n = int(group.sum())
        assert abs(int(escape[group].sum()) - 0.1 * n) < 4 * math.sqrt(n * 0.1 * 0.9), n


def test_escape_is_not_resistance():
    """Escape cells count as sensitive unless they carry a resistance bit, divide at the
    sensitive rate (no fitness cost) and take every drug effect of their targets."""
    e = _engine("initial.escape_fraction=0.3", "initial.resistant_fraction=0.1")
    obs = e.observe()
    clones = _tumour_clones(e)
    assert obs["tumor_resistant"] == int(np.count_nonzero(clones & 1))
    assert obs["tumor_sensitive"] + obs["tumor_resistant"] == obs["tumor_cells"]
    assert obs["tumor_sensitive"] > int(np.count_nonzero(clones == 0))  # escape-only cells
    hazard = e.rates.division_hazard
    assert hazard[2] == hazard[0] and hazard[3] == hazard[1] and hazard[1] < hazard[0]


def _kills_by_escape(*switches, steps=40):
    """Escape and other tumour cells left after ``steps`` steps without tumour turnover or
    necrosis, T cells placed around the disc (kills are then the only deaths)."""
    e = _engine("initial.escape_fraction=0.3", "tumor.division_rate_per_day=0",
                "tumor.death_rate_per_day=0", "hypoxia.necrosis_rate_per_day=0",
                "t_cells.kill_rate_per_day=4", *switches)
    kind = e.state.kind
    free = np.flatnonzero(kind == lattice.EMPTY)
    coords = np.stack(np.unravel_index(free, e.state.geometry.padded), -1)
    ring = free[np.abs(np.hypot(*(coords - 61).T) - 42) < 1.0]
    kind[ring] = lattice.T_CELL
    e.immune.t.append(np.sort(ring), kills_left=e.scenario.t_cells.kill_capacity)
    before = _tumour_clones(e)
    for _ in range(steps):
        e.step()
    after = _tumour_clones(e)
    escape = lambda c: int(np.count_nonzero(c & 2))  # noqa: E731
    return (escape(before), escape(after),
            before.size - escape(before), after.size - escape(after))


@needs_jit
def test_t_cells_never_kill_escape_cells_they_cannot_see():
    """escape_antigenicity 0: every escape cell survives while T cells kill other cells;
    with escape_antigenicity 1 (the control, same seed) escape cells die too."""
    e0, e1, o0, o1 = _kills_by_escape("tumor.escape_antigenicity=0")
    assert e1 == e0 and o1 < o0
    c0, c1, _, _ = _kills_by_escape("tumor.escape_antigenicity=1")
    assert c1 < c0


@needs_jit
def test_a_recognition_threshold_above_the_antigenicity_blinds_t_cells():
    """tumor.antigenicity 1 under a threshold of 1: no tumour cell is recognised, no kill;
    the same run with a threshold of 0.5 kills."""
    _, _, o0, o1 = _kills_by_escape("t_cells.recognition_threshold=1.0")
    assert o1 == o0
    _, _, p0, p1 = _kills_by_escape("t_cells.recognition_threshold=0.5")
    assert p1 < p0


@needs_jit
def test_run_file_names_the_escape_bit(tmp_path):
    from simulator.study.runner import run_to_file
    out = tmp_path / "escape.h5"
    run_to_file(load(None, ["simulation.dimensions=[60,60]", "initial.tumor_radius_sites=6",
                             "simulation.duration_days=2", "initial.escape_fraction=0.2"]),
                out)
    with h5py.File(out) as f:
        clone = f["timeseries/clone"]
        assert list(clone[:]) == [0, 1, 2, 3] and clone.attrs["escape_bit"] == 2
        assert "immune-escape" in clone.attrs["long_name"]
        by_clone = f["timeseries/tumor_by_clone"][0]
        assert by_clone[2] + by_clone[3] > 0
