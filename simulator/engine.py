"""The time loop. This module is the only place that knows the order of phases in a step.

A step of length dt runs these phases, in this order (``Engine.phase_names``):

1. ``doses``  — the regimen gives the doses due at the start of the step (its rules look at
   the tumour as the previous step left it); pharmacokinetics advance over the step; the
   drugs' effect channels are evaluated at each drug's mean concentration over the step
   and turned into per-clone death and division probabilities (``simulator.treatment.course``).
2. ``fields`` — uptake and secretion are built from the lattice as the previous step left
   it (and the previous fields), then oxygen, chemokine, IFN-gamma and the suppressive
   cytokine are solved to their quasi-steady state; every later phase of the step reads
   these fields (``simulator.model.tissue``, ``kernels.microenvironment``, ``kernels.multigrid``).
   At 2+ threads IFN-gamma and the suppressive cytokine, which ``tumor`` does not read,
   may be solved on a helper thread while ``tumor`` runs, from the same lattice and with
   the same result (``simulator.model.alongside``). On 2D lattices the fields solved
   together may run in two lanes at once (``TissueFields.LANES``), and when the two fields
   are solved beside ``tumor`` in two lanes, ``tumor_response`` runs at the end of
   ``tumor``, beside the suppressive cytokine's solve. On large lattices both are chosen
   by timing, step by step (``Engine._field_ways``); small ones always use the lanes and
   never solve beside.
   ``drug_penetration`` (only when a drug has ``penetration``) — the tissue concentration
   of each penetrating drug is solved from this step's plasma level, and every tumour cell
   gets its own death and division probabilities from its local concentration
   (``simulator.model.penetration``, ``kernels.drug_response``).
3. ``tumor``  — tumour cells die, divide into free neighbours at a rate scaled by oxygen
   (with resistance mutation), and dead / necrotic debris clears: the continuous-time
   process simulated exactly over the step, events in time order (``kernels.tumor``).
4. ``tumor_response`` — anoxic tumour cells turn necrotic; every tumour cell's PD-L1 relaxes
   towards its IFN-gamma-driven level (newborn cells start there).
5. ``recruitment`` — T cells (rate rising with antigen release) and suppressive cells
   (rate proportional to burden) enter beside vessels.
6. ``t_cells`` — T cells migrate (several substeps, up the chemokine gradient, stopping
   next to a tumour cell), then each runs its continuous-time timeline over the step:
   attacks, kills, handling, exhaustion, the time of death (``kernels.t_cells``).
7. ``suppressive_cells`` — suppressive cells migrate; they suppress through the cytokine
   they secrete, which the next ``fields`` phase spreads.
8. ``immune_state`` — T cells that died within the step leave the lattice; expansion
   after kills; suppressive-cell death; the antigen signal for the next recruitment.
9. ``record`` — the end-of-step state is counted and handed to the recorder.

Phases 2 and 4-8 exist only when the immune / tissue model is on (any T-cell or
suppressive recruitment, or any field enabled); otherwise the engine runs the tumour-only
model, ``doses``, ``tumor``, ``record``, at its original speed.

Step s covers simulated time [s dt, (s + 1) dt); the record made at its end is stamped
(s + 1) dt. Record 0 is the initial state at t = 0.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numba
import numpy as np

from kernels import jit as kernel_jit
from kernels import lattice, rng
from simulator.analysis.follow_up import watch_for
from simulator.model.alongside import (Choice, SharedLines, alongside,
                                       possible as alongside_possible, worthwhile)
from simulator.model.penetration import FIELD_PREFIX as PENETRATION_FIELD_PREFIX
from simulator.model.penetration import DrugPenetration, penetrating
from simulator.model.rates import step_hazard
from simulator.scenario import Scenario
from simulator.schema import ScenarioError
from simulator.model.state import (LatticeState, ensure_escape_cells, ensure_resistant_cells,
                                    kernel_flavour, seed_tumor)
from simulator.model.tumor import clone_count, escape_bit
from simulator.treatment.effects import clone_modifiers
from simulator.model.immune import (ImmuneEffects, ImmuneSystem, empty_observation, immune_effects_from,
                              immune_enabled)
from simulator.model.tissue import TissueFields, fields_enabled, place_vessels, reuses_hill_powers
from simulator.treatment.course import Treatment
from simulator.treatment.regimen import day_to_step

# The kernels each part of the model calls from Python (their callees compile with them),
# in a run's flavour of the package (``kernel_flavour``): what a scenario announces before
# its first, compiling, run (``kernels_for``).
def _kernel_groups(k) -> dict:
    return dict(
        tumor=(k.tumor.schedule, k.tumor.run_events, k.lattice.tissue_extents,
               k.lattice.count_kinds),
        fields=(k.multigrid.fine_tables,),
        immune=(k.microenvironment.tumor_response, k.microenvironment.census,
                k.immune.migrate, k.immune.move_counts, k.immune.place_beside,
                k.immune.bernoulli_counts, k.immune.clear_dead, k.immune.agent_deaths,
                k.t_cells.attack),
        entry=(k.immune.extravasation_weights, k.immune.entry_counts,  # with vessels
               k.immune.uniform_times),
        secretion=(k.t_cells.secretion,),                              # with fields.ifn_gamma
        penetration=(k.multigrid.fine_tables,),  # local hazards: in tumor.schedule
        solver={ndim: k.multigrid.solver_kernels(ndim) for ndim in (2, 3)},
        coarse_field={ndim: k.multigrid.coarse_field_kernels(ndim) for ndim in (2, 3)},
        induced=(k.microenvironment.induced_secretion,),  # chemokine induced by IFN-gamma
        # the same from the Hill powers the tumour response leaves
        # (TissueFields.hill_powers_buffer)
        reused_powers=(k.microenvironment.induced_secretion_from_powers,))


def kernels_for(scenario: Scenario) -> tuple:
    """The kernels a run of ``scenario`` calls, in its lattice's flavour of the package
    (``kernel_flavour``): the tumour's always, the fields', immune compartment's and drug
    penetration's when the scenario has them."""
    groups = _kernel_groups(kernel_flavour(scenario.simulation.dimensions))
    ndim = len(scenario.simulation.dimensions)
    found = list(groups["tumor"])
    solver = groups["solver"][ndim]
    if fields_enabled(scenario):
        found += groups["fields"] + solver
        names = scenario.fields.enabled_names()
        if any(scenario.fields.settings(name).grid_coarsening > 1 for name in names):
            found += groups["coarse_field"][ndim]
        if ("chemokine" in names and "ifn_gamma" in names
                and scenario.fields.chemokine.tumor_ifn_secretion_per_min > 0):
            found += groups["induced"]
    if immune_enabled(scenario):
        found += groups["immune"]
        if scenario.vessels.density > 0 or scenario.vessels.positions:
            found += groups["entry"]
        if "ifn_gamma" in scenario.fields.enabled_names():
            found += groups["secretion"]
        if reuses_hill_powers(scenario):
            found += groups["reused_powers"]
    if penetrating(scenario.drugs):
        found += groups["penetration"] + solver
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class TumorRates:
    """Per-clone hazards per step (rate x dt; index = resistance mask) of the tumour
    kernel's continuous-time process, and the per-division mutation probability."""
    death_hazard: np.ndarray
    division_hazard: np.ndarray
    mutation_probability: float
    clear_dead_hazard: float
    clear_necrotic_hazard: float

    @property
    def p_die(self) -> np.ndarray:
        """P(a cell dies within one step) = 1 - exp(-hazard), per clone."""
        return -np.expm1(-self.death_hazard)

    @property
    def p_divide(self) -> np.ndarray:
        """P(at least one division attempt within one step), per clone."""
        return -np.expm1(-self.division_hazard)

    @property
    def p_clear_dead(self) -> float:
        return float(-np.expm1(-self.clear_dead_hazard))


def clone_resistance_counts(n_targets: int, n_clones: int | None = None) -> np.ndarray:
    """Number of targets each clone (bit mask) resists; bits above the targets (the escape
    bit) are not resistance."""
    masks = np.arange(n_clones or 1 << n_targets) & ((1 << n_targets) - 1)
    return np.array([bin(m).count("1") for m in masks], dtype=np.int64)


def tumor_rates(scenario: Scenario, extra_death_per_day=0.0, division_factor=1.0) -> TumorRates:
    """Per-clone hazards per step: the fitness cost compounds per resistance held."""
    t, dt = scenario.tumor, scenario.simulation.dt_hours
    n_resisted = clone_resistance_counts(len(t.resistance_targets), clone_count(scenario))
    division = t.division_rate_per_day * (1.0 - t.resistance_fitness_cost) ** n_resisted
    return TumorRates(
        death_hazard=step_hazard(t.death_rate_per_day + extra_death_per_day, dt)
        * np.ones(len(n_resisted)),
        division_hazard=step_hazard(division * division_factor, dt),
        mutation_probability=t.mutation_rate_per_division,
        clear_dead_hazard=float(step_hazard(t.dead_clearance_rate_per_day, dt)),
        clear_necrotic_hazard=float(step_hazard(
            scenario.hypoxia.necrotic_clearance_rate_per_day, dt)),
    )


class Engine:
    """Advances one run's lattice state step by step."""

    # at 2+ threads, solve the fields the tumour phase does not read beside it
    # (simulator.model.alongside): None when it pays (on lattices of MIN_SITES or more,
    # timed step by step, together with TissueFields.LANES), True always, False never; the
    # output is the same
    FIELDS_ALONGSIDE = None
    # the timed choice of (beside, lanes) on large lattices (alongside.Choice; not saved)
    _alongside_choice = None
    # within a step: the way its fields phase was asked to run ((beside, lanes), or None
    # when nothing was chosen), whether it left fields for the tumour phase, and whether
    # the tumour phase ran the tumour response too (not checkpointed)
    _step_way = None
    _step_deferred = False
    _response_alongside = False

    def __init__(self, scenario: Scenario, state: LatticeState | None = None):
        self.scenario = scenario
        sim = scenario.simulation
        self.n_targets = len(scenario.tumor.resistance_targets)
        self.n_clones = clone_count(scenario)
        # clones resistant to at least one target (the escape bit is not resistance)
        self._resistant_clones = clone_resistance_counts(self.n_targets, self.n_clones) > 0
        fresh = state is None
        if fresh:
            state = LatticeState.empty(sim.dimensions)
            seed_tumor(state, scenario.initial.tumor_radius_sites,
                       scenario.initial.resistant_fraction, self.n_targets,
                       sim.seed, sim.replicate, scenario.initial.escape_fraction,
                       escape_bit(scenario))
            place_vessels(state, scenario.vessels, sim.seed, sim.replicate)
        self.state = state
        self.rates = tumor_rates(scenario)
        self.treatment = Treatment(scenario)
        self.effects = self.treatment.none
        self._keys = {s: np.uint64(rng.stream_key(sim.seed, sim.replicate, s)) for s in (
            rng.STREAM_TUMOR_EVENT, rng.STREAM_TUMOR_ATTEMPT, rng.STREAM_DIVISION_TARGET,
            rng.STREAM_MUTATION, rng.STREAM_CLEARANCE)}
        geo = state.geometry
        n_lines = geo.n_lines
        self._tissue_lo = np.empty(n_lines, np.int64)
        self._tissue_hi = np.empty(n_lines, np.int64)
        self._events_per_line = np.zeros(n_lines, np.int64)
        self._births = np.zeros(geo.n_sites, np.uint8)  # tumour kernel scratch
        # births, deaths, mutations, mutable divisions of the step's tumour phase, and
        # whether some site's births overflowed the scratch count
        self._tumor_events = np.zeros(5, np.int64)
        self._tumor_by_clone = np.zeros((n_lines, self.n_clones), np.int64)
        self._kind_counts = np.zeros((n_lines, len(lattice.KIND_NAMES)), np.int64)
        # placeholders of the fields' own dtypes, so a scenario without oxygen or drug
        # penetration calls the tumour kernels with the types every other one does (one
        # compilation for the whole library, not one per combination)
        self._no_oxygen = np.empty(0, np.float32)
        self._no_drug_concentration = np.empty((0, 0), np.float32)
        self._no_drug_field = np.empty((0, 0), np.float64)
        self._count_tumor_by_clone()
        if fresh:
            self._apply_baseline_floors()
        self._edge_sites = geo.edge_sites()
        # the immune compartment and tissue fields (None in tumour-only mode)
        self.immune_effects = ImmuneEffects()
        self.tissue = TissueFields(scenario, state) if fields_enabled(scenario) else None
        self.immune = (ImmuneSystem(scenario, state, self.tissue, self.n_clones)
                       if immune_enabled(scenario) else None)
        self._step_events = dict(necrotic=0, kills=0)
        self._set_penetration(scenario)
        if self.tissue is not None:
            self._fields_phase()  # fields at t = 0 for the first record and snapshot

    def _set_penetration(self, scenario: Scenario):
        """Drug tissue fields for the scenario's penetrating drugs (none: plasma acts
        everywhere), and the phase list that goes with them."""
        self.penetration = (DrugPenetration(scenario, self.state)
                            if penetrating(scenario.drugs) else None)
        phases = [("doses", self._doses_phase)]
        if self.immune is not None:
            phases.append(("fields", self._fields_phase))
        if self.penetration is not None:
            phases.append(("drug_penetration", self._penetration_phase))
        phases.append(("tumor", self._tumor_phase))
        if self.immune is not None:
            phases += [("tumor_response", self._tumor_response_phase),
                       ("recruitment", self._recruitment_phase),
                       ("t_cells", self._t_cell_phase),
                       ("suppressive_cells", self._suppressive_phase),
                       ("immune_state", self._immune_state_phase)]
        self.phases = phases

    @property
    def phase_names(self) -> list[str]:
        return [name for name, _ in self.phases] + ["record"]

    @property
    def dt_days(self) -> float:
        return self.scenario.simulation.dt_hours / 24.0

    @property
    def time_days(self) -> float:
        return self.state.step * self.dt_days

    def _key(self, stream: int) -> np.uint64:
        return np.uint64(rng.step_key(self._keys[stream], self.state.step))

    # ------------------------------------------------------------------ phases
    def _doses_phase(self):
        if not self.treatment.active:
            return
        by_clone = self._tumor_by_clone.sum(axis=0)
        if not self.treatment.step(self.state.step, int(by_clone.sum()),
                                   int(by_clone[self._resistant_clones].sum())):
            return
        self.effects = self.treatment.effects
        extra_death, division_factor, antigenicity = clone_modifiers(self.effects,
                                                                     self.n_targets,
                                                                     self.n_clones)
        self.rates = tumor_rates(self.scenario, extra_death, division_factor)
        self.immune_effects = immune_effects_from(self.effects, antigenicity)

    def _tumor_phase(self):
        # the fields the fields phase left (at 2+ threads) are solved beside the tumour's
        # kernels: its event loop runs on one core (simulator.model.alongside); the tumour
        # response follows them on this core once IFN-gamma is solved, where it may
        # (TissueFields.response_may_overlap), while the helper solves the last field and
        # then takes its share of the response's lines
        tissue = self.tissue
        deferred = tissue is not None and tissue.deferred
        self._response_alongside = deferred and tissue.response_may_overlap
        shared = None
        work = tissue.solve_deferred if deferred else None
        if self._response_alongside:
            step, lo, hi = self.state.step, self._tissue_lo, self._tissue_hi
            shared = SharedLines(self.state.geometry.n_lines,
                                 lambda first, last: self.immune.respond_lines(
                                     step, lo, hi, first, last))

            def solve_then_respond():
                tissue.solve_deferred()
                shared.help()
            work = solve_then_respond
        with alongside(work):
            try:
                self._tumor_kernels()
                if shared is not None:
                    tissue.wait_for_ifn_gamma()
                    shared.run()
            except BaseException:
                if shared is not None:  # the helper must not wait for lines (Ctrl-C too)
                    shared.cancel()
                raise
        if shared is not None:
            self._step_events["necrotic"] = self.immune.response_done(
                self.state.step, self._tumor_by_clone)
        self._step_deferred = deferred

    def _tumor_kernels(self):
        s, geo, r = self.state, self.state.geometry, self.rates
        oxygen = (self.tissue.flat("oxygen") if self.tissue is not None
                  and self.tissue.has("oxygen") else self._no_oxygen)
        hypoxia = self.scenario.hypoxia
        threshold = hypoxia.proliferation_threshold_mmhg
        span = hypoxia.proliferation_saturation_mmhg - threshold
        pen = self.penetration
        local = pen is not None and pen.active
        drug_field = pen.concentration if local else self._no_drug_concentration
        target_bit = pen.target_bit if local else np.empty(0, np.int64)
        kill = pen.kill if local else self._no_drug_field
        arrest = pen.arrest if local else self._no_drug_field
        keys = [self._key(k) for k in (rng.STREAM_TUMOR_EVENT, rng.STREAM_TUMOR_ATTEMPT,
                                       rng.STREAM_CLEARANCE)]
        tumor = geo.kernels.tumor
        tumor.schedule(s.kind, s.clone, s.proposal, s.lo, s.hi, geo.line_length,
                       geo.line_offsets,
                       r.death_hazard, r.p_die, r.division_hazard, oxygen, threshold, span,
                       drug_field, target_bit, kill, arrest, self.dt_days, r.clear_dead_hazard,
                       r.clear_necrotic_hazard, *keys, self._tissue_lo, self._tissue_hi,
                       self._events_per_line, self._tumor_by_clone)
        tumor.run_events(s.kind, s.clone, s.proposal, self._births, s.lo, s.hi,
                         self._tissue_lo, self._tissue_hi, geo.line_length, geo.offsets,
                         self._events_per_line, r.death_hazard, r.division_hazard, oxygen,
                         threshold, span, drug_field, target_bit, kill, arrest, self.dt_days,
                         r.clear_dead_hazard, r.clear_necrotic_hazard, r.mutation_probability,
                         self.n_targets, *keys, self._key(rng.STREAM_DIVISION_TARGET),
                         self._key(rng.STREAM_MUTATION), self._tumor_events,
                         self._tumor_by_clone)
        births, deaths, mutations, mutable, overflow = (int(n) for n in self._tumor_events)
        if overflow:
            raise ScenarioError(
                f"a lattice site saw more than {tumor.MAX_BIRTHS} tumour births within one "
                "step: the tumour's turnover rates times the step are far beyond any tissue; "
                "lower simulation.dt_hours or the tumour rates", "simulation.dt_hours")
        t = s.totals
        t["divisions"] += births
        t["deaths"] += deaths
        t["mutations"] += mutations
        t["mutable_divisions"] += mutable

    def _fields_phase(self):
        if self.tissue is None:
            return
        s = self.state
        beside, lanes = self._step_way = self._field_way()
        self.tissue.solve(s, self.immune_effects.suppressive_cytokine_factor,
                          self.immune.add_secretions if self.immune is not None else None,
                          defer=beside, lanes=lanes)

    def _field_way(self) -> tuple[bool, bool]:
        """(whether this step's fields phase should leave fields for the tumour phase,
        whether it may solve in two lanes): timed (``_field_ways``) where there is a choice."""
        ways = self._field_ways()
        if len(ways) == 1:
            return ways[0]
        if self._alongside_choice is None or self._alongside_choice.ways != ways:
            self._alongside_choice = Choice(ways)
        return self._alongside_choice.use()

    def _field_ways(self) -> tuple:
        """The (beside, lanes) ways this step may take. On large lattices at 2+ threads
        both are timed: solving beside pays only when the tumour's event loop is long, and
        the two lanes hold a second workspace, which on a host whose last-level cache
        holds less than the step's arrays cost the 1000 x 1000 benchmark step ~1.8 ms at
        2 threads (benchmarks/README.md). Small lattices never solve beside and always use
        the lanes (their arrays stay in the cache; each solve scales worse at 2 threads)."""
        fixed, lanes_fixed = self.FIELDS_ALONGSIDE, self.tissue.LANES
        large = worthwhile(self.state.kind.size)
        if fixed is not None:
            beside = (fixed and alongside_possible(),)
        else:
            beside = (True, False) if large else (False,)
        if not self.tissue.lanes_possible():
            lanes = (False,)    # 3D, or one thread: no second lane either way
        elif lanes_fixed is not None:
            lanes = (lanes_fixed,)
        else:
            lanes = (True, False) if large else (True,)
        return tuple((b, lane) for b in beside for lane in lanes)

    def _penetration_phase(self):
        """Tissue concentration of each penetrating drug; the tumour kernel reads it at each
        cell's site (no drug in any field: the clones' systemic hazards hold)."""
        self.penetration.solve(self.state.kind, self.treatment.mean_concentration)

    def _tumor_response_phase(self):
        if not self._response_alongside:
            self._tumor_response()
        started = self.tissue.solve_started if self.tissue is not None else None
        if self._alongside_choice is not None and started is not None \
                and self._step_way is not None:
            # recorded as the way taken: a solve from scratch (as after a fork that changes
            # a field's grid) leaves no fields even when asked, and the comparison leaves
            # such a step out
            self._alongside_choice.record((self._step_deferred, self._step_way[1]),
                                          time.perf_counter() - started)

    def _tumor_response(self):
        self._step_events["necrotic"] = self.immune.tumor_response(
            self.state.step, self._tissue_lo, self._tissue_hi, self._tumor_by_clone)

    def _recruitment_phase(self):
        self.immune.recruit(self.state.step, self.immune_effects,
                            int(self._tumor_by_clone.sum()))

    def _t_cell_phase(self):
        self._step_events["kills"] = self.immune.t_cell_phase(
            self.state.step, self.immune_effects, self._tumor_by_clone)

    def _suppressive_phase(self):
        self.immune.suppressive_phase(self.state.step, self.immune_effects)

    def _immune_state_phase(self):
        tumor_deaths = int(self._tumor_events[1])
        self.immune.state_phase(self.state.step, self.immune_effects, tumor_deaths,
                                self._step_events["kills"], self._step_events["necrotic"],
                                self._tumor_by_clone)

    def field(self, name: str) -> np.ndarray:
        """The unpadded lattice view of a tissue field, or of a penetrating drug's field
        ``drug_<name>`` (KeyError if it is not solved)."""
        padded = self.state.geometry.padded
        drug = name.removeprefix(PENETRATION_FIELD_PREFIX)
        if self.penetration is not None and drug != name and drug in self.penetration.names:
            return lattice.interior(self.penetration.field(drug), padded)
        if self.tissue is None or not self.tissue.has(name):
            raise KeyError(f"field {name!r} is not enabled")
        return lattice.interior(self.tissue.arrays[name].reshape(-1), padded)

    def _count_tumor_by_clone(self):
        s = self.state
        counts = np.zeros_like(self._tumor_by_clone)
        tumour = s.kind == lattice.TUMOR
        line_of = np.nonzero(tumour)[0] // s.geometry.line_length
        np.add.at(counts, (line_of, s.clone[tumour]), 1)
        self._tumor_by_clone[:] = counts

    # ------------------------------------------------------------------ stepping
    def step(self):
        for _, phase in self.phases:
            phase()
        self.state.step += 1
        self._apply_baseline_floors()

    def _apply_baseline_floors(self):
        """``initial.min_resistant_cells_at_baseline`` and
        ``initial.min_escape_cells_at_baseline``, applied once (resistance first): when the
        step counter reaches the treatment start, so the baseline record and every arm
        forked there see the lesion with its floors."""
        initial, sim = self.scenario.initial, self.scenario.simulation
        resistant, escape = (initial.min_resistant_cells_at_baseline,
                             initial.min_escape_cells_at_baseline)
        if not (resistant or escape) or \
                self.state.step != day_to_step(sim.treatment_start_day, sim.dt_hours):
            return
        changed = ensure_resistant_cells(self.state, resistant, self.n_targets, sim.seed,
                                         sim.replicate) if resistant else 0
        if escape:
            changed += ensure_escape_cells(self.state, escape, escape_bit(self.scenario),
                                           sim.seed, sim.replicate)
        if changed:
            self._count_tumor_by_clone()

    @property
    def live_tumor_cells(self) -> int:
        return int(self._tumor_by_clone.sum())

    def observe(self) -> dict:
        """Counts of the current state, for the time series."""
        by_clone = self._tumor_by_clone.sum(axis=0)
        geo = self.state.geometry
        geo.kernels.lattice.count_kinds(self.state.kind, geo.line_length, geo.n_lines,
                                        self._kind_counts)
        kinds = self._kind_counts.sum(axis=0)
        t = self.state.totals
        return dict(
            time_days=self.time_days,
            tumor_cells=int(by_clone.sum()),
            tumor_sensitive=int(by_clone[~self._resistant_clones].sum()),
            tumor_resistant=int(by_clone[self._resistant_clones].sum()),
            tumor_by_clone=by_clone.copy(),
            tumor_cells_on_edge=int(np.count_nonzero(
                self.state.kind[self._edge_sites] == lattice.TUMOR)),
            t_cells=int(kinds[lattice.T_CELL]),
            suppressive_cells=int(kinds[lattice.SUPPRESSIVE]),
            dead_cells=int(kinds[lattice.DEAD]),
            necrotic_cells=int(kinds[lattice.NECROTIC]),
            divisions_total=t["divisions"],
            deaths_total=t["deaths"],
            resistance_mutations_total=t["mutations"],
            mutable_divisions_total=t["mutable_divisions"],
            drug=self.treatment.concentrations(),
            drug_tissue=(self.penetration.tumor_means(self.state.kind)
                         if self.penetration is not None else {}),
            **(self.immune.observe(self.scenario.simulation.spacing_um)
               if self.immune is not None else empty_observation()),
        )


def announce_compilation(*scenarios: Scenario, stream=sys.stderr,
                         command: str = "tumorsim") -> None:
    """Say "compiling" before a first run that will compile: only the kernels these
    scenarios use are checked, so a kernel that only other scenarios use (and so is never
    cached by this one) does not make every run say it."""
    kernels = dict.fromkeys(k for s in scenarios for k in kernels_for(s))
    missing = kernel_jit.needs_compiling(tuple(kernels))
    if missing:
        print(f"{command}: compiling {len(missing)} Numba kernels (first use only; "
              "cached afterwards)...", file=stream, flush=True)


def set_threads(threads: int) -> int:
    """Use ``threads`` Numba threads (0 = automatic: all cores until :func:`run` chooses step
    by step, see ``kernels.jit.AdaptiveThreads``); returns the count in use. (The OpenMP
    environment was set when the kernels were imported: ``kernels.jit.configure_openmp``.)"""
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def adaptive_threads() -> kernel_jit.AdaptiveThreads:
    """The automatic thread choice for one run: all cores, or one to start with when another
    task is ready to run now (``kernels.jit.runnable_elsewhere``; where that cannot be
    read, when the load average already fills the cores). Either way the chooser times
    both counts within its first steps."""
    most = numba.config.NUMBA_NUM_THREADS
    if most == 1:
        return kernel_jit.AdaptiveThreads(1)
    elsewhere = kernel_jit.runnable_elsewhere()
    if elsewhere is None:
        try:
            elsewhere = os.getloadavg()[0] - (most - 1)
        except OSError:
            elsewhere = 0
    return kernel_jit.AdaptiveThreads(most, start=1 if elsewhere >= 0.5 else most)


def progress_bar(enabled: bool, total: int, unit: str):
    """A terminal progress bar of ``total`` ``unit``s that leaves no line behind: a tqdm bar
    when asked for and the optional ``tqdm`` (extra ``progress``) is installed, else None.
    Runs count steps (:func:`run`), studies count runs."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, leave=False)


def run(scenario: Scenario, recorder=None, progress: bool = False, engine: Engine | None = None,
        until_step: int | None = None, threads: int | None = None) -> Engine:
    """Advance a run to ``until_step`` (default: the scenario's end), recording as it goes.
    ``threads``: None keeps the current Numba thread count, 0 chooses it step by step
    (``engine.threads`` then holds the chooser and its history), N uses N."""
    engine = engine or Engine(scenario)
    every = scenario.output.record_every_steps
    last = scenario.simulation.steps if until_step is None else until_step
    chooser = adaptive_threads() if threads == 0 else None
    if threads:
        set_threads(threads)
    engine.threads = chooser
    if recorder is not None and engine.state.step == 0:
        recorder.record(engine)
    bar = progress_bar(progress, last - engine.state.step, "step")
    # off study at progression, or ended at eradication: runs that write a run file (the
    # explorer's in-memory history shows the whole course)
    watch = (watch_for(scenario, engine.treatment)
             if hasattr(recorder, "record_final") else None)
    started = time.perf_counter()
    while True:
        step = engine.state.step
        # at a record (or the checkpoint a run resumes from): off study, or eradicated?
        if watch is not None and 0 < step < last and step % every == 0:
            reason = watch.reason_to_end(engine.time_days,
                                         min(step + every, last) * engine.dt_days,
                                         engine.live_tumor_cells, recorder.series)
            if reason:
                recorder.record_final(engine, reason)
                break
        if step >= last:
            break
        if chooser is None:
            engine.step()
        else:
            numba.set_num_threads(chooser.threads_for_next_step())
            t0 = time.perf_counter()
            engine.step()
            chooser.record(time.perf_counter() - t0)
        step = engine.state.step
        if recorder is not None and (step % every == 0 or step == last):
            recorder.record(engine)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    engine.wall_seconds = time.perf_counter() - started
    return engine


def fork(engine: Engine, scenario: Scenario) -> Engine:
    """A copy of ``engine``'s whole state continuing under ``scenario`` (a regimen arm):
    same random keys, same lattice, so arms differ only where their scenarios do."""
    import copy
    clone = copy.deepcopy(engine)
    clone.scenario = scenario
    clone.rates = tumor_rates(scenario)
    clone.treatment = Treatment(scenario)
    clone.effects = clone.treatment.none
    clone.immune_effects = ImmuneEffects()
    if clone.tissue is not None:
        clone.tissue.configure(scenario)
    clone._set_penetration(scenario)
    if clone.immune is not None:
        clone.immune.configure(scenario)
    return clone
