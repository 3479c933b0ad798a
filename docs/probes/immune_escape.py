"""Probe (a patch of the running engine, NOT part of the model): immune-escape variants.

Superseded by the model's own escape variants and T-cell recognition (5bbd7f0:
``initial.escape_fraction``, ``tumor.escape_antigenicity``, ``t_cells.recognition_threshold``);
kept to reproduce the table of docs/calibration.md that asked for them.

A second resistance "target", ESCAPE, that no drug targets: cells carrying it present less
antigen (their T-cell kill rate and antigen signal x ESCAPE_ANTIGENICITY); the initial
ESCAPE share is drawn per cell independently of BRAF resistance (ESCAPE_FRACTION; the
BRAF-resistant share stays ``initial.resistant_fraction``); divisions mutate to ESCAPE as to
BRAF resistance. The patches are made at import, so the spawned workers (which re-run this
file) carry them too. Used by docs/calibration.md ("A probe of immune-escape variants"):

    # FIT: run 7's best fit as --set flags (the bash array in docs/calibration.md)
    ESCAPE_FRACTION=0.05 ESCAPE_ANTIGENICITY=0.0 python docs/probes/immune_escape.py \
        OUT targeted_continuous.toml anti_pd1.toml "${FIT[@]}" \
        --set 'drugs.anti_pd1.priming={emax=1.0, ec50_mg_per_l=1.0}'
"""
import os
import sys

import numpy as np

ESCAPE_FRACTION = float(os.environ.get("ESCAPE_FRACTION", "0.02"))
ESCAPE_ANTIGENICITY = float(os.environ.get("ESCAPE_ANTIGENICITY", "0.1"))

from simulator import engine as engine_mod  # noqa: E402
from simulator.model import immune as immune_mod  # noqa: E402
from simulator.model import state as state_mod  # noqa: E402

_seed = state_mod.seed_tumor


def seed_tumor(state, radius_sites, resistant_fraction, n_targets, seed, replicate):
    _seed(state, radius_sites, 0.0, n_targets, seed, replicate)
    sites = np.flatnonzero(state.kind == state_mod.TUMOR)
    rng = np.random.default_rng([seed, replicate, 4242])
    braf = rng.random(sites.size) < resistant_fraction
    escape = rng.random(sites.size) < ESCAPE_FRACTION
    state.clone[sites] = (braf * 1 + escape * 2).astype(np.uint8)
    state.refresh_extents()


engine_mod.seed_tumor = seed_tumor
_init = immune_mod.ImmuneSystem.__init__


def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    masks = np.arange(self.n_clones)
    self.base_antigenicity = self.base_antigenicity * np.where(masks & 2, ESCAPE_ANTIGENICITY,
                                                               1.0)


immune_mod.ImmuneSystem.__init__ = __init__

if __name__ == "__main__":
    from simulator.study import comparison
    from simulator.scenario import library_dir
    out, rest = sys.argv[1], sys.argv[2:]
    arms = [a for a in rest if a.endswith(".toml")]
    sets = [rest[i + 1] for i, a in enumerate(rest) if a == "--set"]
    sets.append('tumor.resistance_targets=["BRAF", "ESCAPE"]')
    report = comparison.compare([library_dir() / a for a in arms], 16, out, workers=2,
                                overrides=sets, figures=False)
    print(open(os.path.join(out, "arms.csv")).read())
