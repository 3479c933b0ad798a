"""Drugs as scenario data: what a drug is (class, pharmacokinetics, effect channels) and when it
is given (dose blocks and rules). One TOML table per drug, ``[drugs.<name>]``.

What a drug does is kept apart from when it is given (STYLE.md): the effect channels are read
by :mod:`simulator.treatment.effects`, the pharmacokinetic keys by :mod:`simulator.treatment.pharmacokinetics`, and
the ``doses`` / ``rules`` by :mod:`simulator.treatment.regimen`, which expands them to integer step
indices once, at load time. ``docs/regimens.md`` is the modeller's guide with examples.

Example::

    [drugs.vemurafenib]
    preset = "vemurafenib"            # class, target and pharmacokinetics from the label
    kill = { emax = 0.4, ec50_mg_per_l = 20.0 }
    antigenicity = { emax = 0.5, ec50_mg_per_l = 20.0 }

    [[drugs.vemurafenib.doses]]       # 960 mg twice daily from treatment start
    every_days = 0.5
    dose_mg = 960

Day numbers in ``doses`` count from ``simulation.treatment_start_day`` (from the moment a rule
started the drug, for a drug a rule starts), so a regimen file does not change when the base
scenario grows its tumour for longer.

Units: dose in mg, concentration in mg/L, half-life and absorption in hours, days in days.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import numpy as np

from simulator.model.penetration import Penetration
from simulator.schema import ScenarioError, param

DRUG_CLASSES = ("targeted", "anti_pd1", "anti_pdl1", "anti_ctla4")
ROUTES = ("iv_bolus", "iv_infusion", "oral")

#: Effect channels each class may carry (see :class:`Drug` for what each one does).
CHANNELS_BY_CLASS = {
    "targeted": ("kill", "arrest", "antigenicity", "infiltration", "microenvironment",
                 "t_cell_toxicity"),
    "anti_pd1": ("checkpoint_blockade", "exhaustion_relief", "priming"),
    "anti_pdl1": ("checkpoint_blockade", "exhaustion_relief", "priming"),
    "anti_ctla4": ("priming", "treg_depletion"),
}
ALL_CHANNELS = ("kill", "arrest", "antigenicity", "infiltration", "microenvironment",
                "t_cell_toxicity", "checkpoint_blockade", "exhaustion_relief", "priming",
                "treg_depletion")
#: Channels whose Emax is a fraction of something relieved or removed: Emax <= 1.
FRACTION_CHANNELS = ("arrest", "microenvironment", "checkpoint_blockade", "exhaustion_relief")
#: Channels that act only on cells sensitive to the drug's target.
PER_TARGET_CHANNELS = ("kill", "arrest", "antigenicity")

#: Times within this many days count as equal (float noise in day arithmetic only).
DAY_TOLERANCE = 1e-9


# ----------------------------------------------------------------------------- presets
#: Label pharmacokinetics of common agents, used by ``preset = "<name>"``; keys given in the
#: drug table override them. Oral volumes are apparent volumes V/F (the labels report V/F and
#: CL/F), so ``bioavailability`` is 1 for them: the bioavailable fraction is already inside
#: V/F. Absorption rates are derived from the label's median Tmax through the one-compartment
#: relation Tmax = ln(ka/ke) / (ka - ke) (no lag time): approximate. Antibody volumes are
#: steady-state volumes of a two-compartment fit, used as one compartment.
PRESETS: dict[str, dict] = {
    "vemurafenib": dict(
        # Zelboraf US label: t1/2 57 h (range 30-120 h), apparent Vd ~106 L, median Tmax
        # ~3 h; CL/F 29.3 L/day gives Css ~ 65 mg/L at 960 mg bid (label Cmax 62 ug/mL).
        drug_class="targeted", target="BRAF", route="oral", half_life_hours=57.0,
        volume_l=106.0, absorption_rate_per_hour=1.65, bioavailability=1.0),
    "dabrafenib": dict(
        # Tafinlar US label: t1/2 8 h (parent), Vd/F 70.3 L, median Tmax 2 h, absolute
        # bioavailability 95% (folded into V/F here). Autoinduction (CL/F rises ~2x over
        # two weeks) is not modelled (check before fitting exposure tightly).
        drug_class="targeted", target="BRAF", route="oral", half_life_hours=8.0,
        volume_l=70.3, absorption_rate_per_hour=1.52, bioavailability=1.0),
    "trametinib": dict(
        # Mekinist US label: effective t1/2 3.9-4.8 days (4 days taken), Tmax 1.5 h,
        # AUC_tau 370 ng h/mL at 2 mg daily -> CL/F 5.4 L/h; V/F = CL/F t1/2 / ln 2 = 750 L
        # (the label's central Vc/F is 214 L; IV microdose Vss 976-1060 L, Leonowens 2014
        # Br J Clin Pharmacol 78:524).
        drug_class="targeted", target="MEK", route="oral", half_life_hours=96.0,
        volume_l=750.0, absorption_rate_per_hour=4.26, bioavailability=1.0),
    "pembrolizumab": dict(
        # Keytruda label: terminal t1/2 22 days, Vss 6.0 L; 200 mg q3w over 30 min.
        drug_class="anti_pd1", route="iv_infusion", half_life_hours=22.0 * 24,
        volume_l=6.0, infusion_hours=0.5),
    "nivolumab": dict(
        # Opdivo label: t1/2 25 days, Vss 6.8 L; 240 mg q2w over 30 min.
        drug_class="anti_pd1", route="iv_infusion", half_life_hours=25.0 * 24,
        volume_l=6.8, infusion_hours=0.5),
    "atezolizumab": dict(
        # Tecentriq label: terminal t1/2 27 days, Vss 6.9 L; 1200 mg q3w, first infusion 60 min.
        drug_class="anti_pdl1", route="iv_infusion", half_life_hours=27.0 * 24,
        volume_l=6.9, infusion_hours=1.0),
    "ipilimumab": dict(
        # Yervoy label: terminal t1/2 15.4 days, Vss 7.21 L; 3 mg/kg q3w x 4 over 90 min.
        drug_class="anti_ctla4", route="iv_infusion", half_life_hours=15.4 * 24,
        volume_l=7.21, infusion_hours=1.5),
}


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f"; known: {', '.join(map(repr, sorted(options)))}" if options else ""


def _prefix(exc: ScenarioError, prefix: str) -> ScenarioError:
    key = f"{prefix}.{exc.key}" if exc.key else prefix
    return ScenarioError(exc.message, key, exc.source)


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class Effect:
    """One effect channel: E(C) = emax C^hill / (ec50^hill + C^hill), C in mg/L.

    The unit of ``emax`` is the channel's (see :class:`Drug`). ``emax = 0`` (the default)
    switches the channel off, as does leaving the channel out of the drug table.
    """
    emax: float = param(0.0, low=0.0, doc="maximal effect, in the channel's unit; 0 = off")
    ec50_mg_per_l: float | None = param(None, unit="mg/L", low=0.0, low_open=True,
                                        doc="concentration of half-maximal effect "
                                            "(plasma; tissue for kill and arrest of a "
                                            "penetrating drug); required when emax > 0")
    hill: float = param(1.0, low=0.0, low_open=True,
                        doc="Hill coefficient (steepness)",
                        source="standard sigmoid Emax model; 1 = hyperbolic")

    def check(self):
        if self.emax < 0:
            raise ScenarioError(f"must be >= 0, got {self.emax!r}", "emax")
        if self.emax > 0 and self.ec50_mg_per_l is None:
            raise ScenarioError("is required when emax > 0", "ec50_mg_per_l")
        if self.ec50_mg_per_l is not None and not self.ec50_mg_per_l > 0:
            raise ScenarioError(f"must be > 0, got {self.ec50_mg_per_l!r}", "ec50_mg_per_l")
        if not self.hill > 0:
            raise ScenarioError(f"must be > 0, got {self.hill!r}", "hill")

    @property
    def is_on(self) -> bool:
        return self.emax > 0


@dataclass(frozen=True)
class DoseBlock:
    """``[[drugs.<name>.doses]]``: doses of ``dose_mg`` at ``start_day``, then every
    ``every_days`` for ``count`` doses or until ``until_day`` (inclusive), or, with neither,
    to the end of the run. ``on_days`` / ``off_days`` keep only the doses that fall in the
    first ``on_days`` of each (on + off)-day cycle counted from ``start_day`` (intermittent
    dosing); ``count`` then counts doses given. Days count from the treatment start (from the
    step a rule started the drug, for a rule-started drug)."""
    dose_mg: float | None = param(None, unit="mg", low=0.0, doc="amount per dose (required)")
    start_day: float = param(0.0, unit="day", low=0.0,
                             doc="first dose, in days after the treatment start")
    every_days: float | None = param(None, unit="day", low=0.0, low_open=True,
                                     doc="interval between doses; omit for a single dose")
    count: int | None = param(None, low=1, doc="number of doses given (default: one dose "
                                               "without every_days, else up to until_day "
                                               "or the end of the run)")
    until_day: float | None = param(None, unit="day", low=0.0,
                                    doc="no dose after this day (inclusive)")
    on_days: float | None = param(None, unit="day", low=0.0, low_open=True,
                                  doc="intermittent dosing: days on at the start of each cycle")
    off_days: float | None = param(None, unit="day", low=0.0, low_open=True,
                                   doc="intermittent dosing: days off after the on days")

    def check(self):
        if self.dose_mg is None:
            raise ScenarioError("is required (the amount per dose, mg)", "dose_mg")
        if not (self.dose_mg >= 0 and math.isfinite(self.dose_mg)):
            raise ScenarioError(f"must be >= 0, got {self.dose_mg!r}", "dose_mg")
        if not self.start_day >= 0:
            raise ScenarioError(f"must be >= 0, got {self.start_day!r}", "start_day")
        if self.every_days is not None and not self.every_days > 0:
            raise ScenarioError(f"must be > 0, got {self.every_days!r}", "every_days")
        if self.count is not None and self.until_day is not None:
            raise ScenarioError("give count or until_day, not both", "until_day")
        if self.count is not None and self.count < 1:
            raise ScenarioError(f"must be >= 1, got {self.count!r}", "count")
        if self.every_days is None:
            if self.count is not None and self.count > 1:
                raise ScenarioError("more than one dose needs every_days", "count")
            if self.until_day is not None:
                raise ScenarioError("needs every_days (repeated dosing)", "until_day")
            if self.on_days is not None or self.off_days is not None:
                key = "on_days" if self.on_days is not None else "off_days"
                raise ScenarioError("on/off cycles need every_days (repeated dosing)", key)
        if self.until_day is not None and self.until_day < self.start_day - DAY_TOLERANCE:
            raise ScenarioError(f"is before start_day ({self.start_day:g})", "until_day")
        if (self.on_days is None) != (self.off_days is None):
            missing = "off_days" if self.off_days is None else "on_days"
            raise ScenarioError("on/off cycles need both on_days and off_days", missing)
        for key in ("on_days", "off_days"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ScenarioError(f"must be > 0, got {value!r}", key)

    @property
    def cycle_days(self) -> float | None:
        return None if self.on_days is None else self.on_days + self.off_days

    def dose_days(self, horizon_days: float) -> np.ndarray:
        """Days of the doses before ``horizon_days`` (relative to the block's clock origin).

        Dose k falls at ``start_day + k * every_days`` (by multiplication, never by
        accumulation); with on/off cycles it is kept when its phase in the cycle,
        ``(k * every_days) mod (on_days + off_days)``, is below ``on_days``. Comparisons allow
        ``DAY_TOLERANCE`` of float noise. Called once, at load time.
        """
        self.check()
        last = horizon_days - DAY_TOLERANCE
        if self.every_days is None:
            return np.array([self.start_day] if self.start_day < last else [], dtype=np.float64)
        if self.until_day is not None:
            last = min(last, self.until_day + DAY_TOLERANCE)
        if self.start_day > last:
            return np.empty(0, dtype=np.float64)
        n = int(math.floor((last - self.start_day) / self.every_days)) + 1
        elapsed = np.arange(n, dtype=np.float64) * self.every_days
        days = self.start_day + elapsed
        keep = days <= last
        cycle = self.cycle_days
        if cycle is not None:
            phase = elapsed - np.floor((elapsed + DAY_TOLERANCE) / cycle) * cycle
            keep &= phase < self.on_days - DAY_TOLERANCE
        days = days[keep]
        if self.count is not None:
            days = days[:self.count]
        return days


@dataclass(frozen=True)
class Rule:
    """``[[drugs.<name>.rules]]``: one rule evaluated on the simulated tumour at scans.

    Exactly one of three forms:

    - ``when = "progression"`` — start this drug when the tumour progresses (RECIST-like, see
      :mod:`simulator.treatment.regimen`); with ``of = "<drug>"`` only on progression under that drug,
      which is stopped (a switch) unless ``switch = false`` (then this drug is added).
      ``restart = true`` makes it a re-start rule: the drug starts on schedule at treatment
      start, and the rule only starts it again after a rule has stopped it.
    - ``pause_below_fraction`` / ``resume_above_fraction`` — adaptive therapy: pause dosing
      when the burden falls to this fraction of the burden at the drug's start, resume when it
      regrows to the resume fraction (Gatenby 2009 Cancer Res 69:4894; Zhang 2017 Nat Commun
      8:1816: pause at a 50% fall, resume at baseline).
    - ``stop_after_response_days`` — stop the drug once the tumour has been in response
      (burden at or below the RECIST partial-response level of the burden at the drug's
      start) for this many days.
    """
    when: str | None = param(None, choices=("progression",),
                             doc="'progression': start (or switch to) this drug at "
                                 "progression")
    of: str | None = param(None, doc="with when = 'progression': only on progression under "
                                     "this drug, which is stopped unless switch = false")
    switch: bool | None = param(None, doc="with of: true (default) stops the 'of' drug, "
                                          "false adds this drug to it")
    restart: bool | None = param(None, doc="with when = 'progression': true = re-start after "
                                           "a rule stopped the drug (the drug still starts "
                                           "at treatment start); false (default) = the "
                                           "drug waits for this rule to start it")
    pause_below_fraction: float | None = param(None, low=0.0,
                                               doc="adaptive: pause at or below this fraction "
                                                   "of the burden at the drug's start",
                                               source="Zhang 2017 Nat Commun 8:1816 (0.5)")
    resume_above_fraction: float | None = param(None, low=0.0,
                                                doc="adaptive: resume at or above this "
                                                    "fraction (default 1.0)",
                                                source="Zhang 2017 Nat Commun 8:1816 (1.0)")
    stop_after_response_days: float | None = param(None, unit="day", low=0.0,
                                                   doc="stop after this many days in "
                                                       "response (PR or CR)")

    @property
    def kind(self) -> str | None:
        """'progression', 'adaptive' or 'response' (None if the rule names no trigger)."""
        if self.when is not None:
            return self.when
        if self.pause_below_fraction is not None or self.resume_above_fraction is not None:
            return "adaptive"
        if self.stop_after_response_days is not None:
            return "response"
        return None

    @property
    def switches(self) -> bool:
        """True when the rule stops its ``of`` drug."""
        return self.of is not None and self.switch is not False

    @property
    def resume_fraction(self) -> float:
        return 1.0 if self.resume_above_fraction is None else self.resume_above_fraction

    def check(self):
        groups = {
            "progression": [k for k in ("when", "of", "switch", "restart")
                            if getattr(self, k) is not None],
            "adaptive": [k for k in ("pause_below_fraction", "resume_above_fraction")
                         if getattr(self, k) is not None],
            "response": [k for k in ("stop_after_response_days",)
                         if getattr(self, k) is not None],
        }
        used = [g for g, keys in groups.items() if keys]
        if not used:
            raise ScenarioError("a rule needs when = \"progression\", pause_below_fraction "
                                "(adaptive therapy) or stop_after_response_days")
        if len(used) > 1:
            second = groups[used[1]][0]
            raise ScenarioError(f"mixes a {used[0]} rule with a {used[1]} rule; write them "
                                "as two [[rules]] tables", second)
        kind = used[0]
        if kind == "progression" and self.when is None:
            raise ScenarioError('needs when = "progression"', groups["progression"][0])
        if self.of is not None and self.of == "":
            raise ScenarioError("must name a drug", "of")
        if self.switch is not None and self.of is None:
            raise ScenarioError("applies only with of = \"<drug>\"", "switch")
        if kind == "adaptive":
            if self.pause_below_fraction is None:
                raise ScenarioError("adaptive therapy needs pause_below_fraction",
                                    "resume_above_fraction")
            if not self.pause_below_fraction >= 0:
                raise ScenarioError(f"must be >= 0, got {self.pause_below_fraction!r}",
                                    "pause_below_fraction")
            if not self.pause_below_fraction < self.resume_fraction:
                key = ("pause_below_fraction" if self.resume_above_fraction is None
                       else "resume_above_fraction")
                raise ScenarioError(
                    f"pause threshold ({self.pause_below_fraction:g}) must be below the "
                    f"resume threshold ({self.resume_fraction:g}) (hysteresis)", key)
        if kind == "response" and not self.stop_after_response_days >= 0:
            raise ScenarioError(f"must be >= 0, got {self.stop_after_response_days!r}",
                                "stop_after_response_days")


@dataclass(frozen=True)
class Drug:
    """``[drugs.<name>]``: one drug's class, pharmacokinetics, effect channels and regimen.

    Pharmacokinetics (one compartment, :mod:`simulator.treatment.pharmacokinetics`): ``route``
    ``iv_bolus`` (whole dose into plasma at once), ``iv_infusion`` (zero-order over
    ``infusion_hours``) or ``oral`` (first-order absorption ``absorption_rate_per_hour`` of the
    fraction ``bioavailability``); first-order elimination with ``half_life_hours``;
    concentration = amount / ``volume_l``. ``preset`` fills every key left out from
    :data:`PRESETS` (label values); without a preset ``drug_class``, ``route``,
    ``half_life_hours`` and ``volume_l`` are required.

    Effect channels (each ``{emax, ec50_mg_per_l, hill}``, off when left out or emax = 0):

    targeted (act on tumour cells sensitive to ``target``; a clone resistant to the target is
    unaffected, but for the share ``resistant_response`` of kill and arrest it keeps):
    ``kill`` (emax 1/day: extra death rate), ``arrest`` (emax 0..1: fractional reduction of
    the division rate), ``antigenicity`` (emax: fractional increase of antigenicity);
    global: ``infiltration`` (fractional increase of T-cell recruitment / passage),
    ``microenvironment`` (emax 0..1: fractional decrease of suppressive-cell recruitment and
    of suppressive cytokine), ``t_cell_toxicity`` (emax 1/day: extra T-cell death,
    MEK-inhibitor-like).
    anti_pd1 / anti_pdl1: ``checkpoint_blockade`` (emax 0..1: fraction of PD-1/PD-L1
    inhibition relieved), ``exhaustion_relief`` (emax 0..1: fractional reduction of the
    exhaustion rate), ``priming`` (as anti-CTLA-4's: PD-1 blockade also expands the
    exhausted T cells it reinvigorates, Huang et al. 2017, Kamphorst et al. 2017).
    anti_ctla4: ``priming`` (fractional increase of T-cell recruitment), ``treg_depletion``
    (emax 1/day: extra suppressive-cell death).

    ``penetration`` (targeted drugs, optional): the drug reaches tumour cells through a tissue
    field fed at vessel sites, and its ``kill`` and ``arrest`` act at each cell's local
    concentration (:mod:`simulator.model.penetration`).
    """
    preset: str | None = param(None, choices=tuple(PRESETS),
                               doc="fill left-out class/target/pharmacokinetic keys from "
                                   "label values (simulator.treatment.drugs.PRESETS)")
    drug_class: str | None = param(None, choices=DRUG_CLASSES,
                                   doc="targeted, anti_pd1, anti_pdl1 or anti_ctla4")
    target: str | None = param(None, doc="targeted drugs: the resistance target they hit "
                                         "(one of tumor.resistance_targets)")
    route: str | None = param(None, choices=ROUTES, doc="iv_bolus, iv_infusion or oral")
    half_life_hours: float | None = param(None, unit="hour", low=0.0, low_open=True,
                                          doc="elimination half-life (plasma)")
    volume_l: float | None = param(None, unit="L", low=0.0, low_open=True,
                                   doc="volume of distribution (apparent V/F for oral "
                                       "presets)")
    absorption_rate_per_hour: float | None = param(None, unit="1/hour", low=0.0,
                                                   low_open=True,
                                                   doc="oral: first-order absorption rate ka")
    bioavailability: float | None = param(None, low=0.0, low_open=True, high=1.0,
                                          doc="oral: fraction of the dose absorbed "
                                              "(default 1)")
    infusion_hours: float | None = param(None, unit="hour", low=0.0, low_open=True,
                                         doc="iv_infusion: duration of each infusion")
    kill: Effect | None = param(None, doc="targeted: extra death of sensitive cells (1/day)")
    arrest: Effect | None = param(None, doc="targeted: division-rate reduction of sensitive "
                                            "cells (0..1)")
    antigenicity: Effect | None = param(None, doc="targeted: fractional antigenicity increase "
                                                  "of sensitive cells")
    resistant_response: float = param(
        0.0, low=0.0, high=1.0,
        doc="targeted: share of this drug's kill and arrest that still reaches clones "
            "resistant to its target (partial cross-resistance: a MEK inhibitor still acts "
            "in part on BRAF-inhibitor-resistant clones that reactivate MAPK signalling); "
            "0 = resistant clones unaffected")
    infiltration: Effect | None = param(None, doc="targeted: fractional increase of T-cell "
                                                  "recruitment / passage")
    microenvironment: Effect | None = param(None, doc="targeted: fractional decrease of "
                                                      "suppressive recruitment and cytokine "
                                                      "(0..1)")
    t_cell_toxicity: Effect | None = param(None, doc="targeted: extra T-cell death (1/day)")
    checkpoint_blockade: Effect | None = param(None, doc="anti-PD-(L)1: fraction of PD-1/"
                                                         "PD-L1 inhibition relieved (0..1)")
    exhaustion_relief: Effect | None = param(None, doc="anti-PD-(L)1: fractional reduction "
                                                       "of the exhaustion rate (0..1)")
    priming: Effect | None = param(None, doc="anti-CTLA-4, anti-PD-(L)1: fractional "
                                             "increase of T-cell recruitment")
    treg_depletion: Effect | None = param(None, doc="anti-CTLA-4: extra suppressive-cell "
                                                    "death (1/day)")
    penetration: Penetration | None = param(None, doc="targeted: spatial penetration from "
                                                      "vessels; kill and arrest then act at "
                                                      "each cell's tissue concentration "
                                                      "(simulator.model.penetration)")
    doses: list[DoseBlock] = param([], doc="dose blocks ([[drugs.<name>.doses]])")
    rules: list[Rule] = param([], doc="rules on the simulated tumour ([[drugs.<name>.rules]])")

    def __post_init__(self):
        # Fill the keys left out from the preset, then route-dependent defaults. The object is
        # frozen; this runs once, before anyone can see it.
        preset = PRESETS.get(self.preset, {}) if self.preset is not None else {}
        route = self.route if self.route is not None else preset.get("route")
        for key, value in preset.items():
            if getattr(self, key) is not None:
                continue
            if key in ("absorption_rate_per_hour", "bioavailability") and route != "oral":
                continue
            if key == "infusion_hours" and route != "iv_infusion":
                continue
            if key == "target" and (self.drug_class or preset.get("drug_class")) != "targeted":
                continue
            object.__setattr__(self, key, value)
        if self.route == "oral" and self.bioavailability is None:
            object.__setattr__(self, "bioavailability", 1.0)

    # ------------------------------------------------------------------ reading
    def channels(self) -> dict[str, Effect]:
        """The channels given in the table (on or off), by name."""
        return {name: getattr(self, name) for name in ALL_CHANNELS
                if getattr(self, name) is not None}

    def active_channels(self) -> dict[str, Effect]:
        """The channels with emax > 0."""
        return {name: e for name, e in self.channels().items() if e.is_on}

    @property
    def elimination_rate_per_hour(self) -> float:
        return math.log(2.0) / self.half_life_hours

    def start_rules(self) -> list[tuple[int, Rule]]:
        """Progression rules that start a waiting drug (not re-start rules)."""
        return [(i, r) for i, r in enumerate(self.rules)
                if r.kind == "progression" and not r.restart]

    @property
    def waits_for_rule(self) -> bool:
        """True when a progression rule, not the treatment start, starts this drug."""
        return bool(self.start_rules())

    # ------------------------------------------------------------------ validation
    def check(self):
        """Checks that need nothing outside this table (run by ``schema.build``)."""
        if self.preset is not None and self.preset not in PRESETS:
            raise ScenarioError(f"unknown preset {self.preset!r}{_suggest(self.preset, PRESETS)}",
                                "preset")
        for key in ("drug_class", "route", "half_life_hours", "volume_l"):
            if getattr(self, key) is None:
                raise ScenarioError("is required (or give preset = \"<drug>\")", key)
        if self.drug_class not in DRUG_CLASSES:
            raise ScenarioError(f"must be one of {', '.join(map(repr, DRUG_CLASSES))}, got "
                                f"{self.drug_class!r}", "drug_class")
        if self.route not in ROUTES:
            raise ScenarioError(f"must be one of {', '.join(map(repr, ROUTES))}, got "
                                f"{self.route!r}", "route")
        for key in ("half_life_hours", "volume_l"):
            value = getattr(self, key)
            if not (value > 0 and math.isfinite(value)):
                raise ScenarioError(f"must be > 0, got {value!r}", key)
        if self.route == "oral":
            if self.absorption_rate_per_hour is None:
                raise ScenarioError("is required for route = \"oral\"",
                                    "absorption_rate_per_hour")
            if not self.absorption_rate_per_hour > 0:
                raise ScenarioError(f"must be > 0, got {self.absorption_rate_per_hour!r}",
                                    "absorption_rate_per_hour")
            if not 0 < self.bioavailability <= 1:
                raise ScenarioError(f"must be in (0, 1], got {self.bioavailability!r}",
                                    "bioavailability")
        else:
            for key in ("absorption_rate_per_hour", "bioavailability"):
                if getattr(self, key) is not None:
                    raise ScenarioError(f"applies only to route = \"oral\" (route is "
                                        f"{self.route!r})", key)
        if self.route == "iv_infusion":
            if self.infusion_hours is None:
                raise ScenarioError("is required for route = \"iv_infusion\"", "infusion_hours")
            if not self.infusion_hours > 0:
                raise ScenarioError(f"must be > 0, got {self.infusion_hours!r}",
                                    "infusion_hours")
        elif self.infusion_hours is not None:
            raise ScenarioError(f"applies only to route = \"iv_infusion\" (route is "
                                f"{self.route!r})", "infusion_hours")
        if self.drug_class == "targeted":
            if self.target is None:
                raise ScenarioError("is required for a targeted drug (one of "
                                    "tumor.resistance_targets)", "target")
        elif self.target is not None:
            raise ScenarioError(f"only targeted drugs have a target (drug_class is "
                                f"{self.drug_class!r})", "target")
        elif self.resistant_response > 0:
            raise ScenarioError(f"only targeted drugs act on resistant clones (drug_class is "
                                f"{self.drug_class!r})", "resistant_response")
        allowed = CHANNELS_BY_CLASS[self.drug_class]
        for name, effect in self.channels().items():
            if name not in allowed:
                raise ScenarioError(f"is not an effect of a {self.drug_class} drug; its "
                                    f"channels are {', '.join(allowed)}", name)
            try:
                effect.check()
            except ScenarioError as exc:
                raise _prefix(exc, name) from None
            if name in FRACTION_CHANNELS and effect.emax > 1:
                raise ScenarioError(f"is a fraction: must be <= 1, got {effect.emax!r}",
                                    f"{name}.emax")
        if self.penetration is not None:
            if self.drug_class != "targeted":
                raise ScenarioError(f"only targeted drugs' kill and arrest act per site "
                                    f"(drug_class is {self.drug_class!r})", "penetration")
            local = [c for c in ("kill", "arrest") if c in self.active_channels()]
            if not local:
                raise ScenarioError("acts through the kill and arrest channels; this drug has "
                                    "neither (give one an emax > 0)", "penetration")
            if self.resistant_response > 0:
                # the per-site kernel knows only sensitive and resistant, not a share
                raise ScenarioError("is not supported for a drug with penetration (its kill "
                                    "and arrest act per site on sensitive cells only)",
                                    "resistant_response")
        for i, block in enumerate(self.doses):
            try:
                block.check()
            except ScenarioError as exc:
                raise _prefix(exc, f"doses[{i}]") from None
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            try:
                rule.check()
            except ScenarioError as exc:
                raise _prefix(exc, f"rules[{i}]") from None
            kind = rule.kind
            if kind in ("adaptive", "response") and kind in seen:
                raise ScenarioError(f"a drug takes one {kind} rule (rules[{seen[kind]}] is "
                                    "one already)", f"rules[{i}]")
            seen.setdefault(kind, i)
        if self.rules and not self.doses:
            raise ScenarioError("rules need at least one [[doses]] block to give", "rules")

    def check_against(self, name: str, targets, duration_days: float,
                      drug_names=None, treatment_start_day: float = 0.0):
        """Checks against the rest of the scenario; keys are ``drugs.<name>.<key>``.

        ``targets``: the tumour's resistance targets; ``drug_names``: every drug of the
        scenario (needed to check ``of``; None skips that check); dose days count from
        ``treatment_start_day``. Raises :class:`~simulator.schema.ScenarioError`.
        """
        prefix = f"drugs.{name}"
        try:
            self.check()
        except ScenarioError as exc:
            raise _prefix(exc, prefix) from None
        targets = list(targets)
        if self.target is not None and self.target not in targets:
            raise ScenarioError(f"unknown target {self.target!r}{_suggest(self.target, targets)}"
                                " (tumor.resistance_targets)", f"{prefix}.target")
        for i, block in enumerate(self.doses):
            first = treatment_start_day + block.start_day
            if first >= duration_days - DAY_TOLERANCE:
                raise ScenarioError(
                    f"the first dose (day {first:g} = treatment start "
                    f"{treatment_start_day:g} + {block.start_day:g}) is at or after the end "
                    f"of the run (simulation.duration_days = {duration_days:g})",
                    f"{prefix}.doses[{i}].start_day")
        for i, rule in enumerate(self.rules):
            if rule.of is None:
                continue
            key = f"{prefix}.rules[{i}].of"
            if rule.of == name:
                raise ScenarioError("a drug cannot switch to itself (of names this drug)", key)
            if drug_names is not None and rule.of not in drug_names:
                others = [n for n in drug_names if n != name]
                raise ScenarioError(f"unknown drug {rule.of!r}{_suggest(rule.of, others)}", key)


def check_drugs(drugs: dict[str, Drug], targets, duration_days: float,
                treatment_start_day: float = 0.0):
    """Every check of the ``[drugs]`` table, including those that need all drugs at once:
    each :meth:`Drug.check_against`, a drug that can never start (it waits for progression
    under drugs that never start), and a re-start rule on a drug no rule ever stops."""
    names = list(drugs)
    for name, drug in drugs.items():
        drug.check_against(name, targets, duration_days, names, treatment_start_day)
    # Which drugs can ever start: a fixed point from the ones the treatment start starts.
    can_start = {n for n, d in drugs.items() if not d.waits_for_rule}
    changed = True
    while changed:
        changed = False
        for n, d in drugs.items():
            if n in can_start:
                continue
            if any(r.of is None or r.of in can_start for _, r in d.start_rules()):
                can_start.add(n)
                changed = True
    for n, d in drugs.items():
        if n not in can_start:
            i, rule = d.start_rules()[0]
            raise ScenarioError(f"'{n}' can never start: it waits for progression under "
                                f"'{rule.of}', which never starts", f"drugs.{n}.rules[{i}].of")
    stoppable = {n for n, d in drugs.items() if any(r.kind == "response" for r in d.rules)}
    stoppable |= {r.of for d in drugs.values() for r in d.rules
                  if r.kind == "progression" and r.switches}
    for n, d in drugs.items():
        for i, rule in enumerate(d.rules):
            if rule.kind == "progression" and rule.restart and n not in stoppable:
                raise ScenarioError(f"restart never applies: no rule ever stops '{n}' (add "
                                    "stop_after_response_days, or a switch rule of another "
                                    "drug with of = this drug)",
                                    f"drugs.{n}.rules[{i}].restart")


__all__ = ["ALL_CHANNELS", "CHANNELS_BY_CLASS", "DRUG_CLASSES", "DoseBlock", "Drug", "Effect",
           "FRACTION_CHANNELS", "PER_TARGET_CHANNELS", "PRESETS", "ROUTES", "Rule",
           "check_drugs"]
