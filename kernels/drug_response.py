"""Per-site drug response of tumour cells where a drug's tissue concentration varies in space.

A drug with spatial penetration (``[drugs.<name>.penetration]``, :mod:`simulator.penetration`)
acts through its ``kill`` and ``arrest`` channels at each cell's own tissue concentration
C(x) instead of the plasma level. For a tumour cell of clone c at site x, with the per-step
hazards the systemic effects already give its clone (``death_hazard[c]`` = (base death rate +
systemic kill) dt, ``division_hazard[c]`` = systemic division rate x dt)::

    h_die(x)    = death_hazard[c]    + dt_days * sum_d kill_d(C_d(x))
    h_divide(x) = division_hazard[c] * prod_d (1 - arrest_d(C_d(x)))
    p_die(x)    = 1 - exp(-h_die(x)),   p_divide(x) = 1 - exp(-h_divide(x))

over the penetrating drugs d whose target clone c is sensitive to (bit ``target_bit[d]`` of c
clear), each channel the Hill function E(C) = emax / (1 + (ec50 / C)^h) (0 at C <= 0). Kill
rates add and arrests multiply the division rate, as the systemic rules of
:mod:`simulator.effects` do, so a field equal to the plasma level everywhere gives exactly the
systemic probabilities (tested).

Each site writes only itself (a gather), so the result does not depend on the thread count.
"""
import math

from kernels.jit import jit, parallel_jit, prange
from kernels.lattice import TUMOR


@jit
def hill(c, emax, ec50, h):
    """E(C) = emax / (1 + (ec50 / C)^h); 0 at C <= 0 or emax = 0 (as simulator.effects.hill)."""
    if c <= 0.0 or emax == 0.0:
        return 0.0
    return emax / (1.0 + (ec50 / c) ** h)


@parallel_jit
def local_tumor_probabilities(kind, clone, lo, hi, line_length, concentration, target_bit,
                              kill, arrest, death_hazard, division_hazard, dt_days,
                              site_p_die, site_p_divide):
    """Write ``site_p_die[i]`` and ``site_p_divide[i]`` for every tumour site i of the lines'
    extents [lo, hi] (other sites are left as they are).

    concentration    float64 (n_drugs, n_sites): tissue concentration of each penetrating drug
    target_bit       int64 (n_drugs,): the resistance bit of each drug's target
    kill, arrest     float64 (n_drugs, 3): (emax, ec50, hill) of each drug's channel (emax 0 =
                     off); kill emax in 1/day, arrest emax a fraction
    death_hazard     float64 per clone: systemic death hazard per step
    division_hazard  float64 per clone: systemic division hazard per step
    dt_days          step length in days
    """
    n_drugs = concentration.shape[0]
    for line in prange(lo.shape[0]):
        base = line * line_length
        for col in range(max(lo[line], 0), min(hi[line] + 1, line_length)):
            i = base + col
            if kind[i] != TUMOR:
                continue
            c = clone[i]
            h_die = death_hazard[c]
            h_divide = division_hazard[c]
            extra = 0.0
            for d in range(n_drugs):
                if (c >> target_bit[d]) & 1:
                    continue  # resistant to this drug's target
                conc = concentration[d, i]
                extra += hill(conc, kill[d, 0], kill[d, 1], kill[d, 2])
                h_divide *= 1.0 - hill(conc, arrest[d, 0], arrest[d, 1], arrest[d, 2])
            site_p_die[i] = -math.expm1(-(h_die + dt_days * extra))
            site_p_divide[i] = -math.expm1(-h_divide)
