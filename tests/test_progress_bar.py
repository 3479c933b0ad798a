"""The terminal progress bar shared by runs (steps) and studies (runs)."""
import sys

import pytest

from simulator.engine import progress_bar


def test_no_bar_unless_asked_for():
    assert progress_bar(False, 10, "step") is None


def test_no_bar_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    assert progress_bar(True, 10, "step") is None


def test_bar_counts_the_given_unit_and_leaves_no_line():
    pytest.importorskip("tqdm")
    bar = progress_bar(True, 7, "run")
    try:
        assert (bar.total, bar.unit, bar.leave) == (7, "run", False)
    finally:
        bar.close()


def test_a_run_with_progress_counts_every_step(monkeypatch):
    pytest.importorskip("tqdm")
    from simulator import engine
    from simulator.scenario import load
    bars = []

    def keep(enabled, total, unit):
        bars.append(progress_bar(enabled, total, unit))
        return bars[-1]

    monkeypatch.setattr(engine, "progress_bar", keep)
    scenario = load(None, ["simulation.dimensions=[30,30]", "initial.tumor_radius_sites=4",
                           "simulation.duration_days=3"])
    engine.run(scenario, progress=True)
    (bar,) = bars
    assert bar.n == bar.total == scenario.simulation.steps
