"""Cytotoxic T cells: attack, kill credit, exhaustion, handling time, death.

Agent arrays (one entry per T cell, kept by ``simulator.immune``): ``sites`` (flat padded
index), ``kills_left`` (int32), ``engaged`` (int32 steps of handling left after a kill),
``exhaustion`` (float64, exhausted at >= 1), ``flags`` (uint8 bits below).

Killing (Kather et al. 2017 Cancer Res 77:6442; Gong et al. 2017 J R Soc Interface
14:20170320) is two conflict-free passes per step:

1. :func:`attack_propose` (agent-parallel; writes only the agent's own entries and its own
   site of ``proposal``): a T cell that is neither exhausted nor engaged and has at least
   one tumour neighbour picks one uniformly (draw keyed by its site) and succeeds with

       p_kill = 1 - exp(-k dt) ** (q (1 - S)),   S = 1 - (1 - S_pd) (1 - S_sup)

   where q is the target's antigenicity (per clone), S_pd = s_pd_max * P / (P + K_pd) *
   (1 - blockade) the PD-1/PD-L1 inhibition by the target's PD-L1 level P, and S_sup =
   s_sup_max * C / (C + K_sup) the local suppression by the suppressive cytokine C at the
   T cell's site. The caller passes ``log_survival = -k dt`` (converted once). Every T cell
   that is not exhausted accumulates exhaustion ``(e_sup * S_sup + e_pd * P [if in contact])
   * (1 - relief)`` per step (rates per step, converted once).
2. :func:`attack_resolve`: a successful attack whose target is claimed by several T cells
   kills it once; the credit (kill count, handling time, expansion) goes to the attacker
   with the highest hash priority, exactly as in :func:`kernels.immune.migrate_resolve`.

:func:`fate` then marks exhaustion (exhaustion >= 1 or no kills left), counts down handling
and removes dying cells (higher death probability when exhausted).
"""
import math

from kernels.immune import TAG_UNIT, wins_target
from kernels.jit import jit, parallel_jit, prange
from kernels.lattice import DEAD, EMPTY, TUMOR
from kernels.rng import uniform

EXHAUSTED = 1   # cannot kill or secrete; dies at the exhausted rate
CONTACT = 2     # attacked a tumour cell this step (secretes IFN-gamma next field solve)
KILLED = 4      # got the credit for a kill this step (may expand)


@jit
def suppression_at(cytokine, i, suppression_max, half_saturation):
    """S_sup at site i (0 when there is no suppressive-cytokine field)."""
    if cytokine.shape[0] == 0:
        return 0.0
    c = cytokine[i]
    if c <= 0.0:
        return 0.0
    return suppression_max * c / (c + half_saturation)


@parallel_jit
def attack_propose(kind, clone, pdl1, cytokine, proposal, sites, n, engaged, kills_left,
                   exhaustion, flags, offsets, antigenicity, log_survival, pd1_max_inhibition,
                   pd1_half_saturation, pd1_blockade, suppression_max,
                   suppression_half_saturation, exhaustion_pdl1, exhaustion_suppression,
                   exhaustion_relief, tag, pick_key, kill_key):
    """Propose this step's kills (see module docstring); clears CONTACT and KILLED bits."""
    n_neighbours = offsets.shape[0]
    base = tag * TAG_UNIT
    for a in prange(n):
        i = sites[a]
        f = flags[a] & EXHAUSTED
        if f != 0:
            flags[a] = f
            continue
        s_sup = suppression_at(cytokine, i, suppression_max, suppression_half_saturation)
        drive = exhaustion_suppression * s_sup
        n_targets = 0
        if engaged[a] == 0 and kills_left[a] > 0:
            for d in range(n_neighbours):
                if kind[i + offsets[d]] == TUMOR:
                    n_targets += 1
        if n_targets > 0:
            pick = min(int(uniform(pick_key, i) * n_targets), n_targets - 1)
            target = -1
            for d in range(n_neighbours):
                if kind[i + offsets[d]] == TUMOR:
                    if pick == 0:
                        target = d
                        break
                    pick -= 1
            j = i + offsets[target]
            level = pdl1[j]
            s_pd = pd1_max_inhibition * level / (level + pd1_half_saturation) * (1.0 - pd1_blockade)
            s = 1.0 - (1.0 - s_pd) * (1.0 - s_sup)
            p_kill = -math.expm1(log_survival * antigenicity[clone[j]] * (1.0 - s))
            drive += exhaustion_pdl1 * level
            f |= CONTACT
            if uniform(kill_key, i) < p_kill:
                proposal[i] = base + target + 1
        exhaustion[a] += drive * (1.0 - exhaustion_relief)
        flags[a] = f


@parallel_jit
def attack_resolve(kind, proposal, sites, n, offsets, tag, priority_key, kills_left, engaged,
                   flags, handling_steps, killed_site):
    """Apply the kills: the credited attacker turns its target into DEAD debris, spends one
    kill and becomes engaged for ``handling_steps`` steps. ``killed_site[a]`` = the site
    killed by agent a this step, or -1."""
    n_neighbours = offsets.shape[0]
    base = tag * TAG_UNIT
    for a in prange(n):
        killed_site[a] = -1
        i = sites[a]
        code = proposal[i] - base
        if code < 1 or code > n_neighbours:
            continue
        j = i + offsets[code - 1]
        if wins_target(proposal, i, j, base, offsets, priority_key):
            kind[j] = DEAD
            kills_left[a] -= 1
            engaged[a] = handling_steps
            flags[a] |= KILLED
            killed_site[a] = j


@parallel_jit
def fate(kind, sites, n, kills_left, engaged, exhaustion, flags, p_death, p_death_exhausted,
         fate_key, alive):
    """End of step: mark exhaustion, count down handling (not on the step of the kill),
    and remove dying T cells (their site becomes EMPTY; ``alive[a]`` = 0)."""
    for a in prange(n):
        i = sites[a]
        f = flags[a]
        if (f & EXHAUSTED) == 0 and (exhaustion[a] >= 1.0 or kills_left[a] <= 0):
            f |= EXHAUSTED
        if engaged[a] > 0 and (f & KILLED) == 0:
            engaged[a] -= 1
        flags[a] = f
        p = p_death_exhausted if (f & EXHAUSTED) != 0 else p_death
        if uniform(fate_key, i) < p:
            kind[i] = EMPTY
            alive[a] = 0
        else:
            alive[a] = 1


@parallel_jit
def secretion(sites, n, engaged, flags, rate, source):
    """source[site] += rate for every T cell that is engaged or attacked last step and is
    not exhausted (IFN-gamma secretion while engaged)."""
    for a in prange(n):
        f = flags[a]
        if (f & EXHAUSTED) == 0 and ((f & CONTACT) != 0 or engaged[a] > 0):
            source[sites[a]] += rate
