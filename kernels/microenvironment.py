"""What cells put into the tissue fields and how tumour cells respond to them.

* :func:`induced_secretion` — IFN-gamma-induced chemokine secretion by tumour cells (a Hill
  function of the local IFN-gamma, Gong 2017), added to the chemokine's source. The rest of
  every field's uptake and secretion is a function of the cell kind alone, looked up by
  the field solver (``kernels.multigrid.fine_tables``).
  :func:`induced_secretion_from_powers` builds the same source (table and secretion) from
  the Hill powers :func:`tumor_response` left at the tumour sites in the last step
  (``simulator.model.tissue.TissueFields.hill_powers_buffer``), so each tumour cell's power
  is taken once a step, not twice.
  (Oxygen-limited division is applied by ``kernels.tumor`` itself, at each cell's site.)
* :func:`tumor_response` — anoxic tumour cells turn NECROTIC at a rate that ramps linearly
  from 0 at the necrosis threshold to the full rate at ``necrosis_full`` (PhysiCell: 5 and
  2.5 mmHg): the per-step probability is ``1 - exp(-ramp * necrosis_hazard)`` with
  ``necrosis_hazard`` = full rate x dt, so the rate, not the step's probability, is what
  ramps (a ramped probability would make the rate depend on dt); every other tumour cell's
  PD-L1 relaxes towards its
  IFN-gamma-driven level ``baseline + induced * I^h / (I^h + K^h)`` (Gong 2017) with the
  per-step keep factor ``exp(-decay dt)``. PD-L1 lives in a per-site array whose value is
  NaN wherever no tumour cell is (documented meaning: "no tumour cell here"); a newborn cell
  (NaN at a tumour site) starts at the level for its local IFN-gamma, the level its mother
  next door was relaxing towards.
* :func:`census` — per-line tumour counts, coordinate sums and PD-L1 sums for the record.

All are parallel over lattice lines with per-line outputs, so results do not depend on the
number of threads. They index the lattice with unsigned sites (``np.uint64``): a signed
index gets a negative-index check at every access (tumour response 4.5 -> 3.9 ms at
1000 x 1000, 1 thread; ``benchmarks/README.md``, ``hill_power.py``).
"""
import math

import numpy as np

from .jit import PARALLEL_CHUNKS, inline_jit, jit, nrt_free_jit, parallel_jit, prange
from .lattice import NECROTIC, NO_EXTENT_HI, NO_EXTENT_LO, TUMOR, by_kind
from .powers import power
from .rng import uniform


@jit
def hill_power(x, half, coefficient):
    """(x / K)^h for x > 0, 0 for x <= 0 (and NaN): the power of :func:`hill`, in float64
    arithmetic without a library call (``kernels.powers``, so loops of it vectorise) and
    rounded to float32: the result is a float32 value, so a float32 array holds it
    exactly, and it is the correctly rounded (x / K)^h but within ~1e-13 relative of a
    rounding boundary (then one unit in the last place off)."""
    v = np.float64(x)
    r = np.float32(power(v / half, coefficient))
    return float(r) if v > 0.0 else 0.0


@jit
def hill(x, half, coefficient):
    """x^h / (x^h + K^h) for x >= 0 (0 for x <= 0), from :func:`hill_power`."""
    r = hill_power(x, half, coefficient)
    return r / (1.0 + r)


@inline_jit
def tumor_columns(kind, base, first, last, columns):
    """The columns of the tumour sites among ``first..last`` of the line starting at
    ``base``, in order, into ``columns``; returns how many. Branch-free: tumour, necrotic
    and dead cells mix at random in a tumour's core, so a test per site mispredicts at
    about every other site and costs more than the work behind it."""
    n = 0
    for col in range(first, last + 1):
        columns[n] = col
        n += kind[np.uint64(base + col)] == TUMOR  # (unsigned: no negative-index check)
    return n


@parallel_jit
def induced_secretion(kind, ifn, lo, hi, line_length, rate, half, coefficient, source):
    """source[i] += rate * hill(ifn[i], half, coefficient) at every tumour site, within the
    tissue extents lo[l]..hi[l] of each line (tumour cells lie only there). The Hill
    functions of a line are taken in a loop of their own, which vectorises."""
    for line in prange(lo.shape[0]):
        base = line * line_length
        columns = np.empty(line_length, np.int32)
        values = np.empty(line_length)
        n = tumor_columns(kind, base, max(lo[line], 0), min(hi[line], line_length - 1),
                          columns)
        for q in range(n):
            values[q] = ifn[np.uint64(base + columns[q])]
        for q in range(n):
            values[q] = hill(values[q], half, coefficient)
        for q in range(n):
            # (a Python float without JIT, as hill() returns: NumPy then adds it to the
            # float32 source in float32, as induced_secretion_from_powers does)
            source[np.uint64(base + columns[q])] += rate * float(values[q])


@parallel_jit
def induced_secretion_from_powers(kind, lo, hi, line_length, source_by_kind, rate, source):
    """The chemokine's source, from Hill powers that :func:`tumor_response` left in
    ``source`` at every tumour site: ``source[i]`` = its kind's entry of ``source_by_kind``
    (as ``kernels.multigrid.fine_tables`` sets it) plus, at a tumour site, ``rate * r / (1 +
    r)`` for the power r found there. Exactly :func:`fine_tables` then
    :func:`induced_secretion` when each r is ``hill_power`` of the IFN-gamma the latter
    would read.

    One pass per line, each site's power read before the site is overwritten: the induced
    term is computed at every site, from whatever the buffer holds there, and kept at the
    tumour sites by a select, so the loop vectorises. Picking out the tumour sites first
    (:func:`tumor_columns`) and adding at them cost 1.0 against 0.7 ms at 1000 x 1000, 1
    thread (benchmarks/README.md)."""
    s_by_kind = (np.float32(source_by_kind[0]), np.float32(source_by_kind[1]),
                 np.float32(source_by_kind[2]), np.float32(source_by_kind[3]),
                 np.float32(source_by_kind[4]), np.float32(source_by_kind[5]),
                 np.float32(source_by_kind[6]), np.float32(source_by_kind[7]))
    for line in prange(lo.shape[0]):
        base = line * line_length
        first = max(lo[line], 0)
        last = min(hi[line], line_length - 1)
        row = source[base:base + line_length]
        kinds = kind[base:base + line_length]
        for col in range(line_length):
            value = by_kind(kinds[col], s_by_kind)
            r = float(row[col])  # (a Python float without JIT, as hill() returns)
            # a power is >= 0; elsewhere the buffer holds anything (-1 would divide by 0)
            r = r if r > 0.0 else 0.0
            # the sum as ``source[i] += ...`` forms it: float64 under JIT, float32 without
            induced = value + rate * (r / (1.0 + r))
            tumour = (kinds[col] == TUMOR) & (col >= first) & (col <= last)
            row[col] = induced if tumour else value


@parallel_jit
def tumor_response(kind, clone, pdl1, oxygen, ifn, lo, hi, pre_lo, pre_hi, line_length,
                   necrosis_threshold, necrosis_full, necrosis_hazard, necrosis_key,
                   pdl1_baseline, pdl1_induced, ifn_half, ifn_hill, pdl1_keep,
                   necrotic_by_clone, powers, line_lo, line_hi):
    """Necrosis under anoxia and PD-L1 relaxation (module docstring) on the lines
    ``line_lo`` .. ``line_hi - 1`` (all of them: 0 and ``lo.shape[0]``), over the union of
    the tissue extents before (``pre_*``) and after (``lo``/``hi``) the tumour phase, so
    every site that held tissue since the last call is visited. ``oxygen`` / ``ifn`` may be
    empty (no necrosis / PD-L1 at baseline). ``necrotic_by_clone[line, c]`` = cells of
    clone c that turned necrotic in the line. ``powers`` (float32 per site, or empty): each
    tumour cell's IFN-gamma Hill power (:func:`hill_power`) is stored at its site, for
    :func:`induced_secretion_from_powers` to reuse in the next step's fields phase.

    The lines are worked in up to PARALLEL_CHUNKS stretches of consecutive lines, each by
    :func:`_respond_lines` with its own scratch. Each line writes only its own sites and
    entries, so the result depends neither on the stretches nor on how a caller splits
    the lines between calls (two threads share them at 2 threads on large lattices:
    ``simulator.model.alongside.SharedLines``)."""
    n_lines = line_hi - line_lo
    stretches = max(1, min(PARALLEL_CHUNKS, n_lines))
    # two column lists per stretch; each row ends with at least 64 unused bytes (no cache
    # line shared between threads)
    scratch = np.empty((stretches, 2, line_length + 16), np.int32)
    values = np.empty((stretches, line_length + 8))
    for q in prange(stretches):
        c = np.int64(q)  # (a prange index is unsigned: another copy)
        _respond_lines(kind, clone, pdl1, oxygen, ifn, lo, hi, pre_lo, pre_hi, line_length,
                       necrosis_threshold, necrosis_full, necrosis_hazard, necrosis_key,
                       pdl1_baseline, pdl1_induced, ifn_half, ifn_hill, pdl1_keep,
                       necrotic_by_clone, powers, line_lo + c * n_lines // stretches,
                       line_lo + (c + 1) * n_lines // stretches, scratch[c, 0],
                       scratch[c, 1], values[c])


@nrt_free_jit
def _respond_lines(kind, clone, pdl1, oxygen, ifn, lo, hi, pre_lo, pre_hi, line_length,
                   necrosis_threshold, necrosis_full, necrosis_hazard, necrosis_key,
                   pdl1_baseline, pdl1_induced, ifn_half, ifn_hill, pdl1_keep,
                   necrotic_by_clone, powers, line_lo, line_hi, tumour_cols, other_cols,
                   hill_powers):
    """:func:`tumor_response` on lines line_lo .. line_hi - 1 (scratch: ``tumour_cols`` and
    ``other_cols``, a line's length each, and ``hill_powers``, a line's length of float64:
    its tumour cells' Hill powers, taken in a loop of their own that vectorises; compiled
    without reference counting, ``kernels.jit``). A line's sites are first sorted,
    branch-free, into tumour sites and the rest, whose PD-L1 becomes NaN in a loop of its
    own: a branch per site on the kind mispredicted at about every other site of a
    tumour's mixed core (this kernel 3.17 -> 2.70 ms at 1000 x 1000, 1 thread; 1.61 ->
    1.40 ms at 2; same results). In a solid
    tumour those branches are predictable and the lists cost more than they save (the
    first step from a 547k-cell disc, before any necrosis: 9.58 -> 10.18 ms); a full-model
    tumour that large has a necrotic core, and a small one costs little either way."""
    use_oxygen = oxygen.shape[0] > 0
    use_ifn = ifn.shape[0] > 0
    keep_powers = powers.shape[0] > 0
    ramp = necrosis_threshold - necrosis_full
    for line in range(line_lo, line_hi):
        for c in range(necrotic_by_clone.shape[1]):
            necrotic_by_clone[line, c] = 0
        first = min(lo[line], pre_lo[line])
        last = max(hi[line], pre_hi[line])
        if first == NO_EXTENT_LO or last == NO_EXTENT_HI:
            continue
        base = line * line_length
        n_tumour = 0
        n_other = 0
        for col in range(max(first, 0), min(last + 1, line_length)):
            tumour = kind[np.uint64(base + col)] == TUMOR  # (unsigned: no negative check)
            tumour_cols[np.uint64(n_tumour)] = col
            n_tumour += tumour
            other_cols[np.uint64(n_other)] = col
            n_other += not tumour
        for q in range(n_other):
            pdl1[np.uint64(base + other_cols[q])] = np.nan
        if use_ifn:
            # each tumour cell's Hill power, in a loop of its own that vectorises
            for q in range(n_tumour):
                hill_powers[q] = ifn[np.uint64(base + tumour_cols[q])]
            for q in range(n_tumour):
                hill_powers[q] = hill_power(hill_powers[q], ifn_half, ifn_hill)
        for q in range(n_tumour):
            site = base + tumour_cols[q]
            i = np.uint64(site)
            if use_oxygen:
                level = oxygen[i]
                if level < necrosis_threshold:
                    x = (necrosis_threshold - level) / ramp
                    p = -math.expm1(-necrosis_hazard * (1.0 if x >= 1.0 else x))
                    if uniform(necrosis_key, site) < p:
                        kind[i] = NECROTIC
                        pdl1[i] = np.nan
                        necrotic_by_clone[line, clone[i]] += 1
                        continue
            target = pdl1_baseline
            if use_ifn:
                r = hill_powers[q]
                target += pdl1_induced * (r / (1.0 + r))  # hill(), its power kept
                if keep_powers:
                    powers[i] = np.float32(r)
            v = float(pdl1[i])  # float64 arithmetic from a float32 store, JIT or not
            if math.isnan(v):
                pdl1[i] = target
            else:
                pdl1[i] = target + (v - target) * pdl1_keep


@parallel_jit
def census(kind, pdl1, lo, hi, line_length, count, col_sum, pdl1_sum):
    """Per line within the extents: tumour cells, the sum of their column indices and of
    their PD-L1 levels (summed in column order)."""
    for line in prange(lo.shape[0]):
        cols = 0
        total = 0.0
        base = line * line_length
        columns = np.empty(line_length, np.int32)
        n = tumor_columns(kind, base, max(lo[line], 0), min(hi[line], line_length - 1),
                          columns)
        for q in range(n):
            cols += columns[q]
            total += pdl1[np.uint64(base + columns[q])]
        count[line] = n
        col_sum[line] = cols
        pdl1_sum[line] = total
