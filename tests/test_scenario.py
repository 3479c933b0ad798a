"""Scenario loading: inheritance, overrides, validation with one clear line, round trip."""
import pytest

from conftest import needs_jit
from simulator import scenario as scenario_mod
from simulator.engine import Engine
from simulator.scenario import library_dir
from simulator.schema import ScenarioError


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_loads_and_round_trips():
    s = scenario_mod.load()
    again = scenario_mod.from_toml(s.to_toml())
    assert again == s
    assert again.sha256 == s.sha256


def test_base_inheritance_and_overrides(tmp_path):
    _write(tmp_path, "base.toml", "[simulation]\nseed = 5\ndimensions = [50, 40]\n"
                                  "[tumor]\ndeath_rate_per_day = 0.2\n")
    child = _write(tmp_path, "child.toml", 'base = "base.toml"\n[simulation]\nseed = 9\n')
    s = scenario_mod.load(child, ["tumor.division_rate_per_day=2", "simulation.dimensions=[7,8,9]",
                                  "initial.tumor_radius_sites=2"])
    assert s.simulation.seed == 9                      # child overrides base
    assert s.tumor.death_rate_per_day == 0.2            # inherited
    assert s.tumor.division_rate_per_day == 2.0         # --set, int accepted for float
    assert s.simulation.dimensions == [7, 8, 9]


def test_anti_pd1_may_expand_t_cells(tmp_path):
    """PD-1 blockade's priming channel (the calibration fits it) adds to anti-CTLA-4's."""
    child = _write(tmp_path, "c.toml", 'base = "melanoma.toml"\n[drugs.anti_pd1]\n'
                   'priming = {emax = 0.8, ec50_mg_per_l = 1.0}\n')
    assert scenario_mod.load(child).drugs["anti_pd1"].priming.emax == 0.8


def test_builtin_base_is_found(tmp_path):
    child = _write(tmp_path, "c.toml", 'base = "default.toml"\n[simulation]\nseed = 3\n')
    assert scenario_mod.load(child).simulation.seed == 3


@pytest.mark.parametrize("text, overrides, key, words", [
    ("[simulation]\nsead = 1\n", [], "simulation.sead", "did you mean 'seed'"),
    ("[simulaton]\nseed = 1\n", [], "simulaton", "did you mean 'simulation'"),
    ("[simulation]\nseed = 'one'\n", [], "simulation.seed", "expected an integer"),
    ("[simulation]\ndimensions = [10]\n", [], "simulation.dimensions", "2 or 3"),
    ("[simulation]\ndt_hours = -1\n", [], "simulation.dt_hours", "> 0.0"),
    ("[initial]\nresistant_fraction = 1.5\n", [], "initial.resistant_fraction", "<= 1.0"),
    ("[tumor]\nresistance_targets = ['A', 'A']\n", [], "tumor.resistance_targets", "distinct"),
    ("", ["simulation.duration_days=abc"], "simulation.duration_days", "expected a number"),
    ("", ["tumor.deth_rate_per_day=1"], "tumor.deth_rate_per_day", "did you mean"),
    ("[simulation]\ntreatment_start_day = 500\n", [], "simulation.treatment_start_day",
     "after the end"),
    ('base = "melanoma.toml"\n[drugs.anti_pd1]\nkill = {emax = 0.1, ec50_mg_per_l = 1.0}\n',
     [], "drugs.anti_pd1.kill", "channels are checkpoint_blockade, exhaustion_relief, priming"),
])
def test_bad_input_names_file_and_key(tmp_path, text, overrides, key, words):
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(ScenarioError) as info:
        scenario_mod.load(path, overrides)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(str(path)), line
    assert key in line and words in line, line


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        scenario_mod.load(tmp_path / "nope.toml")
    bad = _write(tmp_path, "broken.toml", "[simulation\nseed = 1\n")
    with pytest.raises(ScenarioError, match="invalid TOML"):
        scenario_mod.load(bad)
    loop = _write(tmp_path, "loop.toml", 'base = "loop.toml"\n')
    with pytest.raises(ScenarioError, match="circular"):
        scenario_mod.load(loop)
    orphan = _write(tmp_path, "orphan.toml", 'base = "missing.toml"\n')
    with pytest.raises(ScenarioError, match="base file 'missing.toml' not found"):
        scenario_mod.load(orphan)


def test_rates_become_step_probabilities_once():
    from simulator.engine import tumor_rates
    s = scenario_mod.load(None, ["tumor.division_rate_per_day=1.0", "simulation.dt_hours=12",
                                 "tumor.resistance_fitness_cost=0.5"])
    rates = tumor_rates(s)
    assert rates.p_divide[0] == pytest.approx(1 - 2.718281828459045 ** -0.5)
    assert rates.p_divide[1] == pytest.approx(1 - 2.718281828459045 ** -0.25)


LIBRARY = sorted(p.name for p in library_dir().glob("*.toml"))


@needs_jit
@pytest.mark.parametrize("name", LIBRARY)
def test_every_library_scenario_loads_and_steps(name):
    """Each file of the library is valid and its engine runs; on a small lattice with the
    treatment from day 0, so every arm's first doses land in the steps taken."""
    scenario = scenario_mod.load(library_dir() / name)
    assert scenario.description
    small = scenario_mod.load(library_dir() / name, [
        f"simulation.dimensions={[30] * scenario.simulation.ndim}",
        "initial.tumor_radius_sites=5", "simulation.treatment_start_day=0"])
    engine = Engine(small)
    for _ in range(4):
        engine.step()
    assert engine.observe()["tumor_cells"] > 0
    if any(d.doses and not d.waits_for_rule and d.doses[0].start_day == 0
           for d in small.drugs.values()):
        assert engine.treatment.dose_log


def test_resolved_text_of_any_accepted_string_reads_back(tmp_path):
    """Run files and studies read the resolved scenario back from its text: a description
    with control characters and non-ASCII text must survive (TOML forbids them raw)."""
    path = _write(tmp_path, "s.toml", 'description = "tab\\there, bell\\u0007, \\u00e9, \\u007f"\n')
    s = scenario_mod.load(path)
    assert scenario_mod.from_toml(s.to_toml()) == s


@pytest.mark.parametrize("text, words", [
    ('description = "a\\u0000b"', "NUL"),
    ('[[cohort]]\nkey = "tumor.antigenicty"\ndistribution = "normal"\nmean = 1.0\nsd = 0.1',
     "did you mean 'tumor.antigenicity'"),
    ('[simulation]\ndimensions = [20, 20]\n[initial]\ntumor_radius_sites = 10', "does not fit"),
    ('[drugs."a/b"]\npreset = "vemurafenib"', "is not a name"),
])
def test_values_no_run_survives_are_refused_by_validation(tmp_path, text, words):
    with pytest.raises(ScenarioError, match=words):
        scenario_mod.load(_write(tmp_path, "bad.toml", text))


def test_scenario_file_must_be_a_small_regular_file(tmp_path):
    big = _write(tmp_path, "big.toml", "#" * (2 << 20))
    with pytest.raises(ScenarioError, match="larger than"):
        scenario_mod.load(big)
    with pytest.raises(ScenarioError, match="not a regular file"):
        scenario_mod.load(_write(tmp_path, "s.toml", 'base = "/dev/zero"\n'))
