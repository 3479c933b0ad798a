"""Tumour cell turnover in continuous time: death, division into a free neighbour, mutation,
and clearance of debris — exact within each step, so results do not depend on the step.

The process (Eden-type growth with turnover; Bozic 2013 for the mutation convention): a
tumour cell of clone c at site x dies at rate d_c(x) and attempts to divide at rate
b_c(x); an attempt succeeds if the cell has at least one EMPTY Moore neighbour *at that
moment*, and the daughter goes to one of them chosen uniformly; the daughter inherits the
clone and, with probability ``mutation_probability``, gains resistance to one target the
parent lacks (chosen uniformly). A dying cell becomes DEAD debris, which clears (becomes
EMPTY) at its own rate; NECROTIC debris likewise. Rates are constant within a step (they
come from the drugs, oxygen and drug fields of the step) and are passed as hazards per
step, h = rate x dt, so event times are in units of the step, t in [0, 1).

A synchronous step (one event per cell, conflicts lost) makes growth depend on dt: at
dt = 6 h and b = 1/day the front was 28% slow. Instead each step simulates this
continuous-time Markov process *exactly*, by processing its events in time order:

1. :func:`schedule` (parallel over lattice lines, each line writes only its own sites):
   every tumour cell draws its death time; a cell with an EMPTY neighbour is *active* and
   draws its first division attempt; DEAD / NECROTIC sites draw their clearance time.
   Times beyond the step are dropped (the Poisson clocks are memoryless). Cells with no
   free neighbour are *dormant*: their attempts could only fail until a neighbour frees.
   Per-site flags (``flags``) mark what was scheduled; per-line counts size the queue.
2. :func:`run_events` (in time order): the scheduled events are collected with their times
   (in parallel over lines, each line at its own offset from the per-line counts:
   :func:`_collect_in_parallel`), sorted by time
   (:func:`time_order`, a radix sort) and merged with a binary heap of the events drawn
   during the step, and applied one by one. DEATH: the cell becomes DEAD and draws its
   clearance time. CLEAR: the site becomes EMPTY, and every dormant tumour neighbour
   becomes active with a fresh attempt clock from now (exact by memorylessness: its
   earlier attempts would all have failed). ATTEMPT: with no EMPTY neighbour the cell
   turns dormant; otherwise it divides, the daughter draws its death and attempt times,
   and the parent its next attempt. An ATTEMPT scheduled for an earlier occupant of its
   site is stale (that cell died) and is skipped: each event carries the site's birth
   count at the time it was scheduled, and a birth since then makes the counts differ.

Every draw is a pure function of (seed, replicate, stream, step, site, event time): the
first draws of a step are keyed by site, later ones also by the time of the event that
makes them. The order of events is their time order, which is unique, so the result does
not depend on threads or on how the queue breaks ties (none occur but by a measure-zero
coincidence, and those are broken by event kind, then site).

Cost: the parallel pass touches every tissue site once (as the old synchronous step did);
the serial loop costs O(events) for the events a step starts with plus O(log) per event
drawn during it, where events ~ deaths + clearances + the divisions at the tumour's free
surface and around holes — a few per cent of the cells. What keeps it within 2x of the
synchronous step (benchmarks/bench_tumor_kernel.py; the figures in benchmarks/README.md):
the per-cell helpers are inlined (``kernels.jit.inline_jit``); the EMPTY-neighbour test
is an OR of per-column flags computed once per column; ``schedule`` sorts each line's
columns into tumour and debris lists first, branch-free, so a necrotic core's random mix
of kinds costs no mispredicted branch per site; ``run_events`` finds the sites whose
events it recomputes from a branch-free list of each line's flagged columns
(:func:`_flagged_columns`: with a branch per site over runtime indices, that serial
scan took 1.6 of the function's 3.5 ms at 1000 x 1000); a clock's firing within the step is
decided without a logarithm except within ~2^-30 of the boundary (:func:`fires_within_step`,
:func:`surely_late`, bit-identical); the starting events are radix-sorted instead of
heaped; the births of the step are counted in a per-site uint8 scratch array (1 byte per
site) read only behind a flag bit; the event loop (:func:`_apply_events`) is compiled
without reference counting (``kernels.jit.nrt_free_jit``: the array-taking helpers it
inlines left an atomic count per call; 1.13-1.16x on the tumour phase). Per event, the
loop's cost is mostly cache misses at random sites.

Clone id = resistance bit mask (bit t set: resistant to target t); per-clone hazards arrive
as small arrays indexed by it. ``oxygen`` (or an empty array) scales each cell's division
hazard by clip((O - threshold) / span, 0, 1) at its site (PhysiCell's linear oxygen-limited
proliferation). ``concentration`` (n_drugs x n_sites; shape (0, 0) for none) makes the
``kill`` and ``arrest`` channels of penetrating drugs act at each site's own tissue
concentration (:mod:`kernels.drug_response`).
"""
import math

import numpy as np
from .drug_response import local_hazards
from .jit import PARALLEL_CHUNKS, inline_jit, jit, nrt_free_jit, parallel_jit, prange
from .lattice import (DEAD, EMPTY, NECROTIC, NO_EXTENT_HI, NO_EXTENT_LO, TUMOR,
                             nth_neighbour_of_kind, nth_set_bit)
from .rng import time_salt, uniform

# per-site flags written by ``schedule`` (scratch, valid for the step)
F_DEATH = 1        # the cell's death falls within the step
F_ATTEMPT = 2      # the cell's first division attempt falls within the step
F_CLEAR = 4        # the debris clears within the step
F_ACTIVE = 8       # the cell's attempt clock runs (it had a free neighbour, or was born)
F_BORN = 16        # a cell was born at the site within the step; ``births`` counts them
NOT_ACTIVE = 0xFF ^ F_ACTIVE
MAX_BIRTHS = 255   # births at one site within one step that ``births`` (uint8) can count

# event kinds, in the order that breaks (measure-zero) ties
EV_DEATH = 0
EV_CLEAR = 1
EV_ATTEMPT = 2


@inline_jit
def event_time(u, hazard):
    """Time to the first event of a Poisson clock of ``hazard`` per step, from the uniform
    ``u`` (inverse CDF); inf for a zero hazard."""
    return -math.log1p(-u) / hazard


# ``fires_within_step`` and ``surely_late`` decide ``event_time(u, h) < 1`` without the
# logarithm, for a hazard h >= 0 (model.rates.step_hazard refuses negative rates). Exactly,
# T(u) = -ln(1 - u) / h < 1 iff u < p = 1 - exp(-h). The computed T has a relative error of
# a few ulp (log1p, one division) and the computed p = -expm1(-h) one ulp; for u below
# p (1 - BAND), T(u) <= 1 - ln(1 + BAND' (e^h - 1)) / h <= 1 - BAND' (BAND' ~ BAND, the
# bound's minimum being at h -> 0), and for u above p (1 + BAND), T(u) >= 1 + BAND', both
# far outside 2^-49 of 1, so the computed T falls on the same side of 1 (and above it, so
# does t + T for a clock started at any t >= 0 of the step). Only draws within the band (a
# fraction ~2^-30 of them) pay for the logarithm, and every decision is the computed
# comparison bit for bit (zero, infinite and NaN hazards included: their draws land in
# the band or agree at its edges; tests/test_kernels_tumor.py).
BAND = 2.0 ** -30


@inline_jit
def surely_late(u, probability):
    """True only if ``event_time(u, hazard) >= 1`` (computed), given ``probability`` =
    ``-expm1(-hazard)`` (module comment above): then no clock started at a time t >= 0 of
    the step with this draw fires within it either (t + event_time >= 1)."""
    return u > probability * (1.0 + BAND)


@inline_jit
def fires_within_step(u, hazard, probability):
    """``event_time(u, hazard) < 1.0``, given ``probability`` = ``-expm1(-hazard)``."""
    if u < probability * (1.0 - BAND):
        return True
    if surely_late(u, probability):
        return False
    return event_time(u, hazard) < 1.0


@inline_jit
def fires_scaled_within_step(u, hazard, full_hazard, full_probability):
    """``event_time(u, hazard) < 1.0`` for a hazard scaled down from ``full_hazard``
    (hazard = x full_hazard, 0 <= x <= 1: oxygen's factor), given ``full_probability`` =
    ``-expm1(-full_hazard)``, with the logarithm only between two bounds of the scaled
    probability p = 1 - exp(-hazard): x full_probability <= p (1 - exp(-y) is concave
    and 0 at 0) and p <= hazard (1 - exp(-y) <= y). A draw below the lower bound
    (1 - BAND) or above the upper one (1 + BAND) is decided as :func:`fires_within_step`
    decides it (module comment above BAND): for the step's hazards (~0.1) the bounds are
    a few per cent apart, so a hypoxic cell's first attempt takes the logarithm for a few
    per cent of its draws instead of for every draw that is not late at the full hazard."""
    if surely_late(u, full_probability) or u > hazard * (1.0 + BAND):
        return False
    if u < hazard / full_hazard * full_probability * (1.0 - BAND):
        return True
    return event_time(u, hazard) < 1.0


@inline_jit
def next_event(t, u, hazard, probability):
    """``t + event_time(u, hazard)``, the time of a clock started at ``t``, or 2.0 (past
    the step: not queued) without the logarithm when ``surely_late``; ``probability`` =
    ``-expm1(-hazard)``, or 2.0 where it is not known (then the time is computed)."""
    if surely_late(u, probability):
        return 2.0
    return t + event_time(u, hazard)


@inline_jit
def cell_hazards(i, c, death_hazard, division_hazard, oxygen, oxygen_threshold, oxygen_span,
                 concentration, target_bit, kill, arrest, dt_days):
    """(death, division) hazard per step of a cell of clone ``c`` at site ``i``."""
    h_die = death_hazard[c]
    h_divide = division_hazard[c]
    if concentration.shape[0] > 0:
        h_die, h_divide = local_hazards(i, np.int64(c), h_die, h_divide, concentration,
                                        target_bit, kill, arrest, dt_days)
    if oxygen.shape[0] > 0:
        x = (oxygen[i] - oxygen_threshold) / oxygen_span
        h_divide *= 0.0 if x <= 0.0 else (1.0 if x >= 1.0 else x)
    return h_die, h_divide


@inline_jit
def _empty_at(kind, index):
    """kind[index] == EMPTY for an index known to be >= 0: an unsigned index spares the
    check for negative (from-the-end) indices, a fifth of the schedule pass in 3D."""
    return kind[np.uint64(index)] == EMPTY


@inline_jit
def empty_in_column(kind, base, col, line_steps):
    """Whether column ``col`` of the lines around the line starting at ``base`` (itself
    included; ``line_steps`` = their offsets in sites) holds an EMPTY site. Unrolled for
    2D and 3D lattices (3 and 9 lines): the loop cost as much again as the loads."""
    j = base + col
    s = line_steps
    if s.shape[0] == 3:
        return _empty_at(kind, j + s[0]) | _empty_at(kind, j + s[1]) | _empty_at(kind, j + s[2])
    if s.shape[0] == 9:
        return (_empty_at(kind, j + s[0]) | _empty_at(kind, j + s[1])
                | _empty_at(kind, j + s[2]) | _empty_at(kind, j + s[3])
                | _empty_at(kind, j + s[4]) | _empty_at(kind, j + s[5])
                | _empty_at(kind, j + s[6]) | _empty_at(kind, j + s[7])
                | _empty_at(kind, j + s[8]))
    found = False
    for d in range(s.shape[0]):
        found |= _empty_at(kind, j + s[d])
    return found


@inline_jit
def _tumour_cell(i, c, has_empty, plain, no_drug_field, death_hazard, death_probability,
                 division_hazard, attempt_probability, oxygen, oxygen_threshold, oxygen_span,
                 concentration, target_bit, kill, arrest, dt_days, death_key, attempt_key):
    """:func:`schedule`'s draws for the tumour cell of clone c at site i (``has_empty``:
    it has an EMPTY neighbour): its flags and how many events they schedule."""
    f = 0
    events = 0
    if plain:
        h_die = death_hazard[c]
        h_divide = division_hazard[c]
        p_die = death_probability[c]
    else:
        h_die, h_divide = cell_hazards(i, c, death_hazard, division_hazard, oxygen,
                                       oxygen_threshold, oxygen_span, concentration,
                                       target_bit, kill, arrest, dt_days)
        p_die = (death_probability[c] if concentration.shape[0] == 0
                 else -math.expm1(-h_die))
    if uniform(death_key, i) < p_die:
        f |= F_DEATH
        events += 1
    if has_empty:
        f |= F_ACTIVE
        u = uniform(attempt_key, i)
        # no logarithm where the clone's probability decides: where the hazard is the
        # clone's (oxygen saturating, no drug field), and where oxygen alone scales it
        # down, outside two bounds of the scaled probability
        if h_divide == division_hazard[c]:
            fires = fires_within_step(u, h_divide, attempt_probability[c])
        elif no_drug_field:
            fires = fires_scaled_within_step(u, h_divide, division_hazard[c],
                                             attempt_probability[c])
        else:
            fires = event_time(u, h_divide) < 1.0
        if fires:
            f |= F_ATTEMPT
            events += 1
    return f, events


@parallel_jit
def schedule(kind, clone, flags, lo, hi, line_length, line_offsets, death_hazard,
             death_probability, division_hazard, oxygen, oxygen_threshold, oxygen_span,
             concentration, target_bit, kill, arrest, dt_days, clear_dead_hazard,
             clear_necrotic_hazard, death_key, attempt_key, clearance_key, tissue_lo,
             tissue_hi, events_per_line, tumor_by_clone):
    """Pass 1 (module docstring). Writes ``flags`` at every tissue site, the tissue extents
    at the start of the step (``tissue_lo``/``tissue_hi``, also copied to ``lo``/``hi``),
    the number of events scheduled per line and the tumour cells per line and clone.

    A cell dies within the step when its uniform is below ``1 - exp(-hazard)``
    (``death_probability`` per clone, = ``-expm1(-death_hazard)``, unless drug fields make
    the hazard local): the same event as a death time below one step, decided without a
    logarithm per cell, which was half the cost of this pass. First attempts and
    clearances are decided likewise by :func:`fires_within_step` (bit-identical to
    comparing their event times with one step); a hypoxic cell's first attempt (oxygen
    scales its clone's division hazard) by :func:`fires_scaled_within_step`, which takes
    the logarithm for a few per cent of the draws; a cell in a drug field by its event
    time.

    A cell's Moore neighbours are the columns ``col - 1 .. col + 1`` of the lines around
    its own (``line_offsets``, lattice.neighbour_line_offsets), the cell itself aside,
    which is not EMPTY: so "has an EMPTY neighbour" is an OR of three per-column flags,
    each computed once per column of the line (3 loads per site in 2D, 9 in 3D, instead of
    8 or 26 per cell).

    Each line's columns are first sorted, branch-free, into tumour and debris lists, and
    each list is worked in a loop of its own: in a tumour's necrotic core, where tumour
    cells and debris mix at random, a branch per site on the kind mispredicted at about
    every other site (:func:`_schedule_line`). The lines are
    worked in PARALLEL_CHUNKS stretches of consecutive lines, each with its own scratch;
    each line writes only its own sites and entries, so the stretches do not change the
    result."""
    n_lines = lo.shape[0]
    line_steps = line_offsets * line_length
    no_drug_field = concentration.shape[0] == 0
    plain = no_drug_field and oxygen.shape[0] == 0
    attempt_probability = -np.expm1(-division_hazard)
    clear_dead_probability = -math.expm1(-clear_dead_hazard)
    clear_necrotic_probability = -math.expm1(-clear_necrotic_hazard)
    # per stretch: a line's tumour and debris columns and its columns' EMPTY flags, each
    # row ending with at least 64 unused bytes (no cache line shared between threads)
    columns = np.empty((PARALLEL_CHUNKS, 2, line_length + 16), np.int32)
    empty = np.empty((PARALLEL_CHUNKS, line_length + 64), np.bool_)
    for q in prange(PARALLEL_CHUNKS):
        c = np.int64(q)  # (a prange index is unsigned: another copy)
        tumour_cols, debris_cols, empty_cols = columns[c, 0], columns[c, 1], empty[c]
        for line in range(c * n_lines // PARALLEL_CHUNKS, (c + 1) * n_lines // PARALLEL_CHUNKS):
            for k in range(tumor_by_clone.shape[1]):
                tumor_by_clone[line, k] = 0
            first, last, count = _schedule_line(
                kind, clone, flags, line, line * line_length,
                max(lo[line], 1), min(hi[line] + 1, line_length - 1), line_steps, plain,
                no_drug_field, death_hazard, death_probability, division_hazard,
                attempt_probability, oxygen, oxygen_threshold, oxygen_span, concentration,
                target_bit, kill, arrest, dt_days, clear_dead_hazard, clear_necrotic_hazard,
                clear_dead_probability, clear_necrotic_probability, death_key, attempt_key,
                clearance_key, tumor_by_clone, tumour_cols, debris_cols, empty_cols)
            tissue_lo[line] = first
            tissue_hi[line] = last
            lo[line] = first
            hi[line] = last
            events_per_line[line] = count


@nrt_free_jit
def _schedule_line(kind, clone, flags, line, base, start, stop, line_steps, plain,
                   no_drug_field, death_hazard, death_probability, division_hazard,
                   attempt_probability, oxygen, oxygen_threshold, oxygen_span, concentration,
                   target_bit, kill, arrest, dt_days, clear_dead_hazard, clear_necrotic_hazard,
                   clear_dead_probability, clear_necrotic_probability, death_key, attempt_key,
                   clearance_key, tumor_by_clone, tumour_cols, debris_cols, empty):
    """:func:`schedule`'s work on columns start .. stop - 1 of one line (starting at site
    ``base``; ``line_steps``: the offsets of the lines around it, in sites). Its columns
    are sorted, branch-free, into tumour and debris lists, and each of its columns' EMPTY
    flag (the columns of the lines around included) set aside (scratch: ``tumour_cols``,
    ``debris_cols``, ``empty``, a line's length each); then the debris's clearances and
    the tumour cells' draws, each list in a loop of its own. Returns (first tissue column,
    last, events scheduled); compiled without reference counting (``kernels.jit``).

    Against a sweep of the line with a branch per site on the kind (until 2026-12-07):
    the full model's tumour phase at 1000 x 1000 (a 226k-cell tumour, a 192k-site
    necrotic and dead core) 1.39-1.43x faster at 1 thread and 1.34x at 2, and the
    tumour-only model's solid 538k-cell disc, whose branches were predictable, in the same
    time (benchmarks/README.md, ``tumor_phase_against.py``)."""
    n_tumour = 0
    n_debris = 0
    for col in range(start, stop):
        k = kind[np.uint64(base + col)]  # (unsigned: no negative-index check)
        tumour_cols[np.uint64(n_tumour)] = col
        n_tumour += k == TUMOR
        debris_cols[np.uint64(n_debris)] = col
        n_debris += (k == DEAD) | (k == NECROTIC)
    for col in range(start - 1, stop + 1):
        empty[np.uint64(col)] = empty_in_column(kind, base, col, line_steps)
    count = 0
    for q in range(n_debris):
        i = base + debris_cols[q]
        ui = np.uint64(i)
        dead = kind[ui] == DEAD
        fires = fires_within_step(uniform(clearance_key, i),
                                  clear_dead_hazard if dead else clear_necrotic_hazard,
                                  clear_dead_probability if dead else clear_necrotic_probability)
        flags[ui] = F_CLEAR if fires else 0
        count += fires
    for q in range(n_tumour):
        col = tumour_cols[q]
        i = base + col
        ui = np.uint64(i)
        c = clone[ui]
        tumor_by_clone[line, c] += 1
        f, events = _tumour_cell(
            i, c, empty[np.uint64(col - 1)] | empty[np.uint64(col)] | empty[np.uint64(col + 1)],
            plain, no_drug_field, death_hazard, death_probability, division_hazard,
            attempt_probability, oxygen, oxygen_threshold, oxygen_span, concentration,
            target_bit, kill, arrest, dt_days, death_key, attempt_key)
        flags[ui] = f
        count += events
    first = NO_EXTENT_LO
    last = NO_EXTENT_HI
    if n_tumour > 0:
        first = tumour_cols[0]
        last = tumour_cols[n_tumour - 1]
    if n_debris > 0:
        first = min(first, debris_cols[0])
        last = max(last, debris_cols[n_debris - 1])
    return first, last, count


# ------------------------------------------------------------------ the event queue
# Four parallel arrays (time, event kind, site, time the event was scheduled) kept as a
# binary min-heap in ``run_events``.
@inline_jit
def _before(times, kinds, sites, a, b):
    """Heap order: time, then event kind, then site."""
    if times[a] != times[b]:
        return times[a] < times[b]
    if kinds[a] != kinds[b]:
        return kinds[a] < kinds[b]
    return sites[a] < sites[b]


@inline_jit
def _swap(times, kinds, sites, scheduled, a, b):
    times[a], times[b] = times[b], times[a]
    kinds[a], kinds[b] = kinds[b], kinds[a]
    sites[a], sites[b] = sites[b], sites[a]
    scheduled[a], scheduled[b] = scheduled[b], scheduled[a]


@inline_jit
def _sift_down(times, kinds, sites, scheduled, n, j):
    while True:
        left = 2 * j + 1
        if left >= n:
            return
        best = left
        if left + 1 < n and _before(times, kinds, sites, left + 1, left):
            best = left + 1
        if not _before(times, kinds, sites, best, j):
            return
        _swap(times, kinds, sites, scheduled, best, j)
        j = best


@inline_jit
def _sift_up(times, kinds, sites, scheduled, j):
    while j > 0:
        parent = (j - 1) // 2
        if not _before(times, kinds, sites, j, parent):
            return
        _swap(times, kinds, sites, scheduled, j, parent)
        j = parent


RADIX_BITS = 11


@jit
def time_order(times, kinds):
    """The permutation that sorts events given in (site, kind) order by (time, kind, site):
    a stable counting sort by kind, then a stable least-significant-digit radix sort by the
    bit pattern of the time (times are finite and non-negative, whose bit patterns order as
    the numbers do). O(n), where a comparison sort or a heap of the ~10^4 events a step
    starts with cost most of the event loop."""
    n = times.shape[0]
    order = np.empty(n, np.int64)
    spare = np.empty(n, np.int64)
    start = np.zeros(EV_ATTEMPT + 2, np.int64)
    for j in range(n):
        start[kinds[j] + 1] += 1
    for k in range(EV_ATTEMPT + 1):
        start[k + 1] += start[k]
    for j in range(n):
        order[start[kinds[j]]] = j
        start[kinds[j]] += 1
    bits = times.view(np.uint64)
    n_buckets = 1 << RADIX_BITS
    mask = np.uint64(n_buckets - 1)
    count = np.empty(n_buckets + 1, np.int64)
    for shift in range(0, 64, RADIX_BITS):
        count[:] = 0
        for j in range(n):
            count[np.int64((bits[order[j]] >> np.uint64(shift)) & mask) + 1] += 1
        top = 0
        for d in range(n_buckets + 1):  # (not count.max(): ~0.3 s more to compile)
            top = max(top, count[d])
        if top == n:
            continue  # every key has this digit: the pass would not move anything
        for d in range(n_buckets):
            count[d + 1] += count[d]
        for j in range(n):
            digit = np.int64((bits[order[j]] >> np.uint64(shift)) & mask)
            spare[count[digit]] = order[j]
            count[digit] += 1
        order, spare = spare, order
    return order


@inline_jit
def _flagged_columns(flags, base, first, last, columns):
    """The columns among ``first..last`` of the line starting at ``base`` whose site has an
    event flagged (F_DEATH, F_ATTEMPT or F_CLEAR; most sites have none, and the flags of
    non-tissue sites are stale: callers pass the tissue extents), in order, into
    ``columns``; returns how many. Branch-free over a slice (a loop over runtime indices
    got wraparound code and a branch per site: 2.8 against ~1 ns per site)."""
    line_flags = flags[base + first:base + last + 1]
    n = 0
    for q in range(line_flags.shape[0]):
        columns[n] = first + q
        n += (line_flags[q] & (F_DEATH | F_ATTEMPT | F_CLEAR)) != 0
    return n


@nrt_free_jit
def _collect_lines(kind, clone, flags, tissue_lo, tissue_hi, line_length, line_start,
                   line_lo, line_hi, death_hazard, division_hazard, oxygen, oxygen_threshold,
                   oxygen_span, concentration, target_bit, kill, arrest, dt_days,
                   clear_dead_hazard, clear_necrotic_hazard, death_key, attempt_key,
                   clearance_key, initial_time, initial_kind, initial_site, columns):
    """The events ``schedule`` flagged on lines line_lo .. line_hi - 1, recomputed from the
    same keys, in (site, kind) order from entry ``line_start[line_lo]`` of the queue
    arrays (compiled without reference counting: ``kernels.jit``)."""
    m = line_start[line_lo]
    for line in range(line_lo, line_hi):
        if line_start[line + 1] == line_start[line]:
            continue
        base = line * line_length
        n_flagged = _flagged_columns(flags, base, max(tissue_lo[line], 0),
                                     min(tissue_hi[line], line_length - 1), columns)
        for q in range(n_flagged):
            i = base + columns[q]
            f = flags[i]
            k = kind[i]
            if k == TUMOR and (f & (F_DEATH | F_ATTEMPT)) != 0:
                h_die, h_divide = cell_hazards(i, clone[i], death_hazard, division_hazard,
                                               oxygen, oxygen_threshold, oxygen_span,
                                               concentration, target_bit, kill, arrest,
                                               dt_days)
                if f & F_DEATH:
                    initial_time[m] = event_time(uniform(death_key, i), h_die)
                    initial_kind[m] = EV_DEATH
                    initial_site[m] = i
                    m += 1
                if f & F_ATTEMPT:
                    initial_time[m] = event_time(uniform(attempt_key, i), h_divide)
                    initial_kind[m] = EV_ATTEMPT
                    initial_site[m] = i
                    m += 1
            elif (k == DEAD or k == NECROTIC) and (f & F_CLEAR) != 0:
                h = clear_dead_hazard if k == DEAD else clear_necrotic_hazard
                initial_time[m] = event_time(uniform(clearance_key, i), h)
                initial_kind[m] = EV_CLEAR
                initial_site[m] = i
                m += 1


@parallel_jit
def _collect_in_parallel(kind, clone, flags, tissue_lo, tissue_hi, line_length, line_start,
                         death_hazard, division_hazard, oxygen, oxygen_threshold, oxygen_span,
                         concentration, target_bit, kill, arrest, dt_days, clear_dead_hazard,
                         clear_necrotic_hazard, death_key, attempt_key, clearance_key,
                         initial_time, initial_kind, initial_site, columns):
    """:func:`_collect_lines` on ``columns.shape[0]`` chunks of consecutive lines at once
    (one scratch row of ``columns`` each): every line writes its own stretch of the queue,
    so the result does not depend on the chunks. Serial, this took ~1.4 ms of a 1000x1000
    step at any thread count."""
    n_lines = line_start.shape[0] - 1
    n_chunks = columns.shape[0]
    for q in prange(n_chunks):
        c = np.int64(q)  # (a prange index is unsigned: another copy)
        _collect_lines(kind, clone, flags, tissue_lo, tissue_hi, line_length, line_start,
                       c * n_lines // n_chunks, (c + 1) * n_lines // n_chunks, death_hazard,
                       division_hazard, oxygen, oxygen_threshold, oxygen_span, concentration,
                       target_bit, kill, arrest, dt_days, clear_dead_hazard,
                       clear_necrotic_hazard, death_key, attempt_key, clearance_key,
                       initial_time, initial_kind, initial_site, columns[c])


@jit
def _grow(a, size):
    out = np.empty(size, a.dtype)
    for i in range(a.shape[0]):  # not a slice copy: its shape check compiles ~1.4 s more
        out[i] = a[i]
    return out


@jit
def run_events(kind, clone, flags, births, lo, hi, tissue_lo, tissue_hi, line_length,
               offsets, events_per_line, death_hazard, division_hazard, oxygen, oxygen_threshold,
               oxygen_span, concentration, target_bit, kill, arrest, dt_days,
               clear_dead_hazard, clear_necrotic_hazard, mutation_probability, n_targets,
               death_key, attempt_key, clearance_key, target_key, mutation_key,
               counts, tumor_by_clone):
    """Pass 2 (module docstring): queue the events ``schedule`` flagged and apply every
    event of the step in time order. ``counts`` (int64[5]) receives the step's births,
    deaths, mutation events and divisions of parents that could still mutate (the D of
    Binomial(D, u)), and 1 in ``counts[4]`` if some site saw more than MAX_BIRTHS births
    in the step (the stale-event test below would then be ambiguous: the caller must
    refuse the step); tumour cells per line and clone are kept up to date; ``lo``/``hi``
    widen to take in daughters.

    ``births`` (uint8 per site, scratch) counts the births at a site within the step. It is
    read only where ``flags`` has F_BORN, which the first birth of the step sets and
    ``schedule`` clears at every tumour cell, so it needs no reset between steps. An
    ATTEMPT event carries the count of its site when it was scheduled (0 for the step's
    first events); a different count when it fires means the cell that scheduled it has
    died and another was born there since (exact: the count can only grow, and a count
    that would pass MAX_BIRTHS is reported instead of wrapping)."""
    n_lines = lo.shape[0]
    # per-clone probabilities of an event within a step, for ``surely_late`` in
    # ``next_event`` and below. Without drug fields a cell's death hazard is its clone's
    # and oxygen can only lower its division hazard (a factor in [0, 1]): a draw surely
    # late at the clone's hazard is late at the cell's too (the computed time -log1p(-u) / h
    # only grows as h falls), so the clone's probabilities serve as bounds. Drug fields
    # can raise a hazard: 2.0 there (never surely late; every time computed).
    no_drug_field = concentration.shape[0] == 0
    p_die = (-np.expm1(-death_hazard) if no_drug_field
             else np.full(death_hazard.shape[0], 2.0))
    p_divide = (-np.expm1(-division_hazard) if no_drug_field
                else np.full(division_hazard.shape[0], 2.0))
    death_key = np.uint64(death_key)  # keys from Python may arrive as int64; XORed below
    attempt_key = np.uint64(attempt_key)
    clearance_key = np.uint64(clearance_key)
    target_key = np.uint64(target_key)
    mutation_key = np.uint64(mutation_key)
    # the events drawn by ``schedule``, recomputed from the same keys, in (site, kind) order:
    # each line's from its offset in the queue (the counts of ``schedule``)
    line_start = np.empty(n_lines + 1, np.int64)
    line_start[0] = 0
    for line in range(n_lines):
        line_start[line + 1] = line_start[line] + events_per_line[line]
    n_initial = line_start[n_lines]
    initial_time = np.empty(n_initial, np.float64)
    initial_kind = np.empty(n_initial, np.int8)
    initial_site = np.empty(n_initial, np.int64)
    # each chunk's column scratch ends with at least 64 unused bytes (no shared cache line)
    columns = np.empty((PARALLEL_CHUNKS, line_length + 8), np.int64)
    _collect_in_parallel(kind, clone, flags, tissue_lo, tissue_hi, line_length, line_start,
                         death_hazard, division_hazard, oxygen, oxygen_threshold, oxygen_span,
                         concentration, target_bit, kill, arrest, dt_days, clear_dead_hazard,
                         clear_necrotic_hazard, death_key, attempt_key, clearance_key,
                         initial_time, initial_kind, initial_site, columns)
    order = time_order(initial_time, initial_kind)
    # events drawn during the step: a binary heap, merged with the sorted initial ones
    capacity = max(1024, n_initial)
    times = np.empty(capacity, np.float64)
    kinds = np.empty(capacity, np.int8)
    sites = np.empty(capacity, np.int64)
    scheduled = np.empty(capacity, np.uint8)   # the site's birth count when scheduled
    progress = np.zeros(P_FIELDS, np.int64)
    while not _apply_events(kind, clone, flags, births, lo, hi, line_length, offsets,
                            death_hazard, division_hazard, oxygen, oxygen_threshold,
                            oxygen_span, concentration, target_bit, kill, arrest, dt_days,
                            clear_dead_hazard, mutation_probability, n_targets, death_key,
                            attempt_key, clearance_key, target_key, mutation_key,
                            tumor_by_clone, p_die, p_divide, initial_time, initial_kind,
                            initial_site, order, times, kinds, sites, scheduled, progress):
        size = 2 * times.shape[0]
        times = _grow(times, size)
        kinds = _grow(kinds, size)
        sites = _grow(sites, size)
        scheduled = _grow(scheduled, size)
    counts[0] = progress[P_BIRTHS]
    counts[1] = progress[P_DEATHS]
    counts[2] = progress[P_MUTATIONS]
    counts[3] = progress[P_MUTABLE]
    counts[4] = progress[P_OVERFLOW]


# ``progress`` of :func:`_apply_events`: where the merge stands and the step's counts
P_INITIAL, P_HEAP, P_BIRTHS, P_DEATHS, P_MUTATIONS, P_MUTABLE, P_OVERFLOW, P_FIELDS = range(8)


@nrt_free_jit
def _apply_events(kind, clone, flags, births, lo, hi, line_length, offsets, death_hazard,
                  division_hazard, oxygen, oxygen_threshold, oxygen_span, concentration,
                  target_bit, kill, arrest, dt_days, clear_dead_hazard, mutation_probability,
                  n_targets, death_key, attempt_key, clearance_key, target_key, mutation_key,
                  tumor_by_clone, p_die, p_divide, initial_time, initial_kind, initial_site,
                  order, times, kinds, sites, scheduled, progress):
    """The event loop of :func:`run_events`: merges the sorted initial events with the heap
    (``times``, ``kinds``, ``sites``, ``scheduled``) and applies them in time order, from
    where ``progress`` left off. Returns True when every event is applied, False (state
    saved in ``progress``) when the heap might not hold what the next event can push: the
    caller grows it and calls again. Compiled without Numba's reference counting
    (``nrt_free_jit``: it allocates nothing), which otherwise went around the array-taking
    helpers at every event."""
    n_initial = initial_time.shape[0]
    n_neighbours = offsets.shape[0]
    full_mask = (1 << n_targets) - 1
    p_clear_dead = -math.expm1(-clear_dead_hazard)
    q = progress[P_INITIAL]
    n = progress[P_HEAP]
    n_births = progress[P_BIRTHS]
    n_deaths = progress[P_DEATHS]
    n_mutations = progress[P_MUTATIONS]
    n_mutable = progress[P_MUTABLE]
    overflow = progress[P_OVERFLOW]
    done = True
    while q < n_initial or n > 0:
        if n + 3 + n_neighbours >= times.shape[0]:
            done = False
            break
        if q < n_initial:
            j = order[q]
            t = initial_time[j]
            ev = initial_kind[j]
            i = initial_site[j]
        if q == n_initial or (n > 0 and (times[0] < t or (times[0] == t and (
                kinds[0] < ev or (kinds[0] == ev and sites[0] < i))))):
            t = times[0]
            ev = kinds[0]
            i = sites[0]
            owner = scheduled[0]
            n -= 1
            if n > 0:
                _swap(times, kinds, sites, scheduled, 0, n)
                _sift_down(times, kinds, sites, scheduled, n, 0)
        else:
            owner = 0
            q += 1
        line = i // line_length
        if ev == EV_DEATH:
            kind[i] = DEAD
            flags[i] &= F_BORN  # the site's birth count stays readable: see ``births``
            n_deaths += 1
            tumor_by_clone[line, clone[i]] -= 1
            salt = time_salt(t)  # this event's draws are uniform_at(key, site, t)
            tc = next_event(t, uniform(clearance_key ^ salt, i), clear_dead_hazard,
                            p_clear_dead)
            if tc < 1.0:
                n = _push(times, kinds, sites, scheduled, n, tc, EV_CLEAR, i, 0)
        elif ev == EV_CLEAR:
            kind[i] = EMPTY
            attempt_salted = attempt_key ^ time_salt(t)
            for d in range(n_neighbours):
                y = i + offsets[d]
                if kind[y] == TUMOR and (flags[y] & F_ACTIVE) == 0:
                    flags[y] |= F_ACTIVE
                    c = clone[y]
                    u = uniform(attempt_salted, y)
                    if surely_late(u, p_divide[c]):
                        continue  # most activated clocks: not within the step
                    _, h_divide = cell_hazards(y, c, death_hazard, division_hazard, oxygen,
                                               oxygen_threshold, oxygen_span, concentration,
                                               target_bit, kill, arrest, dt_days)
                    ta = t + event_time(u, h_divide)
                    if ta < 1.0:
                        n = _push(times, kinds, sites, scheduled, n, ta, EV_ATTEMPT, y,
                                  _birth_count(flags, births, y))
        else:  # EV_ATTEMPT
            if kind[i] != TUMOR or _birth_count(flags, births, i) != owner:
                continue  # stale: the cell that scheduled it has died
            n_free = 0
            for d in range(n_neighbours):
                n_free += _empty_at(kind, i + offsets[d])
            if n_free == 0:
                flags[i] &= NOT_ACTIVE  # dormant until a neighbour clears
                continue
            salt = time_salt(t)
            z = nth_neighbour_of_kind(kind, i, offsets, EMPTY,
                                      min(int(uniform(target_key ^ salt, i) * n_free),
                                          n_free - 1))
            daughter = clone[i]
            lacking = full_mask & ~daughter
            zline = z // line_length
            if lacking != 0:
                n_mutable += 1
                u = uniform(mutation_key ^ salt, z)
                if u < mutation_probability:
                    n_lacking = 0
                    for b in range(n_targets):
                        if lacking & (1 << b):
                            n_lacking += 1
                    choice = min(int(u / mutation_probability * n_lacking), n_lacking - 1)
                    daughter = daughter | (1 << nth_set_bit(lacking, choice))
                    n_mutations += 1
            kind[z] = TUMOR
            clone[z] = daughter
            count = _birth_count(flags, births, z) + 1
            if count > MAX_BIRTHS:
                overflow = 1
                count = MAX_BIRTHS
            births[z] = count
            flags[z] = F_ACTIVE | F_BORN
            n_births += 1
            tumor_by_clone[zline, daughter] += 1
            col = z - zline * line_length
            if col < lo[zline]:
                lo[zline] = col
            if col > hi[zline]:
                hi[zline] = col
            h_die, h_divide = cell_hazards(z, daughter, death_hazard, division_hazard, oxygen,
                                           oxygen_threshold, oxygen_span, concentration,
                                           target_bit, kill, arrest, dt_days)
            td = next_event(t, uniform(death_key ^ salt, z), h_die, p_die[daughter])
            if td < 1.0:
                n = _push(times, kinds, sites, scheduled, n, td, EV_DEATH, z, count)
            ta = next_event(t, uniform(attempt_key ^ salt, z), h_divide, p_divide[daughter])
            if ta < 1.0:
                n = _push(times, kinds, sites, scheduled, n, ta, EV_ATTEMPT, z, count)
            _, h_parent = cell_hazards(i, clone[i], death_hazard, division_hazard, oxygen,
                                       oxygen_threshold, oxygen_span, concentration,
                                       target_bit, kill, arrest, dt_days)
            ta = next_event(t, uniform(attempt_key ^ salt, i), h_parent, p_divide[clone[i]])
            if ta < 1.0:
                # no birth at i since the check above: its count is still ``owner``
                n = _push(times, kinds, sites, scheduled, n, ta, EV_ATTEMPT, i, owner)
    progress[P_INITIAL] = q
    progress[P_HEAP] = n
    progress[P_BIRTHS] = n_births
    progress[P_DEATHS] = n_deaths
    progress[P_MUTATIONS] = n_mutations
    progress[P_MUTABLE] = n_mutable
    progress[P_OVERFLOW] = overflow
    return done


@inline_jit
def _birth_count(flags, births, i):
    """Births at site ``i`` so far in this step (0 unless its F_BORN flag is set)."""
    return int(births[i]) if (flags[i] & F_BORN) != 0 else 0


@inline_jit
def _push(times, kinds, sites, scheduled, n, t, ev, site, owner):
    times[n] = t
    kinds[n] = ev
    sites[n] = site
    scheduled[n] = owner
    _sift_up(times, kinds, sites, scheduled, n)
    return n + 1
