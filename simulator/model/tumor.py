"""Scenario sections of the tumour itself: the initial lesion and tumour-cell biology.

Rates are per day as named; the engine turns a rate k into a per-step probability
``1 - exp(-k dt)`` once (``simulator.model.rates``). The kernels are in ``kernels.tumor``.
"""
from __future__ import annotations

from dataclasses import dataclass

from simulator.schema import ScenarioError, param


@dataclass(frozen=True)
class Initial:
    tumor_radius_sites: int = param(10, unit="site", low=0,
                                    doc="radius of the initial disc/ball; 0 = one founder "
                                        "cell at the centre")
    resistant_fraction: float = param(0.001, low=0.0, high=1.0,
                                      doc="pre-existing fraction resistant to every "
                                          "target, placed at random",
                                      source="Bozic 2013 eLife 2:e00747: resistant cells "
                                             "pre-exist at detection")
    escape_fraction: float = param(0.0, low=0.0, high=1.0,
                                   doc="pre-existing fraction of immune-escape variants "
                                       "(antigen-presentation loss: their antigenicity x "
                                       "tumor.escape_antigenicity), drawn per cell "
                                       "independently of resistance and inherited; 0 = "
                                       "none (no escape bit in the clone masks)",
                                   source="Zaretsky 2016 N Engl J Med 375:819 (B2M and "
                                          "JAK1/2 loss in melanomas relapsing on anti-PD-1; "
                                          "the variants were selected from the tumour "
                                          "before treatment)")
    min_resistant_cells_at_baseline: int = param(
        0, unit="cell", low=0,
        doc="at the treatment start the lesion carries at least this many live cells "
            "resistant to every target: when fewer are, sensitive cells drawn at random "
            "become resistant. A clinical lesion of ~1e9 cells harbours resistant cells "
            "with near certainty, while a lattice lesion of a few hundred rounds a small "
            "resistant fraction to none (and a cure) by chance; 0 = no floor",
        source="Bozic 2013 eLife 2:e00747 (P(no resistant cell) = exp(-M u ...) ~ 0 at "
               "M = 1e9); Diaz 2012 Nature 486:537 (resistant KRAS clones present before "
               "anti-EGFR therapy)")

    min_escape_cells_at_baseline: int = param(
        0, unit="cell", low=0,
        doc="at the treatment start the lesion carries at least this many live "
            "immune-escape variants (tumor.escape_antigenicity): when fewer are, other "
            "cells drawn at random become variants, keeping their resistance. As for "
            "resistance, a lattice lesion rounds a small escape fraction to none, so "
            "anti-PD-1's responders could not relapse through antigen loss; 0 = no floor",
        source="Zaretsky 2016 N Engl J Med 375:819 (B2M / JAK1/2 loss selected in ~1/4 "
               "of anti-PD-1 responders who relapsed); Ribas 2016 JAMA 315:1600 (25% of "
               "responders relapse by 21 months)")

    def check(self):
        pass


@dataclass(frozen=True)
class Tumor:
    division_rate_per_day: float = param(0.5, unit="1/day", low=0.0,
                                         doc="division rate of a cell with a free neighbour "
                                             "under normoxia",
                                         source="Kather 2017 Cancer Res 77:6442 (one "
                                                "division per ~1-2 days)")
    death_rate_per_day: float = param(0.05, unit="1/day", low=0.0,
                                      doc="base (apoptotic) death rate",
                                      source="Bozic 2013: d/b ~ 0.9 in vivo; lower here so "
                                             "boundary-limited lattice growth is visible")
    mutation_rate_per_division: float = param(1e-5, low=0.0, high=1.0,
                                              doc="probability that a daughter gains "
                                                  "resistance to one more target",
                                              source="Bozic 2013: 50 x 1e-9 per base per "
                                                     "division; raised for lattice scale")
    resistance_targets: list[str] = param(["BRAF"],
                                          doc="targets a targeted drug can hit; a clone's "
                                              "resistance mask has one bit per target (<= 7)")
    resistance_fitness_cost: float = param(0.1, low=0.0, high=1.0,
                                           doc="fractional loss of division rate per "
                                               "resistance acquired",
                                           source="Gatenby 2009 Cancer Res 69:4894 "
                                                  "(cost of resistance, adaptive therapy)")
    antigenicity: float = param(1.0, low=0.0,
                                doc="relative antigenicity of untreated tumour cells; "
                                    "scales T-cell kill probability")
    escape_antigenicity: float = param(0.0, low=0.0,
                                       doc="antigenicity of immune-escape variants relative "
                                           "to the other cells (initial.escape_fraction); "
                                           "0 = invisible to T cells")
    dead_clearance_rate_per_day: float = param(1.0, unit="1/day", low=0.0,
                                               doc="rate at which dead-cell debris is "
                                                   "removed, freeing the site")

    def check(self):
        if not 1 <= len(self.resistance_targets) <= 7:
            raise ScenarioError("needs 1 to 7 target names", "resistance_targets")
        if len(set(self.resistance_targets)) != len(self.resistance_targets):
            raise ScenarioError("target names must be distinct", "resistance_targets")


def escape_bit(scenario) -> int:
    """The clone-mask bit of immune-escape variants: the one above the resistance bits, or
    0 when the scenario has none (``initial.escape_fraction`` = 0 and no
    ``initial.min_escape_cells_at_baseline``)."""
    if (scenario.initial.escape_fraction <= 0.0
            and scenario.initial.min_escape_cells_at_baseline == 0):
        return 0
    return 1 << len(scenario.tumor.resistance_targets)


def clone_count(scenario) -> int:
    """Number of clone masks: every combination of resistance bits and the escape bit."""
    n = 1 << len(scenario.tumor.resistance_targets)
    return 2 * n if escape_bit(scenario) else n
