"""The immune and microenvironment kernels against the plain-Python references in
naive.py, on small random 2D and 3D lattices (fast enough with NUMBA_DISABLE_JIT=1).

Random inputs come from numpy's Generator (test data only); every decision the kernels
make is drawn from the counter-based hash, so the kernel and the reference must agree
exactly: same sites, same kinds, same attributes."""
import math

import numba
import numpy as np
import pytest

import naive
import naive as ref
from kernels import immune as agents_k
from kernels import lattice, rng
from kernels import microenvironment as micro
from kernels import multigrid
from kernels import t_cells as t_cells_k
from kernels import team as team_k
from kernels.jit import PARALLEL_CHUNKS
from kernels.lattice import DEAD, EMPTY, NECROTIC, SUPPRESSIVE, T_CELL, TUMOR, VESSEL, WALL
from conftest import JIT_DISABLED
from simulator.model.immune import moore_inverse_lengths

SHAPES = [(13, 11), (7, 6, 5)]


def _lattice(dims, seed, tumour=0.4, dead=0.05, vessel=0.03):
    """A padded kind grid with a WALL border and random interior kinds."""
    g = np.random.default_rng(seed)
    padded = tuple(n + 2 for n in dims)
    kind = np.full(padded, WALL, np.uint8)
    inner = tuple(slice(1, -1) for _ in dims)
    u = g.random(dims)
    interior = np.full(dims, EMPTY, np.uint8)
    interior[u < tumour] = TUMOR
    interior[(u >= tumour) & (u < tumour + dead)] = DEAD
    interior[(u >= tumour + dead) & (u < tumour + dead + vessel)] = VESSEL
    kind[inner] = interior
    clone = np.zeros(padded, np.uint8)
    clone[kind == TUMOR] = g.integers(0, 2, int((kind == TUMOR).sum()))
    return kind, clone, g


def _agents(kind, g, count, agent_kind):
    empty = np.flatnonzero(kind.ravel() == EMPTY)
    sites = np.sort(g.choice(empty, size=min(count, empty.size), replace=False)).astype(np.int64)
    kind.reshape(-1)[sites] = agent_kind
    return sites


def _offsets(padded):
    return lattice.moore_offsets(padded)


def _key(stream, step=3, seed=11):
    return naive.step_key(naive.stream_key(seed, 0, stream), step)


def _migrate(kind, field, sites, stops, first, last, bias, move_key, prio_key, agent_kind,
             stop_kind=TUMOR, first_tag=1, proposal=None, clone=None, seen=None, chunks=None,
             team=None):
    """The kernel on a padded grid (changed in place); returns the arrival substeps.
    ``seen`` (one flag per clone of ``clone``): the stop cells that stop; None: all.
    ``chunks``: cut the active list into that many chunks (default: as the engine does)
    and return (arrivals, substeps, substeps whose claims ran by parity, times the chunks
    were cut again) instead; ``team``: the threads sharing them (default: every Numba
    thread; the engine's choice, ``kernels.team.team_size``, without ``chunks``)."""
    flat = kind.reshape(-1)
    if proposal is None:
        proposal = np.zeros(flat.size, np.uint16)  # the engine's dtype
    arrived = np.full(sites.size, -7, np.int64)
    clone = np.zeros(flat.size, np.uint8) if clone is None else clone.reshape(-1)
    seen = np.empty(0, np.uint8) if seen is None else np.asarray(seen, np.uint8)
    args = (flat, clone, seen, np.empty(0) if field is None else field.reshape(-1), proposal,
            sites, sites.size, stops, first, last, stop_kind, _offsets(kind.shape),
            moore_inverse_lengths(kind.ndim), bias, first_tag, np.uint64(move_key),
            np.uint64(prio_key), agent_kind, arrived)
    if chunks is None:
        agents_k.migrate(*args, agents_k.chunks_for_agents(first, last,
                                                           numba.get_num_threads()),
                         team_k.team_size())
        return arrived
    team = min(numba.get_num_threads(), team or numba.get_num_threads())
    substeps, by_parity, recut = agents_k.migrate(*args, chunks, team)
    return arrived, substeps, by_parity, recut


def _naive_migrate(kind, field, sites, stops, first, last, bias, move_key, prio_key,
                   agent_kind, stop_kind=TUMOR, clone=None, seen=None):
    """The reference, substep by substep: agent a moves in substeps first[a] <= s < last[a]
    (mobility 0 outside that window, 2 if it stops next to ``stop_kind``, else 1)."""
    sites = [int(i) for i in sites]
    arrived = [0] * len(sites)
    for s in range(int(max(last, default=0))):
        mobility = [0 if not first[a] <= s < last[a] else (2 if stops[a] else 1)
                    for a in range(len(sites))]
        before = sites
        sites = ref.migrate_substep(kind, sites, mobility, field, stop_kind, bias,
                                    ref.substep_key(move_key, s), ref.substep_key(prio_key, s),
                                    agent_kind, clone, seen)
        arrived = [s + 1 if new != old else was for new, old, was in zip(sites, before, arrived)]
    return sites, arrived


@pytest.mark.parametrize("select", ["_nth_set_bit_broadword", "_nth_set_bit_deposit"])
def test_nth_set_bit_matches_naive(select):
    """Every pick of every 8-bit mask (2D neighbourhoods), then random 26-bit masks (3D) and
    random masks of up to 63 bits (the byte-wise selection's every byte, carries included):
    the broadword selection and PDEP (where this CPU has it: ``lattice.FAST_DEPOSIT``, which
    picks the one ``nth_set_bit`` is)."""
    if select == "_nth_set_bit_deposit" and not lattice.FAST_DEPOSIT:
        pytest.skip("no fast PDEP on this CPU (or JIT off): nth_set_bit is the broadword one")
    nth_set_bit = getattr(lattice, select)
    cases = [(m, p) for m in range(1, 256) for p in range(bin(m).count("1"))]
    generator = np.random.default_rng(5)
    masks = list(generator.integers(1, 1 << 26, 500)) + list(generator.integers(1, 1 << 63, 200))
    masks += [(1 << 63) - 1, 1 << 62, 0xFF << 48]
    for m in masks:
        cases += [(int(m), p) for p in range(bin(int(m)).count("1"))]
    for mask, pick in cases:
        assert nth_set_bit(mask, pick) == naive.nth_set_bit(mask, pick), (mask, pick)


@numba.njit
def _compiled_bit_count(mask):
    return lattice.bit_count(mask)  # (from Python, bit_count is its plain-Python version)


@numba.njit
def _compiled_masks(kind, i, width, first, second, third):
    return lattice.moore_masks_2d(kind, i, width, first, second, third)


def test_neighbour_kind_masks_match_the_offsets_loop():
    """The 2D neighbours' masks of three kinds (compiled: one vector compare each; plain
    Python) are the masks the loop over ``moore_offsets`` gives, at every interior site of a
    random lattice (every kind beside every position), for every kind and -1 (none); the
    compiled bit_count counts a mask's bits."""
    generator = np.random.default_rng(11)
    padded = (9, 12)
    kind = generator.integers(0, 8, padded[0] * padded[1]).astype(np.uint8)
    offsets = lattice.moore_offsets(padded)
    width = int(offsets[6])
    for i in lattice.interior(np.arange(kind.size).reshape(padded), padded).ravel():
        for wanted in range(-1, 8):
            others = (wanted + 3) % 9 - 1, (wanted + 6) % 9 - 1
            expected = tuple(sum(1 << d for d in range(8) if kind[i + offsets[d]] == w)
                             for w in (wanted, *others))
            assert lattice.moore_masks_2d(kind, int(i), width, wanted, *others) == expected
            assert _compiled_masks(kind, i, width, wanted, *others) == expected, (i, wanted)
            assert _compiled_bit_count(expected[0]) == bin(expected[0]).count("1")


@numba.njit
def _compiled_steepest(field, i, width, inv_length, free):
    return lattice.steepest_free_2d(field, i, width, inv_length, free)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_steepest_free_neighbour_matches_naive(dtype):
    """steepest_free_2d - compiled (one vector of the eight rises) and plain Python - picks
    what the reference picks from coordinates, at every interior site and under every 8-bit
    free mask, on fields with many equal values (ties between neighbours, flat spots,
    nothing rising), random ones, tiny ones and falling ones; float32 as the engine's
    chemokine, float64 as the reference tests' fields."""
    g = np.random.default_rng(3)
    padded = (7, 9)
    width = int(lattice.moore_offsets(padded)[6])
    assert width == padded[1]
    inverse = moore_inverse_lengths(2)
    size = padded[0] * padded[1]
    fields = (g.integers(0, 3, size), g.random(size), np.zeros(size), g.random(size) * 1e-39,
              -g.random(size))
    sites = lattice.interior(np.arange(size).reshape(padded), padded).ravel()
    picks = set()
    for field in fields:
        field = field.astype(dtype)
        for i in sites:
            coord = naive._coord(padded, i)
            for free in range(256):
                expected = naive.steepest_free_neighbour(
                    field.reshape(padded), coord, {d for d in range(8) if free >> d & 1})
                assert lattice.steepest_free_2d(field, int(i), width, inverse, free) \
                    == expected, (field[i], i, free)
                assert _compiled_steepest(field, i, width, inverse, free) == expected, \
                    (field[i], i, free)
                picks.add(expected)
    assert picks == set(range(-1, 8))  # every answer occurred


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("bias, with_field", [(0.0, False), (0.6, True), (1.0, True)])
def test_migration_matches_naive(dims, bias, with_field):
    """Random stopping rules and per-agent move windows (some agents never move, some start
    late, some stop early): same sites, lattice and arrival substeps as the reference."""
    kind, _, g = _lattice(dims, 1, tumour=0.2)
    sites = _agents(kind, g, 25, T_CELL)
    n = sites.size
    stops = g.random(n) < 0.5
    first = np.where(g.random(n) < 0.3, g.integers(0, 4, n), 0)
    last = np.where(g.random(n) < 0.2, 0, np.where(g.random(n) < 0.5, g.integers(1, 6, n), 6))
    field = g.random(kind.shape) if with_field else None
    move_key, prio_key = _key(rng.STREAM_T_CELL_MOVE), _key(rng.STREAM_MOVE_PRIORITY)
    expected_kind = kind.copy()
    expected_sites, expected_arrived = _naive_migrate(expected_kind, field, sites, stops, first,
                                                      last, bias, move_key, prio_key, T_CELL)
    initial = sites.copy()
    arrived = _migrate(kind, field, sites, stops, first, last, bias, move_key, prio_key, T_CELL)
    np.testing.assert_array_equal(sites, expected_sites)
    np.testing.assert_array_equal(kind, expected_kind)
    np.testing.assert_array_equal(arrived, expected_arrived)
    assert np.any(sites != initial)  # the comparison exercised moves


@pytest.mark.parametrize("dims", SHAPES)
def test_migration_stops_only_beside_seen_cells_matches_naive(dims):
    """Recognition: tumour cells of clone 1 are unseen (``seen = [1, 0]``), so an agent
    beside only clone-1 cells keeps moving. Same result as the reference, and it differs
    from the run in which every clone is seen (the screen changed some moves)."""
    kind, clone, g = _lattice(dims, 9, tumour=0.25)
    sites = _agents(kind, g, 30, T_CELL)
    n = sites.size
    stops = np.ones(n, np.bool_)
    first, last = np.zeros(n, np.int64), np.full(n, 6)
    field = g.random(kind.shape)
    move_key, prio_key = _key(rng.STREAM_T_CELL_MOVE), _key(rng.STREAM_MOVE_PRIORITY)
    seen = np.array([1, 0], np.uint8)
    expected_kind = kind.copy()
    expected_sites, expected_arrived = _naive_migrate(expected_kind, field, sites, stops, first,
                                                      last, 0.5, move_key, prio_key, T_CELL,
                                                      clone=clone, seen=seen)
    every_kind, every_sites = kind.copy(), sites.copy()
    _migrate(every_kind, field, every_sites, stops, first, last, 0.5, move_key, prio_key,
             T_CELL, clone=clone, seen=np.array([1, 1], np.uint8))
    arrived = _migrate(kind, field, sites, stops, first, last, 0.5, move_key, prio_key, T_CELL,
                       clone=clone, seen=seen)
    np.testing.assert_array_equal(sites, expected_sites)
    np.testing.assert_array_equal(kind, expected_kind)
    np.testing.assert_array_equal(arrived, expected_arrived)
    assert np.any(sites != every_sites)


def test_t_cell_passes_an_unseen_tumour_cell_and_stops_at_a_seen_one():
    """A corridor: the T cell starts beside an unseen tumour cell (clone 1) and, with no
    other way, walks on until it stands beside the seen one (clone 0) at the far end."""
    kind = np.full((3, 9), WALL, np.uint8)
    kind[1, 1:-1] = EMPTY
    kind[1, 1], kind[1, 7] = TUMOR, TUMOR
    clone = np.zeros(kind.shape, np.uint8)
    clone[1, 1] = 1
    kind[1, 2] = T_CELL
    sites = np.array([np.ravel_multi_index((1, 2), kind.shape)], np.int64)
    _migrate(kind, None, sites, np.ones(1, np.bool_), np.zeros(1, np.int64),
             np.full(1, 40), 0.0, 3, 4, T_CELL, clone=clone, seen=np.array([1, 0], np.uint8))
    assert sites[0] == np.ravel_multi_index((1, 6), kind.shape)
    kind[1, 6], kind[1, 2] = EMPTY, T_CELL  # the same start with every clone seen: it stays
    sites[0] = np.ravel_multi_index((1, 2), kind.shape)
    _migrate(kind, None, sites, np.ones(1, np.bool_), np.zeros(1, np.int64),
             np.full(1, 40), 0.0, 3, 4, T_CELL, clone=clone, seen=np.array([1, 1], np.uint8))
    assert sites[0] == np.ravel_multi_index((1, 2), kind.shape)


@pytest.mark.parametrize("dims", SHAPES)
def test_crowded_migration_matches_naive(dims):
    """A crowd (agents on 70% of the empty sites): most proposals meet rivals, many agents
    are boxed in until a neighbour leaves, so claims, NO_MOVE and INERT all occur."""
    kind, _, g = _lattice(dims, 11, tumour=0.15, dead=0.1, vessel=0.0)
    sites = _agents(kind, g, int(0.7 * np.count_nonzero(kind == EMPTY)), T_CELL)
    n = sites.size
    stops = g.random(n) < 0.5
    first, last = np.zeros(n, np.int64), np.full(n, 8)
    field = g.random(kind.shape)
    move_key, prio_key = _key(rng.STREAM_T_CELL_MOVE), _key(rng.STREAM_MOVE_PRIORITY)
    expected_kind = kind.copy()
    expected_sites, expected_arrived = _naive_migrate(expected_kind, field, sites, stops, first,
                                                      last, 0.5, move_key, prio_key, T_CELL)
    arrived = _migrate(kind, field, sites, stops, first, last, 0.5, move_key, prio_key, T_CELL)
    np.testing.assert_array_equal(sites, expected_sites)
    np.testing.assert_array_equal(kind, expected_kind)
    np.testing.assert_array_equal(arrived, expected_arrived)
    assert 0 < np.count_nonzero(arrived) < n


def _migrate_in_chunks(dims, count, chunk_counts, leaving=True):
    """Random agents on a random lattice moved with each number of chunks, each time
    checked against the reference (moves, lattice, arrivals, 8 substeps); returns
    (substeps whose claims ran by parity, times the chunks were cut again) per count.
    ``leaving``: half the agents stop beside a tumour cell and many move in fewer
    substeps, so agents leave the active list unevenly; otherwise every agent moves in
    every substep and only walled-in ones leave."""
    kind, _, g = _lattice(dims, 13, tumour=0.1, dead=0.05, vessel=0.0)
    sites = _agents(kind, g, count, T_CELL)
    n = sites.size
    stops = g.random(n) < (0.5 if leaving else 0.0)
    first = np.where(g.random(n) < 0.3, g.integers(0, 4, n), 0)
    last = np.where(g.random(n) < 0.1, 0, np.where(g.random(n) < 0.5, g.integers(1, 8, n), 8))
    if not leaving:
        first, last = np.zeros(n, np.int64), np.full(n, 8)
    field = g.random(kind.shape)
    move_key, prio_key = _key(rng.STREAM_T_CELL_MOVE), _key(rng.STREAM_MOVE_PRIORITY)
    expected_kind = kind.copy()
    expected_sites, expected_arrived = _naive_migrate(expected_kind, field, sites, stops, first,
                                                      last, 0.5, move_key, prio_key, T_CELL)
    assert np.count_nonzero(expected_sites != sites) > n // 4  # the comparison sees moves
    paths = []
    for chunks in chunk_counts:
        taken = set()
        # members sharing the chunks: 1, 2 and 4, at most the Numba threads (each team once)
        for team in sorted({min(t, numba.get_num_threads()) for t in (1, 2, 4)}):
            k, s = kind.copy(), sites.copy()
            arrived, substeps, by_parity, recut = _migrate(k, field, s, stops, first, last,
                                                           0.5, move_key, prio_key, T_CELL,
                                                           chunks=chunks, team=team)
            np.testing.assert_array_equal(s, expected_sites)
            np.testing.assert_array_equal(k, expected_kind)
            np.testing.assert_array_equal(arrived, expected_arrived)
            assert substeps == 8
            taken.add((by_parity, recut))
        assert len(taken) == 1  # the same path whatever the team
        paths.append(taken.pop())
    return paths


@pytest.mark.parametrize("dims, count", [((90, 70), 900), ((40, 14, 12), 900),
                                         ((16, 14), 120)])
def test_migration_in_chunks_matches_naive(dims, count):
    """Any number of chunks gives the reference's moves, the chunks cut again as agents
    leave unevenly. The larger lattices keep the chunks apart (more than three reaches in
    site order: the 3D one is long in its first axis, whose planes set the reach), so
    claims run by parity and moves wait for the next substep's stage (the parallel path);
    the small crowded one does not, so the claims run chunk after chunk (the fallback):
    both paths are checked to have run. Each chunk count runs with teams of 1, 2 and 4
    members (at most as many as there are Numba threads); the engine's 1 vs 2 thread test
    (test_determinism.py) covers the choice of chunks from the thread count."""
    crowded = count > 0.3 * np.prod(dims)
    chunk_counts = (1, 2, 5, 8)
    paths = _migrate_in_chunks(dims, count, chunk_counts)
    for chunks, (by_parity, recut) in zip(chunk_counts, paths):
        if chunks == 1:
            assert by_parity == recut == 0
        elif crowded and chunks >= 5:  # (two chunks: one of each parity, always apart)
            assert by_parity < 8  # the fallback ran
        elif not crowded:
            assert by_parity > 0  # claims by parity ran
    assert max(recut for _, recut in paths) > 0  # the chunks were cut again in some run


def test_migration_by_parity_then_chunk_after_chunk_matches_naive():
    """Chunks that start apart and then come too close for the parity path (a compact 3D
    lattice, whose reach is a plane): the moves left waiting are made before the first
    substep of the fallback, and the moves are the reference's."""
    (by_parity, recut), = _migrate_in_chunks((22, 20, 18), 900, (5,), leaving=False)
    assert 0 < by_parity < 8
    assert recut == 0  # (cutting again would have made the waiting moves first)


def test_chunks_give_every_thread_a_chunk_of_each_parity():
    """One chunk at one thread or with few movers; otherwise at least two chunks per thread
    (each parity then has one for every thread) and at most CHUNKS_PER_THREAD, none below
    MIN_CHUNK agents."""
    for threads in (1, 2, 3, 4, 8):
        for movers in (0, 1, 255, 256, 511, 512, 1023, 1024, 2047, 3000, 10 ** 4, 10 ** 6):
            chunks = agents_k.chunks_for(movers, threads)
            if threads == 1 or movers < 2 * threads * agents_k.MIN_CHUNK:
                assert chunks == 1, (movers, threads)
            else:
                assert 2 * threads <= chunks <= agents_k.CHUNKS_PER_THREAD * threads
                assert movers // chunks >= agents_k.MIN_CHUNK


def test_chunk_parities_apart():
    """Chunks (entries, lowest site, highest site) of one parity must lie more than the gap
    apart; empty chunks are skipped."""
    apart = np.array([[3, 0, 10], [3, 12, 20], [3, 25, 30], [3, 33, 40]], np.int64)
    assert agents_k._parities_apart(apart, 12)       # even 10 + 12 < 25, odd 20 + 12 < 33
    assert not agents_k._parities_apart(apart, 13)   # odd 20 + 13 >= 33
    with_empty = np.array([[3, 0, 10], [0, 2 ** 62, -1], [0, 2 ** 62, -1], [3, 12, 20],
                           [3, 40, 50]], np.int64)
    assert agents_k._parities_apart(with_empty, 29)  # even: 0-10 and 40-50; odd: 12-20
    assert not agents_k._parities_apart(with_empty, 30)


@pytest.mark.parametrize("dims", SHAPES)
def test_stale_proposals_are_ignored(dims):
    """Tags make earlier substeps' claims invisible: a second call with later tags gives
    the same result as a call on a cleared proposal array."""
    kind, _, g = _lattice(dims, 2, tumour=0.1)
    sites = _agents(kind, g, 20, SUPPRESSIVE)
    n = sites.size
    no_stop, first = np.zeros(n, np.bool_), np.zeros(n, np.int64)
    results = []
    for first_tag, prefill, dtype in ((1, 0, np.uint16), (500, 1, np.uint16),
                                      (2040, 1, np.uint16), (500, 1, np.int32)):
        k = kind.copy()
        s = sites.copy()
        proposal = np.zeros(k.size, dtype)
        if prefill:  # leave junk from a previous phase (all with older tags)
            _migrate(k.copy(), None, s.copy(), no_stop, first, np.full(n, 5), 0.0, 5, 6,
                     SUPPRESSIVE, -1, 1, proposal)
        _migrate(k, None, s, no_stop, first, np.full(n, 3), 0.0, 7, 8, SUPPRESSIVE, -1,
                 first_tag, proposal)
        results.append((k, s))
    for k, s in results[1:]:
        np.testing.assert_array_equal(results[0][0], k)
        np.testing.assert_array_equal(results[0][1], s)


@pytest.mark.parametrize("dims", SHAPES)
def test_place_beside_matches_naive(dims):
    """Several new cells per parent (counts up to more than the free neighbours)."""
    kind, _, g = _lattice(dims, 3)
    parents = np.sort(np.flatnonzero(kind.ravel() == VESSEL)).astype(np.int64)
    assert parents.size >= 2
    counts = g.integers(0, 6, parents.size)
    key = _key(rng.STREAM_T_CELL_ENTRY_SITE)
    expected_kind = kind.copy()
    new, which = ref.place_beside(expected_kind, list(parents), counts, key, T_CELL)
    out, out_parent = np.empty(counts.sum(), np.int64), np.empty(counts.sum(), np.int64)
    k = agents_k.place_beside(kind.reshape(-1), parents, counts, _offsets(kind.shape),
                              np.uint64(key), T_CELL, out, out_parent)
    assert k == len(new) > 0
    assert max(np.bincount(which)) > 1  # some parent placed several
    np.testing.assert_array_equal(out[:k], new)
    np.testing.assert_array_equal(out_parent[:k], which)
    np.testing.assert_array_equal(kind, expected_kind)


def test_entry_and_expansion_counts_match_naive():
    """Poisson entry counts (inverse CDF of one draw, capped; each vessel's mean its share
    of the expected entries) and per-kill Bernoulli expansion counts, against the
    reference draws."""
    g = np.random.default_rng(4)
    sites = np.sort(g.choice(10_000, 300, replace=False)).astype(np.int64)
    weights = g.random(300) * 4.0
    weights[::7] = 0.0  # vessels expecting no entry
    key = _key(rng.STREAM_T_CELL_RECRUIT)
    out = np.empty(300, np.int64)
    expected, total = 350.0, weights.sum()
    agents_k.entry_counts(weights, expected, total, sites, np.uint64(key), 8, out)
    assert list(out) == [ref.poisson_count(expected * w / total, ref.uniform(key, i), 8)
                         for w, i in zip(weights, sites.tolist())]
    assert 0 < out.sum() and not out[::7].any()
    # in float32 (a solved field's weights) the mean is numpy's float32 expression
    w32 = weights.astype(np.float32)
    means = (expected * w32 / w32.sum()).astype(np.float64)  # numpy: float32 throughout
    agents_k.entry_counts(w32, np.float32(expected), w32.sum(), sites, np.uint64(key), 8, out)
    assert list(out) == [ref.poisson_count(m, ref.uniform(key, i), 8)
                         for m, i in zip(means, sites.tolist())]
    trials = g.integers(0, 4, 300)
    agents_k.bernoulli_counts(trials, 0.3, sites, np.uint64(key), out)
    assert list(out) == [sum(ref.uniform(ref.step_key(key, t), i) < 0.3 for t in range(n))
                         for n, i in zip(trials, sites.tolist())]


def test_extravasation_weights_match_numpy():
    """Each vessel's weight basal + C / (C + K), negative levels read as 0 and no field as
    C = 0, against the reference (float64), and bit for bit numpy's arithmetic on the
    gathered levels in the field's precision (what recruitment computed before the
    kernel: float32 for a solved field, float64 without one)."""
    g = np.random.default_rng(5)
    field = g.normal(0.5, 1.0, 5000)
    field[:50] = -0.0
    sites = g.choice(5000, 400, replace=False).astype(np.int64)
    sites[:20] = np.arange(20)  # some at negative zeros
    out = np.empty(400)
    agents_k.extravasation_weights(field, sites, 0.3, 0.25, out)
    assert list(out) == ref.extravasation_weights(field, sites, 0.3, 0.25)
    assert (field[sites] < 0).any()
    for dtype in (np.float64, np.float32):
        f = field.astype(dtype)
        level = np.maximum(f[sites], 0.0)
        out = np.empty(400, dtype)
        agents_k.extravasation_weights(f, sites, dtype(0.3), dtype(0.25), out)
        np.testing.assert_array_equal(out, 0.25 + level / (level + 0.3))
        assert out.dtype == (0.25 + level / (level + 0.3)).dtype == dtype
    out = np.empty(400)
    agents_k.extravasation_weights(np.empty(0), sites, 0.3, 0.25, out)
    assert list(out) == ref.extravasation_weights([], sites, 0.3, 0.25) == [0.25] * 400


def test_stochastic_rounding_keeps_the_mean():
    """Moves per step: floor(m) or floor(m) + 1, the latter with probability frac(m)
    (binomial over 20000 agents: 5 sd)."""
    sites = np.arange(1, 20_001, dtype=np.int64) * 7
    out = np.empty(sites.size, np.int64)
    agents_k.move_counts(sites, sites.size, 4.3, np.uint64(_key(rng.STREAM_MOVE_COUNT)), out)
    assert set(out) == {4, 5}
    assert abs(out.mean() - 4.3) < 5 * math.sqrt(0.3 * 0.7 / sites.size)


def _t_cells(kind, g, count):
    sites = _agents(kind, g, count, T_CELL)
    n = sites.size
    return dict(sites=sites, kills_left=g.integers(0, 4, n).astype(np.int32),
                busy_hours=np.where(g.random(n) < 0.3, g.random(n) * 14.0, 0.0),
                exhaustion=g.random(n) * 1.1,
                flags=np.where(g.random(n) < 0.15, ref.EXHAUSTED, 0).astype(np.uint8),
                engaged_hours=g.random(n), entry_hours=np.where(g.random(n) < 0.2,
                                                                g.random(n) * 6.0, 0.0),
                ready_hours=np.where(g.random(n) < 0.4, g.random(n) * 6.0, 0.0))


def _t_cell_params(dt=6.0, handling=2.0, kill_rate=0.9, n_clones=2):
    return dict(dt=dt, kill_rate=kill_rate, handling=handling, e_pd=0.03, e_sup=0.05,
                death=0.02, death_exhausted=0.15, pd1_max=0.8, pd1_half=0.5, blockade=0.25,
                sup_max=0.7, sup_half=0.2, relief=0.1,
                antigenicity=np.array([1.0, 0.6])[:n_clones])


def _param_array(p):
    k = t_cells_k
    out = np.empty(k.N_PARAMS)
    for index, name in ((k.P_DT, "dt"), (k.P_KILL_RATE, "kill_rate"),
                        (k.P_HANDLING, "handling"), (k.P_EXHAUSTION_PDL1, "e_pd"),
                        (k.P_EXHAUSTION_SUPPRESSION, "e_sup"), (k.P_DEATH, "death"),
                        (k.P_DEATH_EXHAUSTED, "death_exhausted"), (k.P_PD1_MAX, "pd1_max"),
                        (k.P_PD1_HALF, "pd1_half"), (k.P_PD1_BLOCKADE, "blockade"),
                        (k.P_SUPPRESSION_MAX, "sup_max"), (k.P_SUPPRESSION_HALF, "sup_half"),
                        (k.P_EXHAUSTION_RELIEF, "relief")):
        out[index] = p[name]
    return out


def _attack(kind, clone, pdl1, cytokine, t, p, keys):
    """The kernel on padded grids; updates ``t`` in place, returns (alive, kills, killed)."""
    flat = kind.reshape(-1)
    n = t["sites"].size
    alive, kills = np.empty(n, np.uint8), np.empty(n, np.int32)
    killed = np.empty(max(int(t["kills_left"].clip(min=0).sum()), 1), np.int64)
    n_killed = t_cells_k.attack(
        flat, clone.reshape(-1), pdl1.reshape(-1),
        np.empty(0) if cytokine is None else cytokine.reshape(-1), t["sites"], n,
        t["kills_left"], t["busy_hours"], t["exhaustion"], t["flags"], t["engaged_hours"],
        t["entry_hours"], t["ready_hours"], _offsets(kind.shape), p["antigenicity"],
        np.asarray(p.get("seen", np.ones(p["antigenicity"].size)), np.uint8), _param_array(p), *(np.uint64(keys[k]) for k in ("fate", "target", "kill", "priority")),
        alive, kills, killed)
    return alive, kills, killed[:n_killed]


def _t_keys():
    return dict(fate=_key(rng.STREAM_T_CELL_FATE), target=_key(rng.STREAM_T_CELL_TARGET),
                kill=_key(rng.STREAM_T_CELL_KILL), priority=_key(rng.STREAM_KILL_PRIORITY))


def test_attack_round_works_every_stretch_once():
    """The attack round's iterations take its stretches in a spread order that must be a
    permutation, or some T cells would be skipped or run twice."""
    order = [q * t_cells_k.SPREAD % PARALLEL_CHUNKS for q in range(PARALLEL_CHUNKS)]
    assert sorted(order) == list(range(PARALLEL_CHUNKS))
    assert order[1] - order[0] > 1  # spread: consecutive iterations, stretches apart


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("with_cytokine", [False, True])
@pytest.mark.parametrize("dt, handling", [(6.0, 2.0), (12.0, 0.5)])
def test_attack_matches_naive(dims, with_cytokine, dt, handling):
    """Timelines with entry, handling, arrival, exhaustion, death and several rounds (short
    handling, a high kill rate): same lattice, kills, deaths and attributes."""
    kind, clone, g = _lattice(dims, 4, tumour=0.5)
    t = _t_cells(kind, g, 30)
    pdl1 = np.where(kind == TUMOR, g.random(kind.shape) * 1.2, np.nan).astype(np.float32)
    cytokine = g.random(kind.shape) * 0.5 if with_cytokine else None
    p = _t_cell_params(dt, handling, kill_rate=0.9)
    keys = _t_keys()
    expected_kind = kind.copy()
    expected = {name: list(v.copy()) for name, v in t.items()}
    e_alive, e_kills, e_killed = ref.t_cell_step(expected_kind, clone, pdl1, cytokine, expected,
                                                 p, keys)
    alive, kills, killed = _attack(kind, clone, pdl1, cytokine, t, p, keys)
    assert sorted(killed) == sorted(e_killed) and len(e_killed) > 0
    np.testing.assert_array_equal(kind, expected_kind)
    np.testing.assert_array_equal(alive.astype(bool), e_alive)
    np.testing.assert_array_equal(kills, e_kills)
    for name in ("kills_left", "flags"):
        np.testing.assert_array_equal(t[name], expected[name], err_msg=name)
    for name in ("exhaustion", "busy_hours", "engaged_hours", "entry_hours"):
        np.testing.assert_allclose(t[name], expected[name], rtol=1e-12, atol=1e-12,
                                   err_msg=name)
    if dt == 12.0:
        assert max(kills) > 1  # a cell killed twice within one step
    assert 0 < alive.sum() < alive.size


@pytest.mark.parametrize("dims", SHAPES)
def test_attack_on_seen_cells_only_matches_naive(dims):
    """Clone 1 unseen (antigenicity below the recognition threshold): same timelines as
    the reference, and no clone-1 cell is killed although clone-1 cells are attacked
    when every clone is seen."""
    kind, clone, g = _lattice(dims, 4, tumour=0.5)
    t = _t_cells(kind, g, 30)
    pdl1 = np.where(kind == TUMOR, g.random(kind.shape) * 1.2, np.nan).astype(np.float32)
    p = dict(_t_cell_params(6.0, 2.0, kill_rate=0.9), seen=np.array([1, 0], np.uint8))
    keys = _t_keys()
    expected_kind = kind.copy()
    expected = {name: list(v.copy()) for name, v in t.items()}
    e_alive, e_kills, e_killed = ref.t_cell_step(expected_kind, clone, pdl1, None, expected,
                                                 p, keys)
    every = {name: v.copy() for name, v in t.items()}
    _, _, killed_every = _attack(kind.copy(), clone, pdl1, None, every,
                                 dict(p, seen=np.array([1, 1], np.uint8)), keys)
    alive, kills, killed = _attack(kind, clone, pdl1, None, t, p, keys)
    assert sorted(killed) == sorted(e_killed) and len(e_killed) > 0
    np.testing.assert_array_equal(kind, expected_kind)
    np.testing.assert_array_equal(kills, e_kills)
    for name in ("kills_left", "flags"):
        np.testing.assert_array_equal(t[name], expected[name], err_msg=name)
    np.testing.assert_allclose(t["engaged_hours"], expected["engaged_hours"], rtol=1e-12,
                               atol=1e-12)
    assert not np.any(clone.reshape(-1)[killed] == 1)
    assert np.any(clone.reshape(-1)[killed_every] == 1)


def test_shared_target_dies_once_at_the_earliest_kill():
    """Two T cells certain to kill one tumour cell within the step: it dies once, credited
    to the earlier kill time; the other resumes at that time and has no target left."""
    kind = np.full((5, 5), WALL, np.uint8)
    kind[1:-1, 1:-1] = EMPTY
    kind[2, 2] = TUMOR
    kind[2, 1] = kind[2, 3] = T_CELL
    sites = np.array([np.ravel_multi_index((2, 1), (5, 5)), np.ravel_multi_index((2, 3), (5, 5))])
    t = dict(sites=sites, kills_left=np.array([3, 3], np.int32), busy_hours=np.zeros(2),
             exhaustion=np.zeros(2), flags=np.zeros(2, np.uint8), engaged_hours=np.zeros(2),
             entry_hours=np.zeros(2), ready_hours=np.zeros(2))
    p = dict(_t_cell_params(6.0, 10.0, kill_rate=50.0, n_clones=1), death=0.0,
             death_exhausted=0.0, e_pd=0.0, e_sup=0.0, pd1_max=0.0)
    alive, kills, killed = _attack(kind, np.zeros((5, 5), np.uint8), np.zeros((5, 5)), None, t,
                                   p, _t_keys())
    assert kind[2, 2] == DEAD and list(killed) == [12]
    assert sorted(kills) == [0, 1] and sorted(t["kills_left"]) == [2, 3]
    winner, loser = (0, 1) if kills[0] else (1, 0)
    keys = _t_keys()
    times = [-math.log1p(-ref.uniform(ref.step_key(keys["kill"], 0), int(i))) / 50.0
             for i in sites]
    assert times[winner] < times[loser]
    t_kill = times[winner]
    # the loser attacked until the kill, then found no target; the winner handles 10 h
    assert t["engaged_hours"][loser] == pytest.approx(t_kill, abs=1e-12)
    assert t["engaged_hours"][winner] == pytest.approx(6.0, abs=1e-12)
    assert t["busy_hours"][winner] == pytest.approx(t_kill + 10.0 - 6.0, abs=1e-12)
    assert t["busy_hours"][loser] == 0.0
    assert all(t["flags"] & t_cells_k.CONTACT) and list(alive) == [1, 1]


@pytest.mark.parametrize("dims", SHAPES)
def test_deaths_match_naive(dims):
    kind, _, g = _lattice(dims, 5)
    s = _agents(kind, g, 25, SUPPRESSIVE)
    entry = np.where(g.random(s.size) < 0.5, g.random(s.size) * 6.0, 0.0)
    key = _key(rng.STREAM_SUPPRESSIVE_FATE)
    expected_kind = kind.copy()
    expected_alive = ref.deaths(expected_kind, list(s), 0.1, 6.0, entry, key)
    alive = np.empty(s.size, np.uint8)
    agents_k.agent_deaths(kind.reshape(-1), s, s.size, 0.1, 6.0, entry, np.uint64(key), alive)
    np.testing.assert_array_equal(alive.astype(bool), expected_alive)
    np.testing.assert_array_equal(kind, expected_kind)
    assert 0 < alive.sum() < alive.size


@pytest.mark.parametrize("dims", SHAPES)
def test_induced_secretion_matches_naive(dims):
    """IFN-gamma-induced chemokine secretion, added at tumour sites to a float32 source
    (the field solver's), within the tissue extents."""
    kind, _, g = _lattice(dims, 6)
    ifn = (g.random(kind.shape) * 0.4).astype(np.float32)
    base = g.random(kind.shape).astype(np.float32)
    source = base.reshape(-1).copy()
    lo, hi = _extents(kind)
    micro.induced_secretion(kind.reshape(-1), ifn.reshape(-1), lo, hi, kind.shape[-1], 0.7,
                            0.11, 1.26, source)
    added = ref.induced_secretion(kind, ifn.astype(np.float64), 0.7, 0.11, 1.26)
    np.testing.assert_allclose(source, (base + added).reshape(-1), rtol=1e-6)
    assert np.all(source[kind.reshape(-1) != TUMOR] == base.reshape(-1)[kind.reshape(-1) != TUMOR])


@pytest.mark.parametrize("dims", SHAPES)
def test_source_from_powers_matches_naive_and_the_computed_source(dims):
    """The chemokine's source from the Hill powers the tumour response leaves at tumour
    sites (``induced_secretion_from_powers``): as the naive reference, and the same bits
    as the per-kind tables then ``induced_secretion`` computing the powers again (what
    the fields phase does without them)."""
    kind, _, g = _lattice(dims, 6)
    flat_kind = kind.reshape(-1)
    ifn = (g.random(kind.shape) * 0.4).astype(np.float32)
    ifn[(g.random(kind.shape) < 0.1)] = 0.0   # no IFN-gamma: a power of 0
    table = (g.random(8) * 0.05).astype(np.float32)
    lo, hi = _extents(kind)
    computed = np.full(kind.size, np.nan, np.float32)
    multigrid.fine_tables(flat_kind, np.zeros(8, np.float32), table, computed,
                          np.empty(0, np.float32))
    micro.induced_secretion(flat_kind, ifn.reshape(-1), lo, hi, kind.shape[-1], 0.7, 0.11,
                            1.26, computed)
    # the powers as the tumour response takes them, of the float32 field values
    powers = np.array([micro.hill_power(x, 0.11, 1.26) for x in ifn.reshape(-1)]
                      ).reshape(kind.shape)
    # the powers where the tumour response leaves them; anything at the other sites (the
    # kernel computes the induced term everywhere and keeps it at tumour sites only)
    anything = g.choice([np.nan, np.inf, -np.inf, -1.0, -0.0, 0.0, 3.5, 1e3], kind.shape)
    source = np.where(kind == TUMOR, powers, anything).astype(np.float32)
    source = source.reshape(-1)
    micro.induced_secretion_from_powers(flat_kind, lo, hi, kind.shape[-1], table, 0.7, source)
    np.testing.assert_array_equal(source, computed)
    # (without JIT, NumPy adds the Python float to a float32 in float32: one rounding more)
    np.testing.assert_allclose(source, ref.source_from_powers(kind, table, 0.7, powers)
                               .reshape(-1), rtol=2e-7 if JIT_DISABLED else 0)
    assert (source[flat_kind == TUMOR] != table[TUMOR]).any()


@pytest.mark.parametrize("engaged", ["some", "none"])
def test_t_cell_secretion_matches_naive(engaged):
    """IFN-gamma secretion by T cells not exhausted, in proportion to their hours engaged,
    added at their sites to a float32 source; the kernel says whether a site it added to
    is nonzero (the field solver then skips scanning for a source)."""
    g = np.random.default_rng(17)
    n_sites, n = 4000, 300
    sites = g.choice(n_sites, n, replace=False).astype(np.int64)
    hours = np.where(g.random(n) < 0.5, g.random(n) * 6.0, 0.0)
    if engaged == "none":
        hours[:] = 0.0
    flags = np.where(g.random(n) < 0.3, t_cells_k.EXHAUSTED, 0).astype(np.uint8)
    base = np.where(g.random(n_sites) < 0.1, g.random(n_sites), 0.0).astype(np.float32)
    expected, expected_nonzero = ref.t_cell_secretion(sites, hours, flags != 0, 0.37, base)
    source = base.copy()
    nonzero = t_cells_k.secretion(sites, n, hours, flags, 0.37, source)
    np.testing.assert_array_equal(source, expected)
    assert nonzero == expected_nonzero == (engaged == "some")


def _extents(kind):
    line_length = kind.shape[-1]
    lo = np.empty(kind.size // line_length, np.int64)
    hi = np.empty_like(lo)
    lattice.tissue_extents(kind.reshape(-1), line_length, lo, hi)
    return lo, hi


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("with_fields", [False, True])
@pytest.mark.parametrize("split", [False, True])
def test_tumor_response_matches_naive(dims, with_fields, split):
    """The kernel on all lines in one call, or (``split``) on three blocks of lines called
    last block first, as two threads may share them (``simulator.model.alongside
    .SharedLines``): the naive reference's result either way."""
    kind, clone, g = _lattice(dims, 8, tumour=0.6)
    pdl1 = np.where(kind == TUMOR, g.random(kind.shape), np.nan).astype(np.float32)
    newborn = (kind == TUMOR) & (g.random(kind.shape) < 0.2)
    pdl1[newborn] = np.nan
    pdl1[(kind == DEAD)] = 0.3  # a stale value at a site whose cell died
    oxygen = g.random(kind.shape) * 8.0 if with_fields else None
    ifn = g.random(kind.shape) * 0.3 if with_fields else None
    params = dict(necrosis_threshold=5.0, necrosis_full=2.5, necrosis_hazard=0.9, baseline=0.1,
                  induced=1.0, half=0.11, hill=1.26, keep=math.exp(-0.6))
    key = _key(rng.STREAM_NECROSIS)
    lo, hi = _extents(kind)
    visit = [tuple(int(v) for v in c) for c in zip(*np.nonzero(kind != WALL))]
    expected_kind, expected_pdl1 = kind.copy(), pdl1.copy()
    expected = ref.tumor_response(expected_kind, clone, expected_pdl1, oxygen, ifn, params, key,
                                  visit)
    n_lines = kind.size // kind.shape[-1]
    necrotic = np.zeros((n_lines, 2), np.int64)
    flat_pdl1 = pdl1.reshape(-1)
    # each tumour cell's Hill power is left here (with IFN-gamma); the rest is untouched
    powers = np.full(kind.size if with_fields else 0, np.nan, np.float32)
    cuts = [0, 3, n_lines // 2, n_lines] if split else [0, n_lines]
    for first, last in reversed(list(zip(cuts[:-1], cuts[1:]))):
        micro.tumor_response(kind.reshape(-1), clone.reshape(-1), flat_pdl1,
                             np.empty(0) if oxygen is None else oxygen.reshape(-1),
                             np.empty(0) if ifn is None else ifn.reshape(-1), lo, hi, lo, hi,
                             kind.shape[-1], params["necrosis_threshold"],
                             params["necrosis_full"], params["necrosis_hazard"],
                             np.uint64(key), params["baseline"], params["induced"],
                             params["half"], params["hill"], params["keep"], necrotic, powers,
                             first, last)
    np.testing.assert_array_equal(kind, expected_kind)
    # the kernel's Hill power is the naive's (Python's float64 power, rounded to float32)
    # but within ~1e-13 relative of a float32 rounding boundary, where it may round the
    # other way (kernels.powers): one unit in the last place, in the power and so at most
    # one in the PD-L1 it moves
    np.testing.assert_array_max_ulp(pdl1, expected_pdl1, maxulp=1)
    np.testing.assert_array_equal(np.isnan(pdl1), np.isnan(expected_pdl1))
    assert {c: n for c, n in enumerate(necrotic.sum(0)) if n} == expected
    if with_fields:
        assert expected and (kind == NECROTIC).any()
        tumour = kind.reshape(-1) == TUMOR
        expected_powers = [ref.hill_power(float(x), params["half"], params["hill"])
                           for x in ifn.reshape(-1)[tumour]]
        np.testing.assert_array_max_ulp(powers[tumour], np.float32(expected_powers), maxulp=1)
        assert np.isnan(powers[~tumour]).all()


@pytest.mark.parametrize("dims", SHAPES)
def test_census_matches_numpy(dims):
    kind, _, g = _lattice(dims, 9)
    pdl1 = np.where(kind == TUMOR, g.random(kind.shape), np.nan).astype(np.float32)
    lo, hi = _extents(kind)
    n_lines = lo.size
    count, cols, total = (np.zeros(n_lines, np.int64), np.zeros(n_lines, np.int64),
                          np.zeros(n_lines))
    micro.census(kind.reshape(-1), pdl1.reshape(-1), lo, hi, kind.shape[-1], count, cols, total)
    tumour = kind.reshape(n_lines, -1) == TUMOR
    np.testing.assert_array_equal(count, tumour.sum(1))
    np.testing.assert_array_equal(cols, (tumour * np.arange(kind.shape[-1])).sum(1))
    np.testing.assert_allclose(total, np.nansum(np.where(tumour, pdl1.reshape(n_lines, -1), 0), 1))


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_tags_restart_before_overflow(dtype):
    """The runtime clears the proposal array and restarts tags before a claim's code would
    wrap: the largest code of the last tag still fits the dtype."""
    from simulator.model.immune import ImmuneSystem
    top = agents_k.max_tag(dtype)
    assert (top - 1) * agents_k.TAG_UNIT + 26 <= np.iinfo(dtype).max
    system = ImmuneSystem.__new__(ImmuneSystem)
    system.proposal = np.full(10, 12345, dtype)
    system.tag = top - 3
    assert system._tags(5) == 1 and system.tag == 6 and not system.proposal.any()
    assert system.proposal.dtype == dtype
    system.proposal[:] = 7
    system.tag = top - 6
    assert system._tags(5) == top - 6 and system.proposal.all()  # the last tags still fit


def test_proposals_widen_for_calls_beyond_uint16_tags():
    """A call with more substeps than uint16 proposals have tags gets an int32 array
    (zeroed, tags from 1); calls that fit keep the array as it is."""
    from simulator.model.immune import ImmuneSystem
    system = ImmuneSystem.__new__(ImmuneSystem)
    system.proposal = np.zeros(10, np.uint16)
    system.tag = 1
    fits = agents_k.max_tag(np.uint16) - 2
    assert system._tags(fits) == 1 and system.proposal.dtype == np.uint16
    system.proposal[:] = 9
    assert system._tags(fits + 1) == 1
    assert system.proposal.dtype == np.int32 and not system.proposal.any()
    assert system.tag == fits + 2


# ----------------------------------------------------------------------------- the engine
def _engine_scenario(dims):
    from simulator.scenario import load
    return load(None, [f"simulation.dimensions={list(dims)}", "initial.tumor_radius_sites=3",
                       "simulation.seed=5", "vessels.density=0.05",
                       "t_cells.recruitment_rate_per_day=80", "t_cells.speed_um_per_min=1",
                       "t_cells.kill_rate_per_day=4", "t_cells.death_rate_per_day=0.5",
                       "t_cells.expansion_probability_per_kill=0.9",
                       "t_cells.exhaustion_rate_per_day_pdl1=2",
                       "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=200",
                       "suppressive.speed_um_per_min=0.5", "suppressive.death_rate_per_day=0.5",
                       "tumor.division_rate_per_day=2", "fields.max_cycles_per_step=2"])


def _grid(engine, flat):
    return flat.reshape(engine.state.geometry.padded)


def _step_keys(engine, step):
    sim = engine.scenario.simulation
    return lambda stream: naive.step_key(naive.stream_key(sim.seed, sim.replicate, stream), step)


@pytest.mark.parametrize("dims", [(24, 22), (10, 9, 8)])
def test_engine_immune_phases_match_naive(dims):
    """Drive the engine phase by phase; before each immune phase, predict its outcome with
    the references from the scenario's own numbers (rates converted here independently),
    the documented move windows and the documented stream keys."""
    engine = _engine_scenario(dims)
    from simulator.engine import Engine
    e = Engine(engine)
    sc, im = e.scenario, e.immune
    dt = sc.simulation.dt_hours
    t_sc, s_sc = sc.t_cells, sc.suppressive
    params = dict(dt=dt, kill_rate=t_sc.kill_rate_per_day / 24, handling=t_sc.handling_hours,
                  e_pd=t_sc.exhaustion_rate_per_day_pdl1 / 24,
                  e_sup=t_sc.exhaustion_rate_per_day_suppression / 24,
                  death=t_sc.death_rate_per_day / 24,
                  death_exhausted=t_sc.exhausted_death_rate_per_day / 24,
                  pd1_max=t_sc.pd1_max_inhibition, pd1_half=t_sc.pd1_half_saturation,
                  blockade=0.0, sup_max=s_sc.suppression_max,
                  sup_half=s_sc.cytokine_half_saturation_ng_per_ml, relief=0.0,
                  antigenicity=np.full(2, sc.tumor.antigenicity))
    spacing = sc.simulation.spacing_um
    moves = t_sc.speed_um_per_min * dt * 60 / spacing
    s_moves = s_sc.speed_um_per_min * dt * 60 / spacing
    totals = dict(kills=0, born=0, died=0, rounds=0)

    def windows(sites, moves, free_from, key):
        last = [math.floor(moves) + (ref.uniform(key, int(i)) < moves - math.floor(moves))
                for i in sites]
        first = [math.ceil(f / (dt / moves) - 1e-9) for f in free_from]
        return first, last

    for _ in range(8):
        step = e.state.step
        key = _step_keys(e, step)
        for name in ("doses", "fields", "tumor", "tumor_response", "recruitment"):
            dict(e.phases)[name]()
        kind = _grid(e, e.state.kind).copy()
        clone = _grid(e, e.state.clone)
        # fields are float32; the kernels compute in float64 from their values (under NumPy 2
        # a float32 scalar times a Python float would stay float32 in the references)
        chem, cyt = (_grid(e, e.tissue.flat(n)).astype(np.float64)
                     for n in ("chemokine", "suppressive_cytokine"))
        pdl1 = _grid(e, im.pdl1).copy()
        names = ("sites", "kills_left", "busy_hours", "exhaustion", "flags", "engaged_hours",
                 "entry_hours")
        t = {name: list(im.t.live(name).copy()) for name in names}
        stops = [not f & ref.EXHAUSTED and k > 0 for f, k in zip(t["flags"], t["kills_left"])]
        free_from = [max(b, en) for b, en in zip(t["busy_hours"], t["entry_hours"])]
        first, last = windows(t["sites"], moves, free_from, key(rng.STREAM_MOVE_COUNT))
        t["sites"], arrived = _naive_migrate(kind, chem, np.array(t["sites"]), stops, first, last,
                                             t_sc.chemotaxis_bias, key(rng.STREAM_T_CELL_MOVE),
                                             key(rng.STREAM_MOVE_PRIORITY), T_CELL)
        t["ready_hours"] = [min(a * dt / moves, dt) for a in arrived]
        alive, kills_now, killed = ref.t_cell_step(
            kind, clone, pdl1, cyt, t, params,
            dict(fate=key(rng.STREAM_T_CELL_FATE), target=key(rng.STREAM_T_CELL_TARGET),
                 kill=key(rng.STREAM_T_CELL_KILL), priority=key(rng.STREAM_KILL_PRIORITY)))
        e._t_cell_phase()
        np.testing.assert_array_equal(_grid(e, e.state.kind), kind)
        for name in names:
            np.testing.assert_allclose(im.t.live(name), t[name], rtol=1e-12, atol=1e-12,
                                       err_msg=name)
        totals["kills"] += len(killed)

        s_sites = list(im.s.live("sites"))
        s_first, s_last = windows(s_sites, s_moves, list(im.s.live("entry_hours")),
                                  key(rng.STREAM_MOVE_COUNT))
        s_sites, _ = _naive_migrate(kind, chem, np.array(s_sites), [False] * len(s_sites),
                                    s_first, s_last, s_sc.chemotaxis_bias,
                                    key(rng.STREAM_SUPPRESSIVE_MOVE),
                                    key(rng.STREAM_SUPPRESSIVE_PRIORITY), SUPPRESSIVE, -1)
        e._suppressive_phase()
        np.testing.assert_array_equal(_grid(e, e.state.kind), kind)
        np.testing.assert_array_equal(im.s.live("sites"), s_sites)

        for a, ok in enumerate(alive):
            if not ok:
                kind[np.unravel_index(t["sites"][a], kind.shape)] = EMPTY
        parents = sorted((t["sites"][a], a) for a in range(len(alive)) if kills_now[a])
        counts = [sum(ref.uniform(ref.step_key(key(rng.STREAM_T_CELL_EXPAND), k), int(site))
                      < t_sc.expansion_probability_per_kill for k in range(kills_now[a]))
                  for site, a in parents]
        new, which = ref.place_beside(kind, [site for site, _ in parents], counts,
                                      key(rng.STREAM_EXPANSION_SITE), T_CELL)
        expected = {name: [v for v, ok in zip(t[name], alive) if ok] for name in names}
        for site, p in zip(new, which):
            a = parents[p][1]
            expected["sites"].append(site)
            for name in names[1:]:
                expected[name].append(t[name][a] if name != "flags"
                                      else t["flags"][a] & ref.EXHAUSTED)
        s_alive = ref.deaths(kind, s_sites, s_sc.death_rate_per_day / 24, dt,
                             list(im.s.live("entry_hours")), key(rng.STREAM_SUPPRESSIVE_FATE))
        e._immune_state_phase()
        np.testing.assert_array_equal(_grid(e, e.state.kind), kind)
        for name in expected:
            np.testing.assert_allclose(im.t.live(name), expected[name], rtol=1e-12, atol=1e-12,
                                       err_msg=name)
        np.testing.assert_array_equal(im.s.live("sites"),
                                      [s for s, ok in zip(s_sites, s_alive) if ok])
        totals["born"] += len(new)
        totals["died"] += alive.count(False)
        e.state.step += 1
        # the recorded tumour count follows the lattice through kills and necrosis
        assert e.observe()["tumor_cells"] == int((e.state.kind == TUMOR).sum())
    assert totals["kills"] > 0 and totals["born"] > 0 and totals["died"] > 0
    assert im.s.n > 0
