"""Virtual cohorts: per-patient parameters drawn once per replicate, shared by every arm.

A scenario's ``[[cohort]]`` entries each name a scenario key and a distribution::

    [[cohort]]
    key = "tumor.antigenicity"
    distribution = "lognormal"    # normal | lognormal | uniform | beta
    median = 1.0                  # lognormal: median and sigma of log
    sigma = 0.4

Replicate r's values come from a generator seeded with (simulation.seed, r, STREAM_COHORT),
so they depend on nothing else: every arm of a study sees the same patient r, and a rerun
draws the same cohort. The drawn values are stored with each run (``/cohort`` attributes).
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass

import numpy as np

from kernels.rng import STREAM_COHORT
from simulator import schema
from simulator.scenario.overrides import apply_overrides, parse_override
from simulator.schema import ScenarioError, param

DISTRIBUTIONS = ("normal", "lognormal", "uniform", "beta")


@dataclass(frozen=True)
class CohortParameter:
    key: str = param("", doc="scenario key path the draw replaces, e.g. tumor.antigenicity")
    distribution: str = param("normal", choices=DISTRIBUTIONS, doc="sampling distribution")
    mean: float | None = param(None, doc="normal: mean")
    sd: float | None = param(None, low=0.0, doc="normal: standard deviation")
    median: float | None = param(None, low=0.0, low_open=True, doc="lognormal: median")
    sigma: float | None = param(None, low=0.0, doc="lognormal: standard deviation of log")
    low: float | None = param(None, doc="uniform/beta: lower end; others: clip below")
    high: float | None = param(None, doc="uniform/beta: upper end; others: clip above")
    alpha: float | None = param(None, low=0.0, low_open=True, doc="beta: shape a")
    beta: float | None = param(None, low=0.0, low_open=True, doc="beta: shape b")

    REQUIRED = {"normal": ("mean", "sd"), "lognormal": ("median", "sigma"),
                "uniform": ("low", "high"), "beta": ("alpha", "beta")}

    def check(self):
        if not self.key or "." not in self.key:
            raise ScenarioError("needs a scenario key path such as 'tumor.antigenicity'", "key")
        for name in self.REQUIRED[self.distribution]:
            if getattr(self, name) is None:
                raise ScenarioError(f"the {self.distribution} distribution needs '{name}'", name)
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ScenarioError(f"must be above low ({self.low:g})", "high")

    def sample(self, rng: np.random.Generator) -> float:
        if self.distribution == "normal":
            value = rng.normal(self.mean, self.sd)
        elif self.distribution == "lognormal":
            value = self.median * np.exp(rng.normal(0.0, self.sigma))
        elif self.distribution == "uniform":
            return float(rng.uniform(self.low, self.high))
        else:
            unit = rng.beta(self.alpha, self.beta)
            low = 0.0 if self.low is None else self.low
            high = 1.0 if self.high is None else self.high
            return float(low + (high - low) * unit)
        if self.low is not None or self.high is not None:
            value = np.clip(value, -np.inf if self.low is None else self.low,
                            np.inf if self.high is None else self.high)
        return float(value)


def check_keys(scenario):
    """Every ``[[cohort]]`` key names a number-valued key of this scenario (so a misspelt
    key fails validation, not every run of a study), and no two entries draw one key."""
    table = schema.to_table(scenario)
    seen = set()
    for i, entry in enumerate(scenario.cohort):
        where = f"cohort[{i}].key"
        try:
            tp = schema.key_type(type(scenario), entry.key, table)
        except ScenarioError as exc:
            raise ScenarioError(exc.message, where) from None
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if tp is not float:
            raise ScenarioError(f"{entry.key!r} does not take a number (a cohort draws "
                                "real numbers)", where)
        if entry.key in seen:
            raise ScenarioError(f"{entry.key!r} is drawn twice", where)
        seen.add(entry.key)


def check_not_overridden(scenario, overrides, source: str):
    """A study draws each ``[[cohort]]`` key per patient after the overrides (:func:`apply`),
    so an override of a drawn key would be replaced in every replicate without a word."""
    drawn = {entry.key for entry in scenario.cohort}
    for text in overrides:
        key = ".".join(parse_override(text)[0])
        if key in drawn:
            raise ScenarioError("overridden, but a [[cohort]] entry draws it per patient and "
                                "would replace the value in every replicate: override the "
                                "entry instead ('cohort=[]' draws nothing)", key, source)


def draw(scenario, replicate: int) -> dict[str, float]:
    """Replicate ``replicate``'s patient: {key path: value}, in declaration order."""
    entries = scenario.cohort
    if not entries:
        return {}
    rng = np.random.default_rng(np.random.SeedSequence(
        [scenario.simulation.seed, replicate, STREAM_COHORT]))
    return {entry.key: entry.sample(rng) for entry in entries}


def apply(scenario, replicate: int, values: dict[str, float]):
    """The scenario for replicate ``replicate`` with the patient's values in place."""
    overrides = [f"simulation.replicate={replicate}"]
    overrides += [f"{key}={value!r}" for key, value in values.items()]
    table = apply_overrides(schema.to_table(scenario), overrides)
    try:
        return schema.build(type(scenario), table)
    except ScenarioError as exc:
        raise ScenarioError(f"{exc.message} (value drawn by [[cohort]] for replicate "
                            f"{replicate})", exc.key, exc.source) from None
