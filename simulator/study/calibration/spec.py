"""The calibration file: what to fit, to which targets, with which budget.

A calibration file (TOML, e.g. ``scenarios/calibration/melanoma.toml``)::

    base_scenario = "melanoma.toml"        # the fitted values go into this scenario
    arms = ["targeted_continuous.toml", "anti_pd1.toml"]      # simulated in every wave
    predict_arms = ["anti_ctla4_anti_pd1.toml"]                 # only in the predictive check
    targets = "../targets/melanoma.toml"
    seed = 1                               # simulation.seed of every fitting run
    replicates = 8                         # virtual patients per point, shared by the arms
    waves = 3
    points_per_wave = 24

    [[parameter]]
    key = "tumor.division_rate_per_day"
    low = 0.2
    high = 0.8
    scale = "log"

    [[parameter]]
    key = "cohort[tumor.antigenicity].sigma"   # a field of the [[cohort]] entry of that key
    low = 0.2
    high = 1.5

    [[parameter]]
    key = "initial.tumor_radius_sites"
    low = 8
    high = 30
    integer = true                         # a whole-number key: values are rounded

    [[parameter]]
    key = "tumor.death_rate_per_day"
    times = "tumor.division_rate_per_day"  # fits the ratio: death = value x division rate
    low = 0.5
    high = 0.95

File names resolve beside the calibration file, then in the built-in library (as a
scenario's ``base``). Every arm must inherit the fitted keys from the base scenario (an arm
that sets a fitted key itself would not receive the fitted value through the base).
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from simulator import schema
from simulator import scenario as scenario_mod
from simulator.analysis import targets as targets_mod
from simulator.scenario import Scenario
from simulator.scenario.overrides import apply_overrides
from simulator.scenario.toml_writer import toml_value
from simulator.schema import ScenarioError, param
from simulator.study.comparison import load_arms
from simulator.study.layout import Arm

COHORT_KEY = re.compile(r"^cohort\[(?P<key>[^\]]+)\]\.(?P<field>\w+)$")


@dataclass(frozen=True)
class FitParameter:
    key: str = param("", doc="scenario key path, or cohort[KEY].FIELD for a field of the "
                             "[[cohort]] entry whose key is KEY")
    low: float = param(math.nan, doc="lower end of the range searched")
    high: float = param(math.nan, doc="upper end of the range searched")
    scale: str = param("linear", choices=("linear", "log"),
                       doc="log: searched uniformly in log(value)")
    integer: bool = param(False, doc="the key takes whole numbers (e.g. initial."
                                     "tumor_radius_sites): values are rounded")
    times: str = param("", doc="fit a ratio: the key is set to the fitted value times the "
                               "value of this key, a parameter listed earlier (e.g. the "
                               "death rate as a fraction of the division rate, so that every "
                               "set grows and the searched range is the net growth's)")

    @property
    def label(self) -> str:
        """The fitted quantity's name in designs, stores and tables: the key, or
        ``key/times`` for a ratio."""
        return f"{self.key}/{self.times}" if self.times else self.key

    def check(self):
        if not self.key:
            raise ScenarioError("needs a scenario key path", "key")
        if math.isnan(self.low) or math.isnan(self.high) or not self.low < self.high:
            raise ScenarioError("needs low < high", "high")
        if self.scale == "log" and self.low <= 0:
            raise ScenarioError("a log-scale range must be > 0", "low")
        if self.times and self.integer:
            raise ScenarioError("a ratio (times) cannot be an integer key", "integer")

    def typed(self, value):
        """``value`` as the key takes it: a rounded int for an integer key, else a float."""
        return int(round(float(value))) if self.integer else float(value)


@dataclass(frozen=True)
class CalibrationSpec:
    base_scenario: str = param("", doc="scenario that receives the fitted values")
    arms: list[str] = param([], doc="arm scenarios simulated at every parameter set (the arms "
                                    "of the fit targets)")
    predict_arms: list[str] = param([], doc="arm scenarios simulated only in the predictive "
                                            "check of the best fit (held-out predictions)")
    targets: str = param("", doc="targets file (scenarios/targets/<indication>.toml)")
    exclude_targets: list[str] = param([], doc="target ids left out (e.g. a landmark beyond "
                                               "the simulated follow-up)")
    seed: int = param(1, doc="simulation.seed of every fitting run")
    replicates: int = param(8, low=2, doc="virtual patients per point (every arm)")
    waves: int = param(3, low=1, doc="history-matching waves")
    points_per_wave: int = param(20, low=2, doc="parameter sets simulated per wave")
    candidates: int = param(2000, low=10, doc="emulator evaluations per batch when "
                                              "sampling the not-ruled-out space")
    implausibility_cut: float = param(3.0, low=0.0, low_open=True,
                                      doc="rule out x when some target's implausibility "
                                          "exceeds this", source="Pukelsheim 1994 three-"
                                                                 "sigma rule; Vernon 2010")
    discrepancy_fraction: float = param(0.1, low=0.0,
                                        doc="model discrepancy sd as a fraction of each "
                                            "target value")
    check_replicates: int = param(60, low=2, doc="patients per arm in the predictive check")
    check_seed: int = param(2, doc="simulation.seed of the predictive check (not the fit's)")
    overrides: list[str] = param([], doc="--set overrides applied to every arm")
    parameter: list[FitParameter] = param([], doc="the keys fitted and their ranges")

    def check(self):
        for name in ("base_scenario", "targets"):
            if not getattr(self, name):
                raise ScenarioError("is required", name)
        if not self.arms:
            raise ScenarioError("lists no arm", "arms")
        if not self.parameter:
            raise ScenarioError("fits no [[parameter]]", "parameter")
        if self.check_seed == self.seed:
            raise ScenarioError("must differ from seed: the predictive check uses fresh "
                                "patients", "check_seed")


@dataclass(frozen=True)
class Calibration:
    """A resolved calibration: arms validated, targets loaded and split by role."""
    spec: CalibrationSpec
    source: str                      # the calibration file
    base_path: Path
    arms: tuple[Arm, ...]            # resolved fitting arms with the spec's overrides
    predict_arms: tuple[Arm, ...]    # resolved arms of the predictive check only
    base_toml: str                   # resolved base scenario with the overrides
    fit: tuple                       # fit targets whose arm is simulated
    predict: tuple                   # predict and reference targets whose arm is simulated
    not_simulated: tuple             # targets whose arm is not simulated, or not followed
                                     # up to their landmark

    @property
    def parameters(self) -> tuple[FitParameter, ...]:
        return tuple(self.spec.parameter)

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arms)

    @property
    def check_arms(self) -> tuple[Arm, ...]:
        return self.arms + self.predict_arms


def _resolve(name: str, beside: Path, what: str, spec_path: Path) -> Path:
    for candidate in ((beside.parent / name), scenario_mod.library_dir() / name):
        if candidate.exists():
            return candidate.resolve()
    raise ScenarioError(f"{name!r} not found beside the file or in the library", what,
                        str(spec_path))


def load(path, *, seed: int | None = None, overrides=()) -> Calibration:
    """Read, validate and resolve a calibration file; ``seed`` and ``overrides`` (``--set``)
    come from the command line. Bad input raises ScenarioError naming file and key."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError("no such file", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid TOML: {exc}", source=str(path)) from None
    if seed is not None:
        table["seed"] = seed
    table["overrides"] = list(table.get("overrides", [])) + list(overrides)
    try:
        spec = schema.build(CalibrationSpec, table)
    except ScenarioError as exc:
        raise exc.located(str(path)) from None
    base_path = _resolve(spec.base_scenario, path, "base_scenario", path)
    arm_paths = [_resolve(a, path, "arms", path) for a in spec.arms]
    predict_paths = [_resolve(a, path, "predict_arms", path) for a in spec.predict_arms]
    targets_file = targets_mod.load(_resolve(spec.targets, path, "targets", path))
    unknown = set(spec.exclude_targets) - {t.id for t in targets_file.target}
    if unknown:
        raise ScenarioError(f"no such target: {', '.join(sorted(unknown))}", "exclude_targets",
                            str(path))
    sets = list(spec.overrides) + [f"simulation.seed={spec.seed}"]
    every_arm = tuple(load_arms(arm_paths + predict_paths, sets))
    arms, predict_arms = every_arm[:len(arm_paths)], every_arm[len(arm_paths):]
    base_toml = scenario_mod.load(base_path, sets).to_toml()
    _check_parameters(spec, every_arm, base_toml, str(path))
    fit_names = {a.name for a in arms}
    names = {a.name for a in every_arm}
    kept = [t for t in targets_file.target if t.id not in spec.exclude_targets]
    fit = tuple(t for t in kept if t.role == "fit" and t.arm in fit_names)
    if not fit:
        raise ScenarioError("no fit target has its arm among the arms", "arms", str(path))
    idle = sorted(fit_names - {t.arm for t in fit})
    if idle:
        raise ScenarioError(f"{', '.join(idle)} has no fit target: list it in predict_arms, "
                            "where it costs one predictive check instead of every wave",
                            "arms", str(path))
    too_long = _beyond_follow_up(kept, every_arm)
    for t in fit:
        if t in too_long:
            raise ScenarioError(f"fit target {t.id} needs {t.landmark_months:g} months of "
                                f"follow-up; arm {t.arm} has {too_long[t]:.1f} (duration_days"
                                " - treatment_start_day): lengthen it or list the target in "
                                "exclude_targets", "targets", str(path))
    return Calibration(spec, str(path), base_path, arms, predict_arms, base_toml, fit,
                       tuple(t for t in kept if t not in fit and t.arm in names
                             and t not in too_long),
                       tuple(t for t in kept if t.arm not in names or t in too_long))


# --------------------------------------------------------------------------- parameters
def set_value(table: dict, key: str, value: float) -> dict:
    """``table`` with ``key`` (a key path or ``cohort[KEY].FIELD``) set to ``value``."""
    match = COHORT_KEY.match(key)
    if not isinstance(value, int):
        value = float(value)
    if match is None:
        return apply_overrides(table, [f"{key}={toml_value(value)}"])
    entries = [dict(e) for e in table.get("cohort", [])]
    for entry in entries:
        if entry.get("key") == match["key"]:
            entry[match["field"]] = value
            return {**table, "cohort": entries}
    raise ScenarioError(f"the scenario has no [[cohort]] entry with key = "
                        f"{match['key']!r}", key)


def get_value(table: dict, key: str):
    match = COHORT_KEY.match(key)
    if match is not None:
        entry = [e for e in table.get("cohort", []) if e.get("key") == match["key"]]
        return entry[0].get(match["field"]) if entry else None
    node = table
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def scenario_values(parameters, values) -> dict:
    """{scenario key: value} for fitted ``values`` (one per parameter, in order): a ratio
    parameter (``times``) becomes its value times the earlier parameter's key value."""
    out = {}
    for p, v in zip(parameters, values):
        out[p.key] = p.typed(v) * out[p.times] if p.times else p.typed(v)
    return out


def with_values(scenario_toml: str, parameters, values) -> Scenario:
    """The scenario with each parameter's key set to its value, validated."""
    table = tomllib.loads(scenario_toml)
    for key, value in scenario_values(parameters, values).items():
        table = set_value(table, key, value)
    return schema.build(Scenario, table)


def _check_parameters(spec: CalibrationSpec, arms, base_toml: str, source: str):
    """Every fitted key exists, accepts both ends of its range and reaches every arm from
    the base scenario."""
    base_table = tomllib.loads(base_toml)
    earlier = {}
    for i, p in enumerate(spec.parameter):
        where = f"parameter[{i}].key"
        if p.key in earlier:
            raise ScenarioError(f"{p.key} is fitted twice", where, source)
        if p.times and p.times not in earlier:
            raise ScenarioError(f"times = {p.times!r} must name the key of a parameter "
                                "listed before this one", f"parameter[{i}].times", source)
        factors = (1.0,) if not p.times else (earlier[p.times].low, earlier[p.times].high)
        for end in (p.low, p.high):  # an unknown key or an out-of-range end fails here
            for factor in factors:
                value = p.typed(end) * factor
                try:
                    with_values(base_toml, [FitParameter(p.key, integer=p.integer)], [value])
                except ScenarioError as exc:
                    raise ScenarioError(f"{p.key} = {value:g}: {exc.message}", where,
                                        source) from None
        earlier[p.key] = p
        for arm in arms:
            if get_value(tomllib.loads(arm.toml), p.key) != get_value(base_table, p.key):
                raise ScenarioError(f"arm {arm.name} sets {p.key} itself, so the fitted value "
                                    "would not reach it through the base scenario", where,
                                    source)


def _beyond_follow_up(kept, arms) -> dict:
    """Targets whose landmark lies beyond their arm's follow-up: {target: follow-up}."""
    follow = {a.name: _follow_up_months(a.toml) for a in arms}
    return {t: follow[t.arm] for t in kept
            if t.arm in follow and t.landmark_months and t.landmark_months > follow[t.arm]}


def _follow_up_months(toml_text: str) -> float:
    from simulator.analysis.statistics import DAYS_PER_MONTH
    sim = scenario_mod.from_toml(toml_text).simulation
    return (sim.duration_days - sim.treatment_start_day) / DAYS_PER_MONTH
