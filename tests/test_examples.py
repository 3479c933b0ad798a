"""The student examples (examples/*.py) run end to end in --quick mode, draw their figures
and print their lessons; at their defaults (slow) the model supports each lesson the example
claims, and not the ones it says the calibrated library does not. They are scripts, not a
package, so each is imported from its file."""
import importlib.util

import pytest
from scipy.stats import binom

from conftest import ROOT, needs_jit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXAMPLES = {
    "why_targeted_therapy_relapses": ["clonal_dynamics.png", "relapse_lattice.png"],
    "why_the_combination_lasts": ["burden.png", "progression_free.png",
                                  "t_cells_core_margin.png", "durable_fraction.png"],
}


def _load(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_jit
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_quick_and_draws_its_figures(name, tmp_path, capsys):
    """--quick at its own replicate count: figures, a verdict line per lesson, and every
    lesson's effect on the side the lesson states (its numbers are not meant to be read,
    but its direction is the defaults' one: a fixed seed, so this is deterministic)."""
    out = tmp_path / name
    figures = _load(name).main(["--quick", "--workers", "2", "-o", str(out)])
    assert sorted(p.name for p in figures) == sorted(EXAMPLES[name])
    for path in figures:
        assert path.parent == out
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE), path
        assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"
    printed = capsys.readouterr().out
    for path in figures:
        assert str(path) in printed               # the script says where its figures are
    assert (out / "study" / "arms.csv").exists()  # the paired study behind the figures
    module = _load(name)
    lines = [x.strip() for x in printed.splitlines()]
    for lesson in module.LESSONS:                 # each lesson: a number, an interval, a verdict
        line = lines[lines.index(lesson.name) + 1]
        assert "(" in line and " to " in line and "p = " in line and "SUPPORTED" in line
    unsupported = getattr(module, "NOT_SUPPORTED_AT_DEFAULTS", {})
    for result in module.lessons(out / "study"):
        if result.claim in unsupported:           # no direction at the defaults either
            continue
        c = result.comparison
        baseline = 0.5 if c.kind == "one_arm" else 0.0
        assert result.n > 0 and (result.effect - baseline) * c.direction > 0, \
            (f"{name} --quick: {result.claim}: effect {result.effect:+.2f} over {result.n}")


def critical_count(n: int, alpha: float = 0.05) -> int:
    """Fewest of n paired replicates that must favour one side for the two-sided exact
    sign test to reach p < alpha (binomial(n, 1/2)); n + 1 if none can."""
    return next((k for k in range(n // 2 + 1, n + 1) if 2 * binom.sf(k - 1, n, 0.5) < alpha),
                n + 1)


@pytest.mark.slow
@needs_jit
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_teaches_its_lesson_at_its_defaults(name, tmp_path):
    """At the default replicate count n the exact sign/binomial test needs critical_count(m)
    of the m replicates that differ (m <= n; with no tie 9 of 10, 15 of 20) on the lesson's
    side; the example's verdict is that test. A lesson the example says the calibrated
    library does not support (NOT_SUPPORTED_AT_DEFAULTS) must indeed not hold: if a new
    calibration makes it hold, the example's text is stale; one it shows under other
    parameters (SHOWN_WITH) must hold under them."""
    module = _load(name)
    n = module.DEFAULT_REPLICATES
    assert critical_count(n) <= n  # the default replicate count can support a lesson
    unsupported = getattr(module, "NOT_SUPPORTED_AT_DEFAULTS", {})
    module.main(["-o", str(tmp_path)])
    for result in module.lessons(tmp_path / "study"):
        verdict = (f"{name}: {result.claim}: effect {result.effect:+.2f} ({result.low:+.2f} "
                   f"to {result.high:+.2f}) over {result.n} replicates, "
                   f"p = {result.p_value:.3f}")
        if result.claim in unsupported:
            assert not result.holds, "now supported: " + verdict
        else:
            assert result.holds, verdict
    # each lesson the example shows under other parameters holds under them
    for i, (claim, overrides) in enumerate(getattr(module, "SHOWN_WITH", {}).items()):
        out = tmp_path / f"shown-{i}"
        module.main(["-o", str(out)] + [a for o in overrides for a in ("--override", o)])
        result = next(r for r in module.lessons(out / "study") if r.claim == claim)
        assert result.holds, (f"{name}: {claim} with {overrides}: effect "
                              f"{result.effect:+.2f}, p = {result.p_value:.3f}")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_reject_bad_options(name, tmp_path, capsys):
    module = _load(name)
    with pytest.raises(SystemExit) as exc:
        module.main(["--replicates", "0", "-o", str(tmp_path)])
    assert exc.value.code == 2
    assert "--replicates" in capsys.readouterr().err
    # a misspelt scenario key: one line naming it, exit status 2, no runs started
    with pytest.raises(SystemExit) as exc:
        module.main(["--quick", "--override", "tumor.resistance_fitnes_cost=0",
                     "-o", str(tmp_path / "bad")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "resistance_fitness_cost" in err
    assert not (tmp_path / "bad" / "study" / "runs").exists()
