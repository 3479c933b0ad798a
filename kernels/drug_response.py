"""Per-site drug response of tumour cells where a drug's tissue concentration varies in space.

A drug with spatial penetration (``[drugs.<name>.penetration]``,
:mod:`simulator.model.penetration`) acts through its ``kill`` and ``arrest`` channels at each
cell's own tissue concentration C(x) instead of the plasma level. For a tumour cell of clone
c at site x, with the per-step hazards the systemic effects already give its clone
(``death_hazard[c]`` = (base death rate + systemic kill) dt, ``division_hazard[c]`` =
systemic division rate x dt)::

    h_die(x)    = death_hazard[c]    + dt_days * sum_d kill_d(C_d(x))
    h_divide(x) = division_hazard[c] * prod_d (1 - arrest_d(C_d(x)))

over the penetrating drugs d whose target clone c is sensitive to (bit ``target_bit[d]`` of c
clear), each channel the Hill function E(C) = emax / (1 + (ec50 / C)^h) (0 at C <= 0). Kill
rates add and arrests multiply the division rate, as the systemic rules of
:mod:`simulator.effects` do, so a field equal to the plasma level everywhere gives exactly the
systemic hazards (tested). The tumour kernel (:mod:`kernels.tumor`) evaluates these at each
cell's site, for the cells present at the start of a step and for daughters born during it.
"""
from .jit import jit


@jit
def hill(c, emax, ec50, h):
    """E(C) = emax / (1 + (ec50 / C)^h); 0 at C <= 0 or emax = 0 (as simulator.effects.hill)."""
    if c <= 0.0 or emax == 0.0:
        return 0.0
    return emax / (1.0 + (ec50 / c) ** h)


@jit
def local_hazards(i, c, death_hazard, division_hazard, concentration, target_bit, kill,
                  arrest, dt_days):
    """(h_die, h_divide) per step at site ``i`` for a cell of clone ``c`` whose systemic
    hazards are ``death_hazard`` and ``division_hazard`` (module docstring).

    concentration    float64 (n_drugs, n_sites): tissue concentration of each penetrating drug
    target_bit       int64 (n_drugs,): the resistance bit of each drug's target
    kill, arrest     float64 (n_drugs, 3): (emax, ec50, hill) of each drug's channel (emax 0 =
                     off); kill emax in 1/day, arrest emax a fraction
    dt_days          step length in days
    """
    extra = 0.0
    for d in range(concentration.shape[0]):
        if (c >> target_bit[d]) & 1:
            continue  # resistant to this drug's target
        conc = concentration[d, i]
        extra += hill(conc, kill[d, 0], kill[d, 1], kill[d, 2])
        division_hazard *= 1.0 - hill(conc, arrest[d, 0], arrest[d, 1], arrest[d, 2])
    return death_hazard + dt_days * extra, division_hazard
