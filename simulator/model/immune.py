"""The immune compartment: scenario sections and the runtime :class:`ImmuneSystem`.

Sections: ``[pd_l1]`` (tumour PD-L1), ``[t_cells]`` (cytotoxic T cells) and
``[suppressive]`` (one class standing for Tregs, MDSCs and M2 macrophages: recruited cells
that suppress T-cell killing and drive exhaustion through a secreted suppressive cytokine,
``[fields.suppressive_cytokine]``).

Drug effects enter through :class:`ImmuneEffects`, a set of per-step multipliers and
additive rates, all neutral by default; the engine holds one (``Engine.immune_effects``)
and a drug phase may replace it each step before the immune phases run. No kernel needs to
change to wire a new effect channel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from kernels import immune as agents_k
from kernels import lattice, rng
from kernels import t_cells as t_cells_k
from kernels import team
from kernels.lattice import SUPPRESSIVE, T_CELL, TUMOR
from simulator.model.rates import per_step_probability_hours, step_hazard
from simulator.model.tumor import escape_bit
from simulator.schema import ScenarioError, param

KATHER = "Kather 2017 Cancer Res 77:6442"
GONG = "Gong 2017 J R Soc Interface 14:20170320"


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class PdL1:
    """PD-L1 on tumour cells: a constitutive level plus an IFN-gamma-induced part (Hill),
    relaxing at a first-order rate. Levels are relative: 1 = the maximal induced increase."""
    baseline: float = param(0.1, low=0.0,
                            doc="constitutive PD-L1 level of a tumour cell",
                            source=f"{GONG}: low constitutive expression; relative units")
    ifn_induced: float = param(1.0, low=0.0,
                               doc="PD-L1 added at saturating IFN-gamma",
                               source=f"{GONG}: IFN-gamma-induced expression")
    ifn_half_saturation_ng_per_ml: float = param(0.11, unit="ng/mL", low=0.0, low_open=True,
                                                 doc="IFN-gamma giving half the induced "
                                                     "PD-L1 (also the half-max of "
                                                     "IFN-gamma-induced chemokine)",
                                                 source=f"{GONG}: 0.11 ng/mL")
    ifn_hill_coefficient: float = param(1.26, low=0.0, low_open=True,
                                        doc="Hill coefficient of the induction",
                                        source=f"{GONG}: 1.26")
    decay_rate_per_hour: float = param(0.1, unit="1/hour", low=0.0,
                                       doc="rate at which PD-L1 relaxes to its IFN-gamma-"
                                           "driven level (half-life ln2 / rate)",
                                       source="PD-L1 protein half-life of hours (check); "
                                              "7 h here")

    def check(self):
        pass


@dataclass(frozen=True)
class TCells:
    """Cytotoxic T cells: recruited at vessels, chemotactic walk, contact killing with
    limited capacity and handling time, exhaustion, IFN-gamma secretion, expansion."""
    recruitment_rate_per_day: float = param(60.0, unit="cells/day", low=0.0,
                                            doc="T cells entering at vessels per day at "
                                                "maximal antigen release (0 = no T cells)",
                                            source=f"{KATHER}: lymphocyte influx per step; "
                                                   "calibrated to the lattice")
    basal_recruitment_fraction: float = param(0.1, low=0.0, high=1.0,
                                              doc="share of the maximal rate without any "
                                                  "antigen release")
    antigen_half_saturation_per_day: float = param(100.0, unit="cells/day", low=0.0,
                                                   low_open=True,
                                                   doc="antigenicity-weighted tumour cell "
                                                       "deaths per day (any cause: antigen "
                                                       "release) giving half the "
                                                       "antigen-driven recruitment")
    priming_delay_days: float = param(3.0, unit="day", low=0.0,
                                      doc="time constant of the antigen signal (priming "
                                          "and expansion in the lymph node); 0 = the last "
                                          "step's deaths only",
                                      source="effector T cells appear ~5-7 days after "
                                             "priming (check)")
    extravasation_chemokine_half_saturation_ng_per_ml: float = param(
        0.05, unit="ng/mL", low=0.0, low_open=True,
        doc="chemokine at a vessel giving half the maximal extravasation weight")
    extravasation_basal_weight: float = param(0.05, low=0.0,
                                              doc="extravasation weight of a vessel without "
                                                  "chemokine (weight = basal + C / (C + K))")
    speed_um_per_min: float = param(4.0, unit="um/min", low=0.0,
                                    doc="migration speed; speed * dt / spacing one-site "
                                        "moves per step on average (stochastically "
                                        "rounded per cell)",
                                    source="effector CTLs in tumours ~ 4-10 um/min "
                                           "(Boissonnas 2007 J Exp Med 204:345; check)")
    chemotaxis_bias: float = param(0.5, low=0.0, high=1.0,
                                   doc="probability that a move goes up the chemokine "
                                       "gradient; otherwise a uniformly random free "
                                       "neighbour (0 = unbiased random walk)",
                                   source=f"{KATHER}: random-walk share of lymphocyte moves "
                                          "(check)")
    kill_rate_per_day: float = param(1.0, unit="1/day", low=0.0,
                                     doc="k of the kill rate k q (1 - S) of a T cell "
                                         "attacking a tumour cell (kill within t with "
                                         "probability 1 - exp(-k q (1 - S) t))",
                                     source=f"{GONG} (form); {KATHER} (kill probability "
                                            "per contact); calibrated")
    recognition_threshold: float = param(0.0, low=0.0,
                                         doc="a T cell recognises a tumour cell - stops "
                                             "beside it and attacks it - only if the "
                                             "cell's antigenicity (with drug effects) "
                                             "exceeds this; 0 = any cell presenting "
                                             "antigen",
                                         source="CTLs arrest on antigen-presenting tumour "
                                                "cells and pass others (Boissonnas 2007 J "
                                                "Exp Med 204:345)")
    kill_capacity: int = param(5, low=1, doc="kills before a T cell is exhausted",
                               source=f"{KATHER}: 5")
    handling_hours: float = param(6.0, unit="hour", low=0.0,
                                  doc="engagement after a kill: no moves or attacks for "
                                      "this long (carried across steps in hours)",
                                  source=f"{KATHER}: engagement ~ 6 h")
    pd1_max_inhibition: float = param(0.9, low=0.0, high=1.0,
                                      doc="maximal PD-1/PD-L1 inhibition of killing (S_pd "
                                          "= max * P / (P + K))",
                                      source=f"{GONG}: suppression S from PD-1/PD-L1")
    pd1_half_saturation: float = param(0.5, low=0.0, low_open=True,
                                       doc="target PD-L1 level giving half the maximal "
                                           "inhibition (relative units)")
    exhaustion_rate_per_day_pdl1: float = param(0.15, unit="1/day", low=0.0,
                                                doc="exhaustion gained per day of contact "
                                                    "with a tumour cell of PD-L1 level 1 "
                                                    "(exhausted at 1)")
    exhaustion_rate_per_day_suppression: float = param(0.3, unit="1/day", low=0.0,
                                                       doc="exhaustion gained per day at "
                                                           "full local suppression")
    death_rate_per_day: float = param(0.1, unit="1/day", low=0.0,
                                      doc="death rate of active T cells (mean lifespan "
                                          "1 / rate)",
                                      source="effector CTL lifespan ~ 1-2 weeks (check)")
    exhausted_death_rate_per_day: float = param(0.5, unit="1/day", low=0.0,
                                                doc="death rate once exhausted")
    expansion_probability_per_kill: float = param(0.2, low=0.0, high=1.0,
                                                  doc="probability that a kill makes the T "
                                                      "cell divide into a free neighbour "
                                                      "(the daughter inherits its state; "
                                                      "each kill draws once)",
                                                  source=f"{KATHER}: lymphocyte "
                                                         "proliferation after killing")

    def check(self):
        pass


@dataclass(frozen=True)
class SuppressiveCells:
    """One class standing for Tregs, MDSCs and M2 macrophages: recruited in proportion to
    tumour burden (and towards suppressive cytokine), they secrete the suppressive cytokine
    ([fields.suppressive_cytokine]); within its diffusion length sqrt(D / decay) T cells
    kill less (S_sup = max * C / (C + K)) and exhaust faster."""
    recruitment_rate_per_day_per_1000_tumor_cells: float = param(
        10.0, unit="cells/day per 1000 tumour cells", low=0.0,
        doc="suppressive cells entering at vessels per day per 1000 tumour cells (0 = none)",
        source="MDSC / Treg accumulation scales with tumour burden (check); calibrated")
    extravasation_cytokine_half_saturation_ng_per_ml: float = param(
        0.05, unit="ng/mL", low=0.0, low_open=True,
        doc="suppressive cytokine at a vessel giving half the maximal extravasation weight")
    extravasation_basal_weight: float = param(0.05, low=0.0,
                                              doc="extravasation weight of a vessel without "
                                                  "cytokine (weight = basal + C / (C + K))")
    speed_um_per_min: float = param(2.0, unit="um/min", low=0.0,
                                    doc="migration speed (moves per step as for T cells)")
    chemotaxis_bias: float = param(0.5, low=0.0, high=1.0,
                                   doc="probability that a move goes up the chemokine "
                                       "gradient (tumour-derived CCL2 / CCL22 attract them)")
    death_rate_per_day: float = param(0.1, unit="1/day", low=0.0,
                                      doc="death rate (mean lifespan 1 / rate)")
    suppression_max: float = param(0.8, low=0.0, high=1.0,
                                   doc="maximal suppression S_sup of T-cell killing by the "
                                       "suppressive cytokine")
    cytokine_half_saturation_ng_per_ml: float = param(0.1, unit="ng/mL", low=0.0,
                                                      low_open=True,
                                                      doc="suppressive cytokine giving half "
                                                          "the maximal suppression")

    def check(self):
        pass


def immune_enabled(scenario) -> bool:
    """True when any part of the immune / tissue model is on (else: tumour-only mode)."""
    return (scenario.t_cells.recruitment_rate_per_day > 0
            or scenario.suppressive.recruitment_rate_per_day_per_1000_tumor_cells > 0
            or bool(scenario.fields.enabled_names()))


def check_scenario(scenario) -> None:
    """Cross-section rules (called from ``Scenario.check``)."""
    names = scenario.fields.enabled_names()
    if (scenario.suppressive.recruitment_rate_per_day_per_1000_tumor_cells > 0
            and "suppressive_cytokine" not in names):
        raise ScenarioError("suppressive cells act only through fields.suppressive_cytokine; "
                            "enable it or set this to 0",
                            "suppressive.recruitment_rate_per_day_per_1000_tumor_cells")
    for name in names:
        try:
            scenario.fields.settings(name).faces(scenario.simulation.ndim)
        except ScenarioError as exc:
            raise ScenarioError(exc.message, f"fields.{name}.{exc.key}") from None
    dims = scenario.simulation.dimensions
    centre = [n // 2 for n in dims]
    radius = scenario.initial.tumor_radius_sites
    for k, position in enumerate(scenario.vessels.positions):
        key = f"vessels.positions[{k}]"
        if len(position) != len(dims):
            raise ScenarioError(f"needs {len(dims)} coordinates, got {len(position)}", key)
        if any(not 0 <= x < n for x, n in zip(position, dims)):
            raise ScenarioError(f"{position} lies outside the lattice {list(dims)}", key)
        if sum((x - c) ** 2 for x, c in zip(position, centre)) <= radius ** 2:
            raise ScenarioError(f"{position} lies inside the initial tumour", key)


# ----------------------------------------------------------------------------- effects
@dataclass
class ImmuneEffects:
    """Per-step drug effects on the immune compartment; the defaults are neutral.

    t_cell_recruitment_factor      x T-cell recruitment (infiltration, priming, CTLA-4)
    antigenicity_factor            x tumour antigenicity q, a scalar or one per clone
                                   (index = resistance mask; e.g. a targeted drug raising
                                   MHC-I on the cells it hits)
    pd1_blockade                   fraction of PD-1/PD-L1 inhibition S_pd relieved (0..1)
    exhaustion_relief              fraction of exhaustion accumulation prevented (0..1)
    t_cell_death_rate_per_day      added to both T-cell death rates (drug toxicity)
    suppressive_recruitment_factor x suppressive-cell recruitment
    suppressive_cytokine_factor    x suppressive-cytokine secretion (M2 -> M1 shift)
    suppressive_death_rate_per_day added to the suppressive death rate (depletion)
    """
    t_cell_recruitment_factor: float = 1.0
    antigenicity_factor: float | np.ndarray = 1.0
    pd1_blockade: float = 0.0
    exhaustion_relief: float = 0.0
    t_cell_death_rate_per_day: float = 0.0
    suppressive_recruitment_factor: float = 1.0
    suppressive_cytokine_factor: float = 1.0
    suppressive_death_rate_per_day: float = 0.0


def immune_effects_from(effects, antigenicity_factor) -> ImmuneEffects:
    """Map the drug channels of ``simulator.treatment.effects.Effects`` onto :class:`ImmuneEffects`:
    recruitment x (1 + infiltration boost)(1 + priming boost); antigenicity per clone from
    ``clone_modifiers``; checkpoint blockade -> pd1_blockade; exhaustion relief; T-cell
    toxicity -> extra T-cell death; microenvironment -> suppressive recruitment and cytokine
    factors; Treg depletion -> extra suppressive death."""
    return ImmuneEffects(
        t_cell_recruitment_factor=(1.0 + effects.infiltration_boost)
        * (1.0 + effects.priming_boost),
        antigenicity_factor=np.asarray(antigenicity_factor, dtype=np.float64),
        pd1_blockade=effects.checkpoint_blockade,
        exhaustion_relief=effects.exhaustion_relief,
        t_cell_death_rate_per_day=effects.t_cell_toxicity_rate_per_day,
        suppressive_recruitment_factor=effects.suppressive_recruitment_factor,
        suppressive_cytokine_factor=effects.suppressive_cytokine_factor,
        suppressive_death_rate_per_day=effects.treg_depletion_rate_per_day)


# ----------------------------------------------------------------------------- agents
class Agents:
    """Agent arrays of one population: ``sites`` plus named attributes, grown by doubling.
    Entries [0, n) are live; their order is deterministic (survivors keep their order,
    newcomers are appended in site order) though no decision depends on it."""

    def __init__(self, attributes: dict, capacity: int = 256):
        self.dtypes = dict(sites=np.int64, **attributes)
        self.n = 0
        self.arrays = {name: np.zeros(capacity, dtype) for name, dtype in self.dtypes.items()}

    def __getitem__(self, name):
        return self.arrays[name]

    @property
    def capacity(self) -> int:
        return self.arrays["sites"].shape[0]

    def reserve(self, extra: int):
        need = self.n + extra
        if need <= self.capacity:
            return
        capacity = max(need, 2 * self.capacity)
        for name, old in self.arrays.items():
            new = np.zeros(capacity, old.dtype)
            new[:self.n] = old[:self.n]
            self.arrays[name] = new

    def append(self, sites, **values):
        k = len(sites)
        self.reserve(k)
        self.arrays["sites"][self.n:self.n + k] = sites
        for name in self.dtypes:
            if name != "sites":
                self.arrays[name][self.n:self.n + k] = values.get(name, 0)
        self.n += k

    def keep(self, alive: np.ndarray):
        idx = np.flatnonzero(alive[:self.n])
        for arr in self.arrays.values():
            arr[:idx.size] = arr[idx]
        self.n = int(idx.size)

    def live(self, name):
        return self.arrays[name][:self.n]


def moore_inverse_lengths(ndim: int) -> np.ndarray:
    """1 / |delta| per Moore direction, in ``kernels.lattice.moore_offsets`` order."""
    import itertools
    deltas = [d for d in itertools.product((-1, 0, 1), repeat=ndim) if any(d)]
    return np.array([1.0 / math.sqrt(sum(x * x for x in d)) for d in deltas])


def moves_per_step(speed_um_per_min: float, dt_hours: float, spacing_um: float) -> float:
    """Expected one-site moves per step (real: each agent rounds it stochastically)."""
    return speed_um_per_min * dt_hours * 60.0 / spacing_um


# ----------------------------------------------------------------------------- runtime
class ImmuneSystem:
    """Runtime state of the immune compartment and the tumour's PD-L1, with one method per
    engine phase. The engine calls, in its documented order: :meth:`tumor_response`,
    :meth:`recruit`, :meth:`t_cell_phase`, :meth:`suppressive_phase`, :meth:`state_phase`;
    the fields are solved before (``simulator.model.tissue``), using :meth:`add_secretions`.

    Per-run state (copied by ``copy.deepcopy`` when an arm is forked): ``pdl1`` (per site,
    NaN where no tumour cell is; float32 like the fields it follows, since a per-site
    float64 was the largest array of the full model, 8 of its ~43 bytes per site; the
    kernels compute in float64 and round once on storing), the agent arrays ``t`` and
    ``s``, the antigen signal and the totals.
    """

    T_ATTRIBUTES = dict(kills_left=np.int32, busy_hours=np.float64, exhaustion=np.float64,
                        flags=np.uint8, engaged_hours=np.float64, entry_hours=np.float64)
    S_ATTRIBUTES = dict(entry_hours=np.float64)

    def __init__(self, scenario, state, tissue, n_clones: int):
        self.state = state
        self.tissue = tissue
        geo = state.geometry
        self.n_clones = n_clones
        self.pdl1 = np.full(geo.n_sites, np.nan, dtype=np.float32)
        self.pdl1[state.kind == TUMOR] = scenario.pd_l1.baseline
        self.proposal = np.zeros(geo.n_sites, np.uint16)  # kernels.immune.max_tag
        self.tag = 1
        self.t = Agents(self.T_ATTRIBUTES)
        self.s = Agents(self.S_ATTRIBUTES)
        self.vessel_sites = np.flatnonzero(state.kind == lattice.VESSEL).astype(np.int64)
        self._every_clone = np.empty(0, np.uint8)  # ``seen`` for "every clone" in migrate
        self.inv_length = moore_inverse_lengths(geo.ndim)
        self.antigen_per_day = 0.0
        self.totals = dict(kills=0, necrotic=0, t_recruited=0, t_expanded=0, s_recruited=0)
        self._t_alive = self._t_kills = None  # the T-cell timelines' outcome, phase 6 -> 8
        self._necrotic_by_clone = np.zeros((geo.n_lines, n_clones), np.int64)
        self._census = (np.zeros(geo.n_lines, np.int64), np.zeros(geo.n_lines, np.int64),
                        np.zeros(geo.n_lines, np.float64))
        lines = np.arange(geo.n_lines)
        self._line_coords = np.stack(np.unravel_index(lines, geo.padded[:-1]), -1).astype(float)
        sim = scenario.simulation
        self._keys = {s: np.uint64(rng.stream_key(sim.seed, sim.replicate, s)) for s in (
            rng.STREAM_NECROSIS, rng.STREAM_T_CELL_RECRUIT, rng.STREAM_T_CELL_MOVE,
            rng.STREAM_MOVE_PRIORITY, rng.STREAM_T_CELL_TARGET, rng.STREAM_T_CELL_KILL,
            rng.STREAM_KILL_PRIORITY, rng.STREAM_T_CELL_FATE, rng.STREAM_T_CELL_EXPAND,
            rng.STREAM_SUPPRESSIVE_RECRUIT, rng.STREAM_SUPPRESSIVE_MOVE,
            rng.STREAM_SUPPRESSIVE_PRIORITY, rng.STREAM_SUPPRESSIVE_FATE, rng.STREAM_MOVE_COUNT,
            rng.STREAM_T_CELL_ENTRY_SITE, rng.STREAM_SUPPRESSIVE_ENTRY_SITE,
            rng.STREAM_EXPANSION_SITE, rng.STREAM_ENTRY_TIME)}
        self.configure(scenario)

    def configure(self, scenario):
        """Per-step numbers from the scenario (rates converted once, here)."""
        self.scenario = scenario
        sim = scenario.simulation
        dt_h, dt_d = sim.dt_hours, sim.dt_hours / 24.0
        t, s, p, hyp = scenario.t_cells, scenario.suppressive, scenario.pd_l1, scenario.hypoxia
        self.dt_days = dt_d
        self.dt_hours = dt_h
        self.t_moves = moves_per_step(t.speed_um_per_min, dt_h, sim.spacing_um)
        self.s_moves = moves_per_step(s.speed_um_per_min, dt_h, sim.spacing_um)
        self.antigen_keep = math.exp(-dt_d / t.priming_delay_days) if t.priming_delay_days > 0 \
            else 0.0
        self.pdl1_keep = 1.0 - float(per_step_probability_hours(p.decay_rate_per_hour, dt_h))
        has_oxygen = self.tissue is not None and self.tissue.has("oxygen")
        self.necrosis_hazard = float(step_hazard(hyp.necrosis_rate_per_day, dt_h)) \
            if has_oxygen else 0.0
        self.base_antigenicity = np.full(self.n_clones, scenario.tumor.antigenicity)
        escapes = (np.arange(self.n_clones) & escape_bit(scenario)) != 0
        self.base_antigenicity[escapes] *= scenario.tumor.escape_antigenicity

    def antigenicity(self, effects: ImmuneEffects) -> np.ndarray:
        """Antigenicity q per clone this step: the patient's, the escape variants' factor
        and the drugs' antigenicity channel."""
        return self.base_antigenicity * np.broadcast_to(
            np.asarray(effects.antigenicity_factor, dtype=np.float64), (self.n_clones,))

    # -------------------------------------------------------------- keys and fields
    @property
    def _kernels(self):
        """The kernel package of this lattice (``model.state.kernel_flavour``)."""
        return self.state.geometry.kernels

    def _key(self, stream, step):
        return np.uint64(rng.step_key(self._keys[stream], step))

    def _field(self, name):
        if self.tissue is None:
            return np.empty(0, np.float64)
        return self.tissue.flat(name)

    def _tags(self, count: int) -> int:
        """``count`` fresh proposal tags; clears the scratch array when they run out, and
        widens it to int32 for a call with more substeps than its dtype has tags (a speed
        times dt of thousands of sites; ``kernels.immune.max_tag``). Neither changes a move."""
        if count + 1 >= agents_k.max_tag(self.proposal.dtype):
            self.proposal = np.zeros(self.proposal.size, np.int32)
            self.tag = 1
        if self.tag + count >= agents_k.max_tag(self.proposal.dtype):
            self.proposal.fill(0)
            self.tag = 1
        first = self.tag
        self.tag += count
        return first

    def add_secretions(self, ifn_source: np.ndarray) -> bool:
        """IFN-gamma secretion by T cells, in proportion to the hours of the last step they
        spent attacking or handling, into the (already built) source array; whether a site
        it added to holds a nonzero source (``kernels.t_cells.secretion``)."""
        k = self._kernels
        if self.tissue is None or not self.tissue.has("ifn_gamma"):
            return False
        return bool(k.t_cells.secretion(self.t["sites"], self.t.n, self.t["engaged_hours"],
                                        self.t["flags"],
                                        self.tissue.t_cell_ifn_source / self.dt_hours,
                                        ifn_source))

    # -------------------------------------------------------------- phases
    def tumor_response(self, step, tissue_lo, tissue_hi, tumor_by_clone) -> int:
        """Necrosis under anoxia and PD-L1 relaxation; returns cells turned necrotic."""
        self.respond_lines(step, tissue_lo, tissue_hi, 0, self.state.geometry.n_lines)
        return self.response_done(step, tumor_by_clone)

    def respond_lines(self, step, tissue_lo, tissue_hi, line_lo, line_hi):
        """The tumour response on lines ``line_lo`` .. ``line_hi - 1`` of the lattice (the
        lines may be split between calls, and calls between threads, in any way:
        ``kernels.microenvironment.tumor_response``); :meth:`response_done` once all are."""
        k = self._kernels
        st, geo, p, hyp = self.state, self.state.geometry, self.scenario.pd_l1, \
            self.scenario.hypoxia
        k.microenvironment.tumor_response(
            st.kind, st.clone, self.pdl1, self._field("oxygen"), self._field("ifn_gamma"),
            st.lo, st.hi, tissue_lo, tissue_hi, geo.line_length, hyp.necrosis_threshold_mmhg,
            hyp.necrosis_full_mmhg, self.necrosis_hazard, self._key(rng.STREAM_NECROSIS, step),
            p.baseline, p.ifn_induced, p.ifn_half_saturation_ng_per_ml, p.ifn_hill_coefficient,
            self.pdl1_keep, self._necrotic_by_clone, self._powers_buffer(), line_lo, line_hi)

    def _powers_buffer(self) -> np.ndarray:
        """Where the tumour response leaves each tumour cell's IFN-gamma Hill power for the
        next fields phase (TissueFields.hill_powers_buffer; empty: nowhere)."""
        return (self.tissue.hill_powers_buffer() if self.tissue is not None
                else np.empty(0, np.float32))

    def response_done(self, step, tumor_by_clone) -> int:
        """After :meth:`respond_lines` has worked every line: the necrotic cells leave
        ``tumor_by_clone``; returns how many there were."""
        if self._powers_buffer().size:
            self.tissue.hill_powers_left_at(step)
        tumor_by_clone -= self._necrotic_by_clone
        n = int(self._necrotic_by_clone.sum())
        self.totals["necrotic"] += n
        return n

    def _vessel_weights(self, expected: float, field_name: str, half: float, basal: float):
        """Each vessel's extravasation weight basal + C / (C + K) of the field C at the
        vessel (``kernels.immune.extravasation_weights``), with the expected entries this
        step and the weights' total, all in the field's precision (float32; float64
        without the field): vessel p expects ``expected * weight[p] / total`` (0 where no
        cell is expected)."""
        k = self._kernels
        field = self._field(field_name)
        real = field.dtype.type
        weights = np.empty(self.vessel_sites.size, field.dtype)
        k.immune.extravasation_weights(field, self.vessel_sites, real(half), real(basal),
                                       weights)
        total = weights.sum()  # numpy's pairwise sum, as before the kernel
        if total <= 0 or expected <= 0:
            return weights, real(0.0), real(1.0)
        return weights, real(expected), total

    def recruit(self, step, effects: ImmuneEffects, tumor_cells: int):
        """T cells and suppressive cells enter beside vessels (serial, vessel order): a
        Poisson number per vessel (up to its free neighbours), each at a uniform time
        within the step."""
        if self.vessel_sites.size == 0:
            return
        t, s = self.scenario.t_cells, self.scenario.suppressive
        a = self.antigen_per_day
        drive = t.basal_recruitment_fraction + (1.0 - t.basal_recruitment_fraction) * (
            a / (a + t.antigen_half_saturation_per_day))
        # the kernels run even when no cell is expected: what a scenario uses is compiled
        # and cached by its first run (``simulator.engine.kernels_for``)
        expected = t.recruitment_rate_per_day * effects.t_cell_recruitment_factor * drive \
            * self.dt_days
        split = self._vessel_weights(expected, "chemokine",
                                     t.extravasation_chemokine_half_saturation_ng_per_ml,
                                     t.extravasation_basal_weight)
        new = self._enter(split, rng.STREAM_T_CELL_RECRUIT, rng.STREAM_T_CELL_ENTRY_SITE,
                          step, T_CELL)
        self.t.append(new, kills_left=t.kill_capacity, entry_hours=self._entry_times(new, step))
        self.totals["t_recruited"] += new.size
        expected = (s.recruitment_rate_per_day_per_1000_tumor_cells * tumor_cells / 1000.0
                    * effects.suppressive_recruitment_factor * self.dt_days)
        split = self._vessel_weights(expected, "suppressive_cytokine",
                                     s.extravasation_cytokine_half_saturation_ng_per_ml,
                                     s.extravasation_basal_weight)
        new = self._enter(split, rng.STREAM_SUPPRESSIVE_RECRUIT,
                          rng.STREAM_SUPPRESSIVE_ENTRY_SITE, step, SUPPRESSIVE)
        self.s.append(new, entry_hours=self._entry_times(new, step))
        self.totals["s_recruited"] += new.size

    def _enter(self, split, count_stream, site_stream, step, agent_kind):
        k = self._kernels
        weights, expected, total = split
        counts = np.empty(self.vessel_sites.size, np.int64)
        cap = self.state.geometry.offsets.size
        k.immune.entry_counts(weights, expected, total, self.vessel_sites,
                              self._key(count_stream, step), cap, counts)
        return self._place(counts, self.vessel_sites, site_stream, step, agent_kind)[0]

    def _entry_times(self, sites, step):
        k = self._kernels
        out = np.empty(sites.size)
        k.immune.uniform_times(sites, sites.size, self._key(rng.STREAM_ENTRY_TIME, step),
                               self.dt_hours, out)
        return out

    def _place(self, counts, parents, stream, step, agent_kind):
        k = self._kernels
        total = int(counts.sum())
        out = np.empty(total, np.int64)
        parent = np.empty(total, np.int64)
        placed = k.immune.place_beside(self.state.kind, parents, counts,
                                       self.state.geometry.offsets, self._key(stream, step),
                                       agent_kind, out, parent)
        return out[:placed], parent[:placed]

    def t_cell_phase(self, step, effects: ImmuneEffects, tumor_by_clone) -> int:
        """Migration substeps, then each T cell's timeline over the step (attacks, handling,
        exhaustion, death: ``kernels.t_cells``); returns kills this step."""
        k = self._kernels
        tc, st, geo = self.t, self.state, self.state.geometry
        self._t_alive = self._t_kills = None
        t = self.scenario.t_cells
        flags = tc.live("flags")
        # a T cell that can still kill stops next to a tumour cell; one handling a kill or
        # not yet entered starts moving once free
        stops = ((flags & t_cells_k.EXHAUSTED) == 0) & (tc.live("kills_left") > 0)
        free_from = np.maximum(tc.live("busy_hours"), tc.live("entry_hours"))
        antigenicity = self.antigenicity(effects)
        seen = (antigenicity > t.recognition_threshold).astype(np.uint8)
        # every clone seen: migration skips the per-neighbour clone lookup
        arrived, hours_per_move = self._migrate(tc, stops, free_from, self.t_moves, TUMOR,
                                                seen if not seen.all() else self._every_clone,
                                                t.chemotaxis_bias, rng.STREAM_T_CELL_MOVE,
                                                rng.STREAM_MOVE_PRIORITY, step, T_CELL)
        ready = np.minimum(arrived * hours_per_move, self.dt_hours)
        params = self._t_cell_params(effects)
        alive = np.empty(tc.n, np.uint8)
        kills_now = np.empty(tc.n, np.int32)
        killed = np.empty(int(tc.live("kills_left").clip(min=0).sum()), np.int64)
        n_killed = k.t_cells.attack(
            st.kind, st.clone, self.pdl1, self._field("suppressive_cytokine"), tc["sites"], tc.n,
            tc["kills_left"], tc["busy_hours"], tc["exhaustion"], tc["flags"],
            tc["engaged_hours"], tc["entry_hours"], ready, geo.offsets,
            np.ascontiguousarray(antigenicity), seen, params,
            self._key(rng.STREAM_T_CELL_FATE, step), self._key(rng.STREAM_T_CELL_TARGET, step),
            self._key(rng.STREAM_T_CELL_KILL, step), self._key(rng.STREAM_KILL_PRIORITY, step),
            alive, kills_now, killed)
        killed = killed[:n_killed]
        if killed.size:
            np.subtract.at(tumor_by_clone, (killed // geo.line_length, st.clone[killed]), 1)
        self.totals["kills"] += int(killed.size)
        self._t_alive, self._t_kills = alive, kills_now
        return int(killed.size)

    def _t_cell_params(self, effects: ImmuneEffects) -> np.ndarray:
        """The ``kernels.t_cells`` parameter array: rates per hour, times in hours."""
        t, s, k = self.scenario.t_cells, self.scenario.suppressive, t_cells_k
        extra = effects.t_cell_death_rate_per_day
        params = np.empty(k.N_PARAMS)
        params[k.P_DT] = self.dt_hours
        params[k.P_KILL_RATE] = t.kill_rate_per_day / 24.0
        params[k.P_HANDLING] = t.handling_hours
        params[k.P_EXHAUSTION_PDL1] = t.exhaustion_rate_per_day_pdl1 / 24.0
        params[k.P_EXHAUSTION_SUPPRESSION] = t.exhaustion_rate_per_day_suppression / 24.0
        params[k.P_DEATH] = (t.death_rate_per_day + extra) / 24.0
        params[k.P_DEATH_EXHAUSTED] = (t.exhausted_death_rate_per_day + extra) / 24.0
        params[k.P_PD1_MAX] = t.pd1_max_inhibition
        params[k.P_PD1_HALF] = t.pd1_half_saturation
        params[k.P_PD1_BLOCKADE] = effects.pd1_blockade
        params[k.P_SUPPRESSION_MAX] = s.suppression_max
        params[k.P_SUPPRESSION_HALF] = s.cytokine_half_saturation_ng_per_ml
        params[k.P_EXHAUSTION_RELIEF] = effects.exhaustion_relief
        return params

    def suppressive_phase(self, step, effects: ImmuneEffects):
        """Suppressive cells migrate (their suppression acts through the cytokine field)."""
        sc = self.s
        self._migrate(sc, np.zeros(sc.n, np.bool_), sc.live("entry_hours"), self.s_moves, -1,
                      self._every_clone, self.scenario.suppressive.chemotaxis_bias,
                      rng.STREAM_SUPPRESSIVE_MOVE, rng.STREAM_SUPPRESSIVE_PRIORITY, step,
                      SUPPRESSIVE)

    def _migrate(self, agents, stops, free_from_hours, moves, stop_kind, seen, bias,
                 move_stream, priority_stream, step, agent_kind):
        """Move substeps of one population (``kernels.immune.migrate``); ``seen``: the
        clones whose ``stop_kind`` cells stop a mover (empty: all). ``moves`` (real)
        moves per step, stochastically rounded per agent; a move takes dt / moves hours,
        and an agent busy until ``free_from_hours`` starts with the first substep after
        that. Returns (the substep after each agent's last move, hours per move)."""
        k = self._kernels
        st, geo = self.state, self.state.geometry
        n = agents.n
        arrived = np.zeros(n, np.int64)
        hours_per_move = self.dt_hours / moves if moves > 0 else 0.0
        last = np.empty(n, np.int64)
        k.immune.move_counts(agents["sites"], n, moves, self._key(rng.STREAM_MOVE_COUNT, step),
                             last)
        first = (np.ceil(np.asarray(free_from_hours) / hours_per_move - 1e-9).astype(np.int64)
                 if moves > 0 else np.zeros(n, np.int64))
        tag = self._tags(int(last.max(initial=0)))
        k.immune.migrate(st.kind, st.clone, seen, self._field("chemokine"), self.proposal,
                         agents["sites"], n, np.ascontiguousarray(stops, dtype=np.bool_),
                         first, last, stop_kind,
                         geo.offsets, self.inv_length, bias, tag, self._key(move_stream, step),
                         self._key(priority_stream, step), agent_kind, arrived,
                         agents_k.chunks_for_agents(first, last, numba.get_num_threads()),
                         team.team_size())
        return arrived, hours_per_move

    def state_phase(self, step, effects: ImmuneEffects, tumor_deaths: int, kills: int,
                    necrotic: int, tumor_by_clone: np.ndarray):
        """Exhaustion, handling, deaths and expansion of T cells; deaths of suppressive
        cells; the antigen signal for the next recruitment: dying tumour cells weighted by
        the tumour's mean antigenicity (more antigen presented primes more T cells, so the
        targeted drugs' antigenicity channel and patients' antigenicity act on priming as
        well as on recognition)."""
        k = self._kernels
        t, s = self.scenario.t_cells, self.scenario.suppressive
        tc, st = self.t, self.state
        if self._t_alive is not None:
            alive, kills_now = self._t_alive, self._t_kills
            k.immune.clear_dead(st.kind, tc["sites"], tc.n, alive)
            # expansion: each kill divides the T cell with the given probability (at the
            # kill, so a cell that died later in the step still leaves its daughters)
            sites = tc.live("sites")
            parents = np.flatnonzero(kills_now > 0)
            parents = parents[np.argsort(sites[parents], kind="stable")]
            counts = np.empty(parents.size, np.int64)
            k.immune.bernoulli_counts(kills_now[parents].astype(np.int64),
                                      t.expansion_probability_per_kill, sites[parents],
                                      self._key(rng.STREAM_T_CELL_EXPAND, step), counts)
            new, which = self._place(counts, sites[parents], rng.STREAM_EXPANSION_SITE, step,
                                     T_CELL)
            src = parents[which]
            daughters = (new, {name: tc.live(name)[src].copy() for name in self.T_ATTRIBUTES})
            tc.keep(alive)
            if daughters[0].size:
                values = daughters[1]
                values["flags"] = values["flags"] & t_cells_k.EXHAUSTED
                tc.append(daughters[0], **values)
                self.totals["t_expanded"] += daughters[0].size
            self._t_alive = self._t_kills = None
        alive = np.empty(self.s.n, np.uint8)
        k.immune.agent_deaths(st.kind, self.s["sites"], self.s.n,
                              (s.death_rate_per_day + effects.suppressive_death_rate_per_day)
                              / 24.0, self.dt_hours, self.s["entry_hours"],
                              self._key(rng.STREAM_SUPPRESSIVE_FATE, step), alive)
        self.s.keep(alive)
        self.s.live("entry_hours")[:] = 0.0
        counts = tumor_by_clone.sum(axis=0)
        antigenicity = self.antigenicity(effects)
        total = counts.sum()
        mean_antigenicity = (float(counts @ antigenicity) / total if total
                             else float(antigenicity.mean()))
        now = (tumor_deaths + kills + necrotic) * mean_antigenicity / self.dt_days
        self.antigen_per_day = now + (self.antigen_per_day - now) * self.antigen_keep

    # -------------------------------------------------------------- observation
    def observe(self, spacing_um: float) -> dict:
        """Immune series for the record (see ``simulator.output.runfile``)."""
        k = self._kernels
        st, geo = self.state, self.state.geometry
        count, col_sum, pdl1_sum = self._census
        k.microenvironment.census(st.kind, self.pdl1, st.lo, st.hi, geo.line_length, count,
                                  col_sum, pdl1_sum)
        n = int(count.sum())
        flags = self.t.live("flags")
        out = dict(t_cells_exhausted=int(np.count_nonzero(flags & t_cells_k.EXHAUSTED)),
                   kills_total=self.totals["kills"],
                   mean_pdl1=float(pdl1_sum.sum() / n) if n else math.nan,
                   t_cell_density_core=math.nan, t_cell_density_margin=math.nan)
        if n == 0:
            return out
        centre = np.append((count[:, None] * self._line_coords).sum(0), col_sum.sum()) / n
        ndim = geo.ndim
        radius = math.sqrt(n / math.pi) if ndim == 2 else (3.0 * n / (4.0 * math.pi)) ** (1 / 3)
        width = self.scenario.output.margin_width_um / spacing_um
        # squared distances summed axis by axis, with no array of stacked coordinates
        # (0.38 -> 0.1 ms for 14k T cells); the additions and their order are those of a
        # sum over stacked coordinates, so the record is the same to the bit
        sites = self.t.live("sites")
        square = np.zeros(sites.shape[0])
        for axis, coord in enumerate(np.unravel_index(sites, geo.padded)):
            square += (coord - centre[axis]) ** 2
        distance = np.sqrt(square)
        volume = (lambda r: math.pi * r * r) if ndim == 2 else \
            (lambda r: 4.0 / 3.0 * math.pi * r ** 3)
        inner, outer = max(radius - width, 0.0), radius + width
        per_mm = (1000.0 / spacing_um) ** ndim  # sites per mm^ndim
        core_sites = volume(inner)
        margin_sites = volume(outer) - core_sites
        if core_sites > 0:
            out["t_cell_density_core"] = (np.count_nonzero(distance < inner) / core_sites
                                          * per_mm)
        out["t_cell_density_margin"] = (np.count_nonzero((distance >= inner)
                                                         & (distance <= outer))
                                        / margin_sites * per_mm)
        return out


def empty_observation() -> dict:
    """The immune series in tumour-only mode."""
    return dict(t_cells_exhausted=0, kills_total=0, mean_pdl1=math.nan,
                t_cell_density_core=math.nan, t_cell_density_margin=math.nan)

