"""The calibration machinery on a small case (fast), and the review's orderings (slow)."""
import math

import pytest

from conftest import needs_jit
from simulator.study import claims as calibration
from simulator import study
from simulator.scenario import library_dir, load

SMALL = ["simulation.dimensions=[70,70]", "simulation.treatment_start_day=20",
         "simulation.duration_days=76", "initial.tumor_radius_sites=6"]


@needs_jit
def test_figures_and_claims_table_on_a_small_study(tmp_path):
    arms = ["targeted_continuous", "anti_pd1", "combination_concurrent"]
    study.compare([library_dir() / f"{a}.toml" for a in arms], 2, tmp_path, overrides=SMALL,
                  figures=False)
    rows = calibration.figures(tmp_path, arms)
    assert [r.arm for r in rows] == arms
    for r in rows:
        assert r.replicates == 2
        for value in (r.response_rate, r.early_drop_fraction, r.progression_fraction,
                      r.in_response_at_end, r.durable_fraction):
            assert 0.0 <= value <= 1.0
        assert r.median_ttp_days > 0 or math.isnan(r.median_ttp_days)
    # the targeted drug acts within 8 weeks in this small case too
    assert rows[0].early_drop_fraction == 1.0
    text = calibration.markdown(rows, [("a claim", True, "1 vs 0")], "cmd", 1.0,
                                load(library_dir() / "melanoma.toml", SMALL))
    assert "| targeted_continuous | 2 |" in text and "| a claim | yes | 1 vs 0 |" in text


@pytest.mark.slow
@needs_jit
def test_library_shows_the_review_orderings(tmp_path):
    """Fewer replicates than docs/calibration.md (8 instead of 30), so only the orderings
    with wide margins there are asserted."""
    arms = ["targeted_continuous", "anti_pd1", "combination_concurrent",
            "combination_no_immune_channels"]
    study.compare([library_dir() / f"{a}.toml" for a in arms], 8, tmp_path, workers=2,
                  figures=False)
    r = {row.arm: row for row in calibration.figures(tmp_path, arms)}
    t, p, c = r["targeted_continuous"], r["anti_pd1"], r["combination_concurrent"]
    assert t.early_drop_fraction >= 0.7
    assert t.progression_fraction > 0.5
    assert t.resistant_fraction_at_progression >= 0.9
    assert p.response_rate < t.response_rate
    assert c.response_rate >= t.response_rate
    assert c.in_response_at_end > max(t.in_response_at_end, p.in_response_at_end)
    assert r["combination_no_immune_channels"].durable_fraction < c.durable_fraction
