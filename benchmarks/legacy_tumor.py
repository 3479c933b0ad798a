"""The synchronous tumour step that ``kernels.tumor`` replaced, kept only as the baseline of
``benchmarks/bench_tumor_kernel.py`` (same lattice, same rates, timed side by side). It is
not used by the engine: its growth depends on dt (28% slow at 6 h, b = 1/day).

Tumour cell turnover: death, division into a free neighbour, resistance mutation.

One step is two conflict-free passes over the lines that hold tissue:

1. ``propose`` (reads the lattice, writes only its own site's proposal): each tumour cell
   draws one uniform ``u``. ``u < p_die`` marks death; otherwise ``u < p_die + (1 - p_die)
   * p_divide`` makes it pick one free Moore neighbour uniformly (a second draw) and propose
   to divide into it. Cells with no free neighbour do not divide (contact inhibition).
2. ``resolve`` (each site writes only itself): an empty site proposed by several parents
   takes the one with the highest hash priority; the daughter inherits the parent's clone
   and, with probability ``mutation_probability``, gains resistance to one target the parent
   lacks (chosen uniformly). Marked cells become DEAD debris; debris clears with its own
   probability. Losing proposers simply do not divide this step.

Clone id = resistance bit mask (bit t set: resistant to target t), so per-clone
probabilities arrive as small arrays indexed by the clone id. ``division_factor`` is a
per-site multiplier of the division probability (oxygen); pass an empty array for none.
``site_p_die`` / ``site_p_divide`` replace the clone's probabilities by per-site ones (drugs
with spatial penetration, :mod:`kernels.drug_response`); empty arrays for none.
"""
import numpy as np

from kernels.jit import parallel_jit, prange
from kernels.lattice import DEAD, EMPTY, NECROTIC, NO_EXTENT_HI, NO_EXTENT_LO, TUMOR
from kernels.rng import hash_index, uniform

DIE = 255  # proposal code of a cell that dies this step; 1..n_neighbours = divide there


@parallel_jit
def propose(kind, clone, proposal, lo, hi, line_length, offsets,
            p_die, p_divide, division_factor, site_p_die, site_p_divide, event_key,
            target_key, tissue_lo, tissue_hi, proposer_lo, proposer_hi):
    n_neighbours = offsets.shape[0]
    use_factor = division_factor.shape[0] > 0
    use_site = site_p_die.shape[0] > 0
    for line in prange(lo.shape[0]):
        base = line * line_length
        t_first = NO_EXTENT_LO
        t_last = NO_EXTENT_HI
        p_first = NO_EXTENT_LO
        p_last = NO_EXTENT_HI
        for col in range(max(lo[line], 0), min(hi[line] + 1, line_length)):
            i = base + col
            k = kind[i]
            code = 0
            if k == TUMOR:
                c = clone[i]
                u = uniform(event_key, i)
                die = site_p_die[i] if use_site else p_die[c]
                if u < die:
                    code = DIE
                else:
                    divide = site_p_divide[i] if use_site else p_divide[c]
                    if use_factor:
                        divide *= division_factor[i]
                    if u < die + (1.0 - die) * divide:
                        n_free = 0
                        for n in range(n_neighbours):
                            if kind[i + offsets[n]] == EMPTY:
                                n_free += 1
                        if n_free > 0:
                            pick = int(uniform(target_key, i) * n_free)
                            for n in range(n_neighbours):
                                if kind[i + offsets[n]] == EMPTY:
                                    if pick == 0:
                                        code = n + 1
                                        break
                                    pick -= 1
                if code != 0:
                    if p_first == NO_EXTENT_LO:
                        p_first = col
                    p_last = col
            if k == TUMOR or k == DEAD or k == NECROTIC:
                if t_first == NO_EXTENT_LO:
                    t_first = col
                t_last = col
            proposal[i] = code
        tissue_lo[line] = t_first
        tissue_hi[line] = t_last
        proposer_lo[line] = p_first
        proposer_hi[line] = p_last


@parallel_jit
def resolve(kind, clone, proposal, lo, hi, line_length, offsets, line_offsets,
            tissue_lo, tissue_hi, proposer_lo, proposer_hi,
            mutation_probability, n_targets, p_clear_dead, p_clear_necrotic,
            priority_key, mutation_key, clearance_key,
            births, deaths, mutations, mutable_divisions, tumor_by_clone):
    """Apply the proposals. Per-line outputs: births, deaths, mutation events, divisions of
    parents that could still mutate (the D of Binomial(D, u)), tumour cells per clone."""
    n_neighbours = offsets.shape[0]
    n_lines = lo.shape[0]
    full_mask = (1 << n_targets) - 1
    for line in prange(n_lines):
        first = tissue_lo[line]
        last = tissue_hi[line]
        for d in range(line_offsets.shape[0]):
            other = line + line_offsets[d]
            if other < 0 or other >= n_lines:
                continue
            if proposer_lo[other] != NO_EXTENT_LO:
                first = min(first, proposer_lo[other] - 1)
                last = max(last, proposer_hi[other] + 1)
        for c in range(tumor_by_clone.shape[1]):
            tumor_by_clone[line, c] = 0
        n_births = 0
        n_deaths = 0
        n_mutations = 0
        n_mutable = 0
        new_first = NO_EXTENT_LO
        new_last = NO_EXTENT_HI
        base = line * line_length
        for col in range(max(first, 0), min(last + 1, line_length)):
            j = base + col
            k = kind[j]
            if k == EMPTY:
                parent = -1
                best = np.uint64(0)
                for n in range(n_neighbours):
                    i = j - offsets[n]
                    if proposal[i] == n + 1:
                        priority = hash_index(priority_key, i)
                        if parent < 0 or priority > best:
                            parent = i
                            best = priority
                if parent >= 0:
                    daughter = clone[parent]
                    lacking = full_mask & ~daughter
                    if lacking != 0:
                        n_mutable += 1
                        u = uniform(mutation_key, j)
                        if u < mutation_probability:
                            n_lacking = 0
                            for t in range(n_targets):
                                if lacking & (1 << t):
                                    n_lacking += 1
                            pick = min(int(u / mutation_probability * n_lacking), n_lacking - 1)
                            for t in range(n_targets):
                                if lacking & (1 << t):
                                    if pick == 0:
                                        daughter = daughter | (1 << t)
                                        break
                                    pick -= 1
                            n_mutations += 1
                    kind[j] = TUMOR
                    clone[j] = daughter
                    k = TUMOR
                    n_births += 1
            elif k == TUMOR:
                if proposal[j] == DIE:
                    kind[j] = DEAD
                    k = DEAD
                    n_deaths += 1
            elif k == DEAD:
                if uniform(clearance_key, j) < p_clear_dead:
                    kind[j] = EMPTY
                    k = EMPTY
            elif k == NECROTIC:
                if uniform(clearance_key, j) < p_clear_necrotic:
                    kind[j] = EMPTY
                    k = EMPTY
            if k == TUMOR:
                tumor_by_clone[line, clone[j]] += 1
            if k == TUMOR or k == DEAD or k == NECROTIC:
                if new_first == NO_EXTENT_LO:
                    new_first = col
                new_last = col
        lo[line] = new_first
        hi[line] = new_last
        births[line] = n_births
        deaths[line] = n_deaths
        mutations[line] = n_mutations
        mutable_divisions[line] = n_mutable
