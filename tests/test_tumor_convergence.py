"""The tumour's turnover does not depend on the step (issue: dt convergence).

The engine at dt = 0.25, 1, 6 and 12 h against an independent continuous-time (Gillespie)
simulation of the same process, ``naive.continuous_time_growth`` — no steps at all — in 2D
and 3D, from a small disc / ball:

- front speed, without death (the issue's measure): slope of the equivalent radius over the
  window, in sites per 1/b;
- turnover, with death and debris clearance on: divisions and deaths per cell per day over
  the window (cumulative counts over the time integral of the cell count).

Tolerances come from the spread of the two samples, not from a chosen number: for each dt
the difference of means engine - reference must lie within 4 standard errors (SE =
sqrt(s_e^2 / n_e + s_r^2 / n_r), with the engine's variance s_e^2 pooled over the four dts;
two-sided p ~ 6e-5 for an unbiased engine, so the test essentially never fails by chance),
and the standard error must be small enough for that
to mean something (4 SE under 6% of the mean on the small CI lattices; the slow test, on the
same lattices with more replicates, asks the 95% upper bound of |difference| to stay under 2%,
the issue's criterion; docs/convergence.md reports larger lattices). The synchronous step that this
kernel replaced was 28% slow at dt = 6 h and 11% at 2 h: far outside these bounds.
"""
import math

import numpy as np
import pytest

import naive
from conftest import needs_jit
from simulator.engine import Engine
from simulator.scenario import library_dir, load

DTS = (0.25, 1.0, 6.0, 12.0)
B, C = 1.0, 1.0   # division and debris clearance rates per day


def _radius(n, ndim):
    return np.sqrt(n / math.pi) if ndim == 2 else np.cbrt(3.0 * n / (4.0 * math.pi))


def _front_speed(t, n, divisions, deaths, t0, ndim):
    """Sites per 1/b: slope of the equivalent radius from day t0 on."""
    keep = t >= t0
    return (np.polyfit(t[keep], _radius(n[keep], ndim), 1)[0] / B,)


def _turnover(t, n, divisions, deaths, t0, ndim):
    """(divisions, deaths) per cell per day from day t0 on."""
    keep = t >= t0
    cell_days = np.trapezoid(n[keep], t[keep])
    return ((divisions[keep][-1] - divisions[keep][0]) / cell_days,
            (deaths[keep][-1] - deaths[keep][0]) / cell_days)


def _engine_run(shape, radius, days, dt_hours, seed, death_rate):
    scenario = load(library_dir() / "tumor_only.toml", [
        f"simulation.dimensions={list(shape)}", f"initial.tumor_radius_sites={radius}",
        f"tumor.division_rate_per_day={B}", f"tumor.death_rate_per_day={death_rate}",
        f"tumor.dead_clearance_rate_per_day={C}", f"simulation.dt_hours={dt_hours}",
        f"simulation.seed={seed}", f"simulation.duration_days={days}",
        "initial.resistant_fraction=0", "tumor.mutation_rate_per_division=0"])
    engine = Engine(scenario)
    steps_per_day = round(24.0 / dt_hours)
    assert abs(steps_per_day * dt_hours - 24.0) < 1e-9
    rows = []
    for day in range(days + 1):
        if day:
            for _ in range(steps_per_day):
                engine.step()
        o = engine.observe()
        rows.append((day, o["tumor_cells"], o["divisions_total"], o["deaths_total"]))
    return tuple(np.array(column, float) for column in zip(*rows))


def _compare(reference, engine_by_dt):
    """Per dt and statistic: (difference of means engine - reference, its standard error,
    reference mean). The engine's variance is pooled over the dts (the spread of a
    statistic is the same at every dt if the engine is right, and a variance estimated
    from a handful of runs per dt is itself too noisy to judge by)."""
    reference = np.asarray(reference)
    engine_by_dt = {dt: np.asarray(runs) for dt, runs in engine_by_dt.items()}
    pooled = np.mean([runs.var(0, ddof=1) for runs in engine_by_dt.values()], axis=0)
    n_engine = len(next(iter(engine_by_dt.values())))
    se = np.sqrt(pooled / n_engine + reference.var(0, ddof=1) / len(reference))
    return {dt: (runs.mean(0) - reference.mean(0), se, reference.mean(0))
            for dt, runs in engine_by_dt.items()}


CASES = {  # shape, initial radius, days, window start, death rate, statistic, names
    "front 2d": ((100, 100), 5, 20, 4, 0.0, _front_speed, ("front speed",)),
    "front 3d": ((30, 30, 30), 4, 6, 1, 0.0, _front_speed, ("front speed",)),
    "turnover 2d": ((80, 80), 8, 14, 4, 0.2, _turnover,
                    ("divisions/cell/day", "deaths/cell/day")),
    "turnover 3d": ((28, 28, 28), 4, 6, 1, 0.2, _turnover,
                    ("divisions/cell/day", "deaths/cell/day")),
}
SEEDS = (8, 4)   # reference and engine replicates per dt in CI
SLOW_SEEDS = (24, 16)


def _check(case, reference_seeds, engine_seeds, bound):
    shape, radius, days, t0, death, statistic, names = CASES[case]
    ndim = len(shape)
    reference = [statistic(*naive.continuous_time_growth(
        shape, B, death, C, days, 1000 + s, radius=radius), t0, ndim)
        for s in range(reference_seeds)]
    engine = {dt: [statistic(*_engine_run(shape, radius, days, dt, s, death), t0, ndim)
                   for s in range(engine_seeds)] for dt in DTS}
    for dt, (diff, se, mean) in _compare(reference, engine).items():
        for name, d, e, m in zip(names, diff, se, mean):
            assert abs(d) < 4 * e, f"{case} dt={dt}: {name} {m + d:.4f} vs reference {m:.4f}"
            bound(case, dt, name, d, e, m)


def _resolution(case, dt, name, diff, se, mean):
    assert 4 * se < 0.06 * mean, f"{case} dt={dt}: {name} too noisy to resolve a 6% bias"


@needs_jit
@pytest.mark.parametrize("case", list(CASES))
def test_turnover_follows_the_continuous_time_process_at_every_dt(case):
    _check(case, *SEEDS, _resolution)


def _within_two_percent(case, dt, name, diff, se, mean):
    assert abs(diff) + 1.96 * se < 0.02 * mean, \
        f"{case} dt={dt}: {name} 95% bound of |bias| {abs(diff) + 1.96 * se:.4f} >= 2%"


@needs_jit
@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_turnover_within_two_percent_of_continuous_time(case):
    """The issue's criterion, with enough replicates to resolve it: the 95% upper bound of
    |engine - reference| is under 2% of the reference for every statistic and dt."""
    _check(case, *SLOW_SEEDS, _within_two_percent)
