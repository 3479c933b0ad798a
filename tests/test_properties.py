"""Property-based tests of the scenario reader (hypothesis): any TOML document and any
``--set`` string either validates and then survives a short run on a small lattice, or
exits 2 with exactly one line and no traceback. Nothing an accepted input does may crash
the engine, the recorder or the endpoints.

Three sources of documents: arbitrary TOML tables (mostly unknown keys), arbitrary text
(mostly invalid TOML), and documents built from the scenario's own keys
(``schema.describe``) with values near, at and far outside their ranges and of the wrong
types — the ones that reach deep into validation and the run. Examples are bounded
(``TUMORSIM_HYPOTHESIS_EXAMPLES`` raises them and ``TUMORSIM_HYPOTHESIS_RANDOM=1`` draws
new ones, for a deeper local search) and every
accepted input runs two steps on a lattice of at most 40 x 40 (or 12^3).
"""
import io
import math
import os
from contextlib import redirect_stderr, redirect_stdout

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import needs_jit
from simulator import schema
from simulator.cli import main
from simulator.scenario import Scenario, library_dir
from simulator.scenario.toml_writer import toml_value

EXAMPLES = int(os.environ.get("TUMORSIM_HYPOTHESIS_EXAMPLES", "60"))
# derandomized (the same examples every run) unless TUMORSIM_HYPOTHESIS_RANDOM=1
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    derandomize=os.environ.get("TUMORSIM_HYPOTHESIS_RANDOM") != "1",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
BASES = ["default.toml", "melanoma.toml", "tumor_only.toml", "targeted_continuous.toml",
         "targeted_continuous_penetration.toml", "targeted_adaptive.toml"]
DRUG_NAMES = ["braf_inhibitor", "anti_pd1", "x"]
MAX_RUN_SITES = 40 * 40


# ---------------------------------------------------------------- writing TOML
def dumps(table: dict) -> str:
    """Any nested table as TOML, every key quoted and every sub-table inline (always valid
    TOML, with the writer the run files use for their scenario text)."""
    return "".join(f"{toml_value(k)} = {toml_value(v)}\n" for k, v in table.items())


# ---------------------------------------------------------------- strategies
scalars = st.one_of(st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)
any_table = st.dictionaries(st.text(max_size=12), values, max_size=4)


def _near(default):
    """Values for a key with this default: mostly plausible (the default, scaled by 0 to
    3, small integers), sometimes extreme (0, negative, 1e-300, 1e300, NaN, inf, 2^63) or
    of the wrong type, so that many documents validate and reach the run."""
    wrong = st.one_of(st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2),
                      st.just({}))
    if isinstance(default, bool):
        plausible, extreme = st.booleans(), wrong
    elif isinstance(default, int):
        plausible = st.integers(max(0, default - 3), default + 10)
        extreme = st.one_of(st.sampled_from([0, -1, 2**31, 2**63, 10**30]),
                            st.floats(allow_nan=True), wrong)
    elif isinstance(default, float) or default is None:
        base = abs(default) if isinstance(default, float) and default else 1.0
        plausible = st.floats(0, 3).map(lambda f: f * base)
        extreme = st.one_of(st.sampled_from([0.0, -1.0, 1e-300, 1e-12, 1e12, 1e300, math.nan,
                                             math.inf, -math.inf, 2**63]),
                            st.integers(-2, 100), wrong)
    elif isinstance(default, str):
        plausible, extreme = st.just(default), st.one_of(st.text(max_size=10), wrong)
    elif isinstance(default, list):
        item = default[0] if default else 1.0
        plausible = st.lists(_near(item), min_size=len(default), max_size=len(default))
        extreme = st.one_of(st.lists(_near(item), max_size=4), wrong)
    else:
        return values
    return st.integers(0, 9).flatmap(lambda roll: plausible if roll < 7 else extreme)


def _keys():
    rows = []
    for key, default, *_ in schema.describe(Scenario):
        if key in ("simulation.threads",):
            continue
        rows.append((key, default))
    return rows


KEYS = _keys()


@st.composite
def scenario_documents(draw):
    """A document with a base from the library, a small lattice and tumour (unless drawn
    otherwise) and a few keys of the schema set to drawn values."""
    ndim = draw(st.sampled_from([2, 2, 2, 3]))
    side = draw(st.integers(6, 40 if ndim == 2 else 12))
    table = {"base": str(library_dir() / draw(st.sampled_from(BASES))),
             "simulation": {"dimensions": [side] * ndim, "duration_days": 8.0,
                            "treatment_start_day": 2.0},
             "initial": {"tumor_radius_sites": draw(st.integers(0, (side - 1) // 2))}}
    for key, default in draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4,
                                      unique_by=lambda kd: kd[0])):
        key = key.replace("<effect>", draw(st.sampled_from(["kill", "arrest", "priming"])))
        key = key.replace("<name>", draw(st.sampled_from(DRUG_NAMES)))
        _put(table, key.split("."), draw(_near(default)))
    if draw(st.integers(0, 3)) == 0:
        _put(table, ["cohort[]", "key"], draw(st.sampled_from([k for k, _ in KEYS] +
                                                              ["tumor.antigenicty"])))
        _put(table, ["cohort[]", "distribution"], draw(st.sampled_from(
            ["normal", "lognormal", "uniform", "beta"])))
        for name in draw(st.lists(st.sampled_from(["mean", "sd", "median", "sigma", "low",
                                                   "high", "alpha", "beta"]), max_size=4)):
            _put(table, ["cohort[]", name], draw(_near(1.0)))
    return table


def _put(table, parts, value):
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = table.setdefault(head[:-2], [{}])
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            return
        target = items[0]
    else:
        target = table
        if not rest:
            target[head] = value
            return
        target = table.setdefault(head, {})
        if not isinstance(target, dict):
            return
        return _put(target, rest, value)
    if rest:
        _put(target, rest, value)


override_text = st.one_of(
    st.text(max_size=30),
    st.tuples(st.sampled_from([k for k, _ in KEYS if "<" not in k and "[" not in k]),
              st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(st.sampled_from([k for k, _ in KEYS if "<" not in k and "[" not in k]),
              values).map(lambda kv: f"{kv[0]}={toml_value(kv[1])}"))


# ---------------------------------------------------------------- the property
def _validate(path, sets) -> tuple[int, str]:
    """``tumorsim validate`` in-process: (exit status, stderr). An exception escaping
    main() is a crash and fails the test."""
    args = ["validate", str(path)]
    for s in sets:
        args += ["--set", s]
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


def _short_run(path, sets, out):
    """Two steps of an accepted scenario, recorded to a file with endpoints (the run of
    `tumorsim run`, cut short). A ScenarioError here is a one-line error, not a crash."""
    from simulator import engine as engine_mod
    from simulator import scenario as scenario_mod
    from simulator.output.recorder import Recorder
    from simulator.study.runner import assess_run
    scenario = scenario_mod.load(path, sets)
    sim = scenario.simulation
    if math.prod(sim.dimensions) > MAX_RUN_SITES and len(sim.dimensions) == 2 or \
            math.prod(sim.dimensions) > 12 ** 3:
        return
    engine_mod.set_threads(1)
    engine = engine_mod.Engine(scenario)
    with Recorder(out, scenario, n_clones=engine.n_clones,
                  drug_names=engine.treatment.drug_names) as recorder:
        engine_mod.run(scenario, recorder, engine=engine, until_step=min(2, sim.steps))
        recorder.write_doses(engine.treatment.dose_log)
        assess_run(scenario, recorder.series())


def _check(tmp_path, text: str, sets=()):
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, err = _validate(path, sets)
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tumorsim"), err
        assert "Traceback" not in err
        event("refused: " + (err.split(": ")[3][:40] if err.count(": ") > 3 else err[:40]))
        return
    event("accepted")
    try:
        _short_run(path, list(sets), tmp_path / "run.h5")
    except schema.ScenarioError as exc:
        assert "\n" not in exc.line()
        event("one-line error during the run")


@SETTINGS
@given(table=any_table)
def test_any_toml_table_is_accepted_or_one_line(tmp_path_factory, table):
    _check(tmp_path_factory.mktemp("t"), dumps(table))


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_is_accepted_or_one_line(tmp_path_factory, text):
    text = text.encode("utf-8", "replace").decode("utf-8")
    _check(tmp_path_factory.mktemp("t"), text)


@needs_jit
@SETTINGS
@given(table=scenario_documents())
def test_scenario_documents_validate_and_run_or_are_one_line(tmp_path_factory, table):
    _check(tmp_path_factory.mktemp("t"), dumps(table))


@needs_jit
@SETTINGS
@given(sets=st.lists(override_text, min_size=1, max_size=3))
def test_any_set_string_validates_and_runs_or_is_one_line(tmp_path_factory, sets):
    small = dumps({"base": str(library_dir() / "default.toml"),
                   "simulation": {"dimensions": [16, 16]},
                   "initial": {"tumor_radius_sites": 2}})
    _check(tmp_path_factory.mktemp("t"), small, sets)


@SETTINGS
@given(table=any_table)
def test_the_scenario_writer_round_trips_any_table(table):
    """Run files store the resolved scenario as text written by ``toml_writer``: any table
    (control characters, non-ASCII keys, NaN, huge integers) must read back equal."""
    import tomllib
    back = tomllib.loads(dumps(table))
    assert toml_value(back) == toml_value(table)
