"""The explorer's form as plain data, and how it becomes a scenario.

The form never builds a scenario itself: it turns what the user typed into ``--set``
overrides of the chosen scenario file and hands them to :func:`simulator.scenario.load`,
exactly as ``tumorsim run FILE --set KEY=VALUE ...`` does. So a bad value gets the CLI's
own one-line message (``tumorsim: error: FILE: key.path: what``), and the explorer can show
the equivalent command line. Only fields that differ from the file become overrides.

A drug's regimen in the form is its first dose block and its first rule; a file with more
keeps them all until the user edits that drug (then the form's one block and rule replace
the drug's ``doses`` and ``rules``).
"""
from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from simulator import scenario as scenario_mod
from simulator.schema import ScenarioError, describe, to_table
from simulator.scenario.toml_writer import toml_value

#: Biology the form offers: scenario key -> (label, unit as shown). The units are the
#: schema's (simulator.schema.param), spelt out where the schema's is dimensionless.
BIOLOGY = {
    "tumor.antigenicity": ("antigenicity", "relative, 1 = baseline"),
    "initial.resistant_fraction": ("resistant fraction at the start", "fraction of cells"),
    "initial.escape_fraction": ("immune-escape variants at the start", "fraction of cells"),
    "tumor.mutation_rate_per_division": ("resistance mutation rate", "per division"),
    "t_cells.recruitment_rate_per_day": ("T-cell recruitment", "cells/day"),
    "suppressive.recruitment_rate_per_day_per_1000_tumor_cells": (
        "suppressive-cell recruitment", "cells/day per 1000 tumour cells"),
}
#: Run settings the form offers (shared by both arms: they share one pre-treatment tumour).
RUN = {"simulation.seed": ("seed", "key of every random decision"),
       "simulation.duration_days": ("duration", "days"),
       "simulation.treatment_start_day": ("treatment starts on", "day")}
#: Dose-block fields of the form, in order, with their units.
BLOCK_FIELDS = {"start_day": "day after treatment start", "every_days": "day",
                "dose_mg": "mg", "count": "doses", "on_days": "day", "off_days": "day"}
RULES = ("none", "adaptive", "progression")


def units_and_docs() -> dict[str, tuple[str, str]]:
    """Scenario key -> (unit, meaning) from the schema, for labels and tooltips."""
    return {key: (unit, doc) for key, _d, unit, doc, _s in describe(scenario_mod.Scenario)}


def label(key: str) -> str:
    """A form label with its unit: ``T-cell recruitment (cells/day)``."""
    name, unit = {**BIOLOGY, **RUN}.get(key) or (key.split(".")[-1].replace("_", " "),
                                                units_and_docs().get(key, ("", ""))[0])
    return f"{name} ({unit})" if unit else name


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if abs(value) >= 1 or value == 0 else repr(value)
    return str(value)


def _get(table: dict, key: str):
    for part in key.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    return None if table == {} else table


@dataclass(frozen=True)
class DrugForm:
    """One drug's regimen as typed: text fields, empty = not set."""
    given: bool = False
    start_day: str = "0"
    every_days: str = ""
    dose_mg: str = ""
    count: str = ""
    on_days: str = ""
    off_days: str = ""
    rule: str = "none"          # one of RULES
    pause_below: str = ""       # adaptive: pause at or below this fraction of the start burden
    resume_above: str = ""      # adaptive: resume at or above this fraction
    after: str = ""             # progression: start when the tumour progresses under this drug


def drug_form(drug) -> DrugForm:
    """The form of a scenario's drug (its first dose block and first rule)."""
    if not drug.doses:
        return DrugForm()
    b = drug.doses[0]
    form = DrugForm(True, _text(b.start_day), _text(b.every_days), _text(b.dose_mg),
                    _text(b.count), _text(b.on_days), _text(b.off_days))
    for rule in drug.rules[:1]:
        if rule.kind == "adaptive":
            form = replace(form, rule="adaptive", pause_below=_text(rule.pause_below_fraction),
                           resume_above=_text(rule.resume_fraction))
        elif rule.kind == "progression":
            form = replace(form, rule="progression", after=rule.of or "")
    return form


def regimen_form(scenario) -> dict[str, DrugForm]:
    return {name: drug_form(drug) for name, drug in scenario.drugs.items()}


def _value(raw: str) -> str:
    """A typed value as TOML (a number, a list, ...), or as a string when it is not TOML,
    so the schema names the key and what it expected (``--set``'s rule)."""
    raw = raw.strip()
    try:
        return toml_value(tomllib.loads(f"v = {raw}")["v"])
    except tomllib.TOMLDecodeError:
        return toml_value(raw)


def _regimen_overrides(name: str, form: DrugForm) -> list[str]:
    if not form.given:
        return [f"drugs.{name}.doses=[]", f"drugs.{name}.rules=[]"]
    block = [f"{k} = {_value(getattr(form, k))}" for k in BLOCK_FIELDS
             if getattr(form, k).strip()]
    rules = []
    if form.rule == "adaptive":
        parts = [f"pause_below_fraction = {_value(form.pause_below or '0.5')}"]
        if form.resume_above.strip():
            parts.append(f"resume_above_fraction = {_value(form.resume_above)}")
        rules.append("{" + ", ".join(parts) + "}")
    elif form.rule == "progression":
        parts = ['when = "progression"']
        if form.after.strip():
            parts.append(f"of = {toml_value(form.after.strip())}")
        rules.append("{" + ", ".join(parts) + "}")
    elif form.rule != "none":
        raise ScenarioError(f"unknown rule {form.rule!r}; choose one of {', '.join(RULES)}",
                            f"drugs.{name}.rules")
    return [f"drugs.{name}.doses=[{{{', '.join(block)}}}]",
            f"drugs.{name}.rules=[{', '.join(rules)}]"]


@dataclass(frozen=True)
class Form:
    """Everything the user set: the scenario file, shared settings, one or two regimens."""
    source: str                                     # scenario file path
    values: dict[str, str] = field(default_factory=dict)     # BIOLOGY and RUN keys -> text
    arms: tuple[dict[str, DrugForm], ...] = ()      # regimen per arm (1 or 2)
    file_values: dict[str, str] = field(default_factory=dict)
    file_regimen: dict[str, DrugForm] = field(default_factory=dict)
    # the explorer follows every arm to the horizon, relapse and all: a file that ends runs
    # at progression (endpoints.off_study_at_progression) gets that switched off, visibly,
    # so a saved scenario or command line gives the numbers on screen
    file_goes_off_study: bool = False
    # a switch at progression must look when the endpoints look, or it can switch before
    # they call progression (docs/regimens.md): the file's endpoint and rule scans
    # (scan_interval_days, first_scan_days), so an arm with such a rule gets the former
    file_endpoint_scans: tuple[float, float] = (0.0, 0.0)
    file_rule_scans: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def of_file(cls, source, arm_b_source=None) -> "Form":
        """A form showing ``source`` (arm A); arm B takes the regimen of ``arm_b_source``."""
        s = scenario_mod.load(source)
        table = to_table(s)
        values = {k: _text(_get(table, k)) for k in (*BIOLOGY, *RUN)}
        regimen = regimen_form(s)
        arms = (regimen,)
        if arm_b_source is not None:
            b = regimen_form(scenario_mod.load(arm_b_source))
            arms += ({name: b.get(name, DrugForm()) for name in regimen},)
        return cls(str(source), values, arms, dict(values), dict(regimen),
                   bool(s.endpoints.off_study_at_progression),
                   (s.endpoints.scan_interval_days, s.endpoints.first_scan_days),
                   (s.regimen.scan_interval_days, s.regimen.first_scan_days))

    def with_value(self, key: str, text: str) -> "Form":
        return replace(self, values={**self.values, key: text})

    def with_drug(self, arm: int, name: str, **changes) -> "Form":
        arms = list(self.arms)
        arms[arm] = {**arms[arm], name: replace(arms[arm][name], **changes)}
        return replace(self, arms=tuple(arms))

    def with_arms(self, n: int) -> "Form":
        """One arm, or two (B starting as a copy of A's regimen)."""
        arms = self.arms[:n] if len(self.arms) >= n else self.arms + (dict(self.arms[0]),)
        return replace(self, arms=arms)

    def overrides(self, arm: int = 0) -> list[str]:
        """The ``--set`` overrides that make arm ``arm`` from the file."""
        out = [f"{k}={v.strip()}" for k, v in self.values.items()
               if v.strip() != self.file_values.get(k, "").strip()]
        if self.file_goes_off_study:
            out.append("endpoints.off_study_at_progression=false")
        for name, form in self.arms[arm].items():
            if form != self.file_regimen.get(name):
                out += _regimen_overrides(name, form)
        switches = any(f.given and f.rule == "progression" for f in self.arms[arm].values())
        if switches and self.file_rule_scans != self.file_endpoint_scans:
            interval, first = self.file_endpoint_scans
            out += [f"regimen.scan_interval_days={toml_value(interval)}",
                    f"regimen.first_scan_days={toml_value(first)}"]
        return out

    def scenario(self, arm: int = 0):
        """The arm's validated scenario; ScenarioError (the CLI's message) if a value is bad."""
        return scenario_mod.load(self.source, self.overrides(arm))

    def scenarios(self) -> list:
        return [self.scenario(a) for a in range(len(self.arms))]

    def command_line(self, arm: int = 0) -> str:
        """The equivalent ``tumorsim run`` command."""
        source = self.source
        library = scenario_mod.library_dir()
        if Path(source).parent == library:
            source = f"scenarios/{Path(source).name}"
        parts = ["tumorsim", "run", source]
        for o in self.overrides(arm):
            parts += ["--set", o]
        return " ".join(shlex.quote(p) for p in parts)


def summary(regimen: dict[str, DrugForm]) -> str:
    """One line naming what an arm gives: ``braf_inhibitor 960 mg every 0.5 d + ...``."""
    parts = []
    for name, f in regimen.items():
        if not f.given:
            continue
        text = f"{name} {f.dose_mg} mg" + (f" every {f.every_days} d" if f.every_days else "")
        if f.on_days and f.off_days:
            text += f", {f.on_days} on / {f.off_days} off"
        if f.start_day not in ("", "0"):
            text += f" from day +{f.start_day}"
        if f.rule == "adaptive":
            text += " (adaptive)"
        elif f.rule == "progression":
            text += f" (at progression{' on ' + f.after if f.after else ''})"
        parts.append(text)
    return " + ".join(parts) or "untreated"


def error_line(exc: ScenarioError) -> str:
    """The CLI's line for a bad value (``tumorsim: error: FILE: key.path: what``)."""
    return f"tumorsim: error: {exc}"
