"""The immune and microenvironment kernels against the plain-Python references in
naive.py, on small random 2D and 3D lattices (fast enough with NUMBA_DISABLE_JIT=1).

Random inputs come from numpy's Generator (test data only); every decision the kernels
make is drawn from the counter-based hash, so the kernel and the reference must agree
exactly: same sites, same kinds, same attributes."""
import math

import numpy as np
import pytest

import naive
import naive as ref
from kernels import immune as agents_k
from kernels import lattice, rng
from kernels import microenvironment as micro
from kernels import t_cells as t_cells_k
from kernels.lattice import DEAD, EMPTY, NECROTIC, SUPPRESSIVE, T_CELL, TUMOR, VESSEL, WALL
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
             stop_kind=TUMOR, first_tag=1, proposal=None):
    """The kernel on a padded grid (changed in place); returns the arrival substeps."""
    flat = kind.reshape(-1)
    if proposal is None:
        proposal = np.zeros(flat.size, np.int32)
    arrived = np.full(sites.size, -7, np.int64)
    agents_k.migrate(flat, np.empty(0) if field is None else field.reshape(-1), proposal, sites,
                     sites.size, stops, first, last, stop_kind, _offsets(kind.shape),
                     moore_inverse_lengths(kind.ndim), bias, first_tag, np.uint64(move_key),
                     np.uint64(prio_key), agent_kind, arrived)
    return arrived


def _naive_migrate(kind, field, sites, stops, first, last, bias, move_key, prio_key,
                   agent_kind, stop_kind=TUMOR):
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
                                    agent_kind)
        arrived = [s + 1 if new != old else was for new, old, was in zip(sites, before, arrived)]
    return sites, arrived


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


@pytest.mark.parametrize("dims", SHAPES)
def test_stale_proposals_are_ignored(dims):
    """Tags make earlier substeps' claims invisible: a second call with later tags gives
    the same result as a call on a cleared proposal array."""
    kind, _, g = _lattice(dims, 2, tumour=0.1)
    sites = _agents(kind, g, 20, SUPPRESSIVE)
    n = sites.size
    no_stop, first = np.zeros(n, np.bool_), np.zeros(n, np.int64)
    results = []
    for first_tag, prefill in ((1, 0), (500, 1)):
        k = kind.copy()
        s = sites.copy()
        proposal = np.zeros(k.size, np.int32)
        if prefill:  # leave junk from a previous phase (all with older tags)
            _migrate(k.copy(), None, s.copy(), no_stop, first, np.full(n, 5), 0.0, 5, 6,
                     SUPPRESSIVE, -1, 1, proposal)
        _migrate(k, None, s, no_stop, first, np.full(n, 3), 0.0, 7, 8, SUPPRESSIVE, -1,
                 first_tag, proposal)
        results.append((k, s))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("dims", SHAPES)
def test_place_beside_matches_naive(dims):
    kind, _, g = _lattice(dims, 3)
    parents = np.sort(np.flatnonzero(kind.ravel() == VESSEL)).astype(np.int64)
    assert parents.size >= 2
    probability = g.random(parents.size)
    key = _key(rng.STREAM_T_CELL_RECRUIT)
    expected_kind = kind.copy()
    new, which = ref.place_beside(expected_kind, list(parents), probability, key, T_CELL)
    out, out_parent = np.empty(parents.size, np.int64), np.empty(parents.size, np.int64)
    k = agents_k.place_beside(kind.reshape(-1), parents, probability, _offsets(kind.shape),
                              np.uint64(key), T_CELL, out, out_parent)
    assert k == len(new) > 0
    np.testing.assert_array_equal(out[:k], new)
    np.testing.assert_array_equal(out_parent[:k], which)
    np.testing.assert_array_equal(kind, expected_kind)


def _t_cells(kind, g, count):
    sites = _agents(kind, g, count, T_CELL)
    n = sites.size
    return dict(sites=sites, kills_left=g.integers(0, 4, n).astype(np.int32),
                engaged=np.where(g.random(n) < 0.2, 1, 0).astype(np.int32),
                exhaustion=g.random(n) * 1.1,
                flags=np.where(g.random(n) < 0.15, ref.EXHAUSTED, 0).astype(np.uint8))


def _attack_params(n_clones=2):
    return dict(suppression_max=0.7, suppression_half_saturation=0.2, exhaustion_suppression=0.05,
                exhaustion_pdl1=0.04, pd1_max_inhibition=0.8, pd1_half_saturation=0.5,
                pd1_blockade=0.25, log_survival=-3.0, antigenicity=np.array([1.0, 0.6])[:n_clones],
                exhaustion_relief=0.1, handling_steps=2)


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("with_cytokine", [False, True])
def test_attack_matches_naive(dims, with_cytokine):
    kind, clone, g = _lattice(dims, 4, tumour=0.5)
    t = _t_cells(kind, g, 30)
    pdl1 = np.where(kind == TUMOR, g.random(kind.shape) * 1.2, np.nan)
    cytokine = g.random(kind.shape) * 0.5 if with_cytokine else None
    p = _attack_params()
    keys = dict(target=_key(rng.STREAM_T_CELL_TARGET), kill=_key(rng.STREAM_T_CELL_KILL),
                priority=_key(rng.STREAM_KILL_PRIORITY))
    expected_kind = kind.copy()
    expected = {name: list(v.copy()) for name, v in t.items()}
    expected_killed = ref.attack(expected_kind, clone, pdl1, cytokine, expected, p, keys)
    flat = kind.reshape(-1)
    proposal = np.zeros(flat.size, np.int32)
    n = t["sites"].size
    t_cells_k.attack_propose(
        flat, clone.reshape(-1), pdl1.reshape(-1),
        np.empty(0) if cytokine is None else cytokine.reshape(-1), proposal, t["sites"], n,
        t["engaged"], t["kills_left"], t["exhaustion"], t["flags"], _offsets(kind.shape),
        p["antigenicity"], p["log_survival"], p["pd1_max_inhibition"], p["pd1_half_saturation"],
        p["pd1_blockade"], p["suppression_max"], p["suppression_half_saturation"],
        p["exhaustion_pdl1"], p["exhaustion_suppression"], p["exhaustion_relief"], 7,
        np.uint64(keys["target"]), np.uint64(keys["kill"]))
    killed = np.empty(n, np.int64)
    t_cells_k.attack_resolve(flat, proposal, t["sites"], n, _offsets(kind.shape), 7,
                             np.uint64(keys["priority"]), t["kills_left"], t["engaged"],
                             t["flags"], p["handling_steps"], killed)
    assert sorted(killed[killed >= 0]) == expected_killed
    assert len(expected_killed) > 0
    np.testing.assert_array_equal(kind, expected_kind)
    for name in ("kills_left", "engaged", "flags"):
        np.testing.assert_array_equal(t[name], expected[name], err_msg=name)
    np.testing.assert_allclose(t["exhaustion"], expected["exhaustion"], rtol=1e-15, atol=0)


def test_shared_target_is_killed_once():
    """Two T cells that both succeed against one tumour cell: one kill, credited once."""
    kind = np.full((5, 5), WALL, np.uint8)
    kind[1:-1, 1:-1] = EMPTY
    kind[2, 2] = TUMOR
    kind[2, 1] = kind[2, 3] = T_CELL
    flat = kind.reshape(-1)
    sites = np.array([np.ravel_multi_index((2, 1), (5, 5)), np.ravel_multi_index((2, 3), (5, 5))])
    kills = np.array([3, 3], np.int32)
    engaged = np.zeros(2, np.int32)
    exhaustion = np.zeros(2)
    flags = np.zeros(2, np.uint8)
    proposal = np.zeros(flat.size, np.int32)
    pdl1 = np.zeros(flat.size)
    t_cells_k.attack_propose(flat, np.zeros(flat.size, np.uint8), pdl1, np.empty(0), proposal,
                             sites, 2, engaged, kills, exhaustion, flags,
                             _offsets((5, 5)), np.ones(1), -1e9, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0,
                             0.0, 0.0, 1, np.uint64(1), np.uint64(2))
    killed = np.empty(2, np.int64)
    t_cells_k.attack_resolve(flat, proposal, sites, 2, _offsets((5, 5)), 1, np.uint64(3), kills,
                             engaged, flags, 1, killed)
    assert kind[2, 2] == DEAD
    assert sorted(kills) == [2, 3] and (killed >= 0).sum() == 1
    assert sorted(flags & t_cells_k.KILLED) == [0, t_cells_k.KILLED]
    assert all(flags & t_cells_k.CONTACT)


@pytest.mark.parametrize("dims", SHAPES)
def test_fate_and_deaths_match_naive(dims):
    kind, _, g = _lattice(dims, 5)
    t = _t_cells(kind, g, 30)
    t["flags"] |= np.where(g.random(t["sites"].size) < 0.3, ref.KILLED, 0).astype(np.uint8)
    key = _key(rng.STREAM_T_CELL_FATE)
    expected_kind = kind.copy()
    expected = {name: list(v.copy()) for name, v in t.items()}
    expected_alive = ref.t_cell_fate(expected_kind, expected, 0.2, 0.6, key)
    alive = np.empty(t["sites"].size, np.uint8)
    t_cells_k.fate(kind.reshape(-1), t["sites"], t["sites"].size, t["kills_left"], t["engaged"],
                   t["exhaustion"], t["flags"], 0.2, 0.6, np.uint64(key), alive)
    np.testing.assert_array_equal(alive.astype(bool), expected_alive)
    np.testing.assert_array_equal(kind, expected_kind)
    for name in ("engaged", "flags"):
        np.testing.assert_array_equal(t[name], expected[name], err_msg=name)
    assert 0 < alive.sum() < alive.size

    s = _agents(kind, g, 15, SUPPRESSIVE)
    key = _key(rng.STREAM_SUPPRESSIVE_FATE)
    expected_kind = kind.copy()
    expected_alive = ref.deaths(expected_kind, list(s), 0.4, key)
    alive = np.empty(s.size, np.uint8)
    agents_k.agent_deaths(kind.reshape(-1), s, s.size, 0.4, np.uint64(key), alive)
    np.testing.assert_array_equal(alive.astype(bool), expected_alive)
    np.testing.assert_array_equal(kind, expected_kind)


@pytest.mark.parametrize("dims", SHAPES)
def test_kind_sources_match_naive(dims):
    kind, _, g = _lattice(dims, 6)
    _agents(kind, g, 10, T_CELL)
    _agents(kind, g, 10, SUPPRESSIVE)
    ifn = g.random(kind.shape) * 0.4
    up_tab, src_tab = g.random((3, 8)), g.random((3, 8))
    uptake_ref, source_ref = ref.kind_sources(kind, up_tab, src_tab, ifn, 1, 0.7, 0.11, 1.26)
    uptake = np.full((3, kind.size), -1.0)
    source = np.full((3, kind.size), -1.0)
    micro.kind_sources(kind.reshape(-1), uptake, source, up_tab, src_tab, kind.shape[-1],
                       ifn.reshape(-1), 1, 0.7, 0.11, 1.26)
    np.testing.assert_array_equal(uptake, uptake_ref.reshape(3, -1))
    np.testing.assert_array_equal(source, source_ref.reshape(3, -1))


def _extents(kind):
    line_length = kind.shape[-1]
    lo = np.empty(kind.size // line_length, np.int64)
    hi = np.empty_like(lo)
    lattice.tissue_extents(kind.reshape(-1), line_length, lo, hi)
    return lo, hi


@pytest.mark.parametrize("dims", SHAPES)
def test_division_factor_matches_naive(dims):
    kind, _, g = _lattice(dims, 7)
    oxygen = g.random(kind.shape) * 45.0
    lo, hi = _extents(kind)
    out = np.full(kind.size, -1.0)
    micro.oxygen_division_factor(kind.reshape(-1), oxygen.reshape(-1), lo, hi, kind.shape[-1],
                                 5.0, 38.0, out)
    for c, value in ref.division_factor(kind, oxygen, 5.0, 38.0).items():
        assert out[np.ravel_multi_index(c, kind.shape)] == value


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("with_fields", [False, True])
def test_tumor_response_matches_naive(dims, with_fields):
    kind, clone, g = _lattice(dims, 8, tumour=0.6)
    pdl1 = np.where(kind == TUMOR, g.random(kind.shape), np.nan)
    newborn = (kind == TUMOR) & (g.random(kind.shape) < 0.2)
    pdl1[newborn] = np.nan
    pdl1[(kind == DEAD)] = 0.3  # a stale value at a site whose cell died
    oxygen = g.random(kind.shape) * 8.0 if with_fields else None
    ifn = g.random(kind.shape) * 0.3 if with_fields else None
    params = dict(necrosis_threshold=5.0, necrosis_full=2.5, p_necrosis_max=0.6, baseline=0.1,
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
    micro.tumor_response(kind.reshape(-1), clone.reshape(-1), flat_pdl1,
                         np.empty(0) if oxygen is None else oxygen.reshape(-1),
                         np.empty(0) if ifn is None else ifn.reshape(-1), lo, hi, lo, hi,
                         kind.shape[-1], params["necrosis_threshold"], params["necrosis_full"],
                         params["p_necrosis_max"], np.uint64(key), params["baseline"],
                         params["induced"], params["half"], params["hill"], params["keep"],
                         necrotic)
    np.testing.assert_array_equal(kind, expected_kind)
    np.testing.assert_array_equal(pdl1, expected_pdl1)
    assert {c: n for c, n in enumerate(necrotic.sum(0)) if n} == expected
    if with_fields:
        assert expected and (kind == NECROTIC).any()


@pytest.mark.parametrize("dims", SHAPES)
def test_census_matches_numpy(dims):
    kind, _, g = _lattice(dims, 9)
    pdl1 = np.where(kind == TUMOR, g.random(kind.shape), np.nan)
    lo, hi = _extents(kind)
    n_lines = lo.size
    count, cols, total = (np.zeros(n_lines, np.int64), np.zeros(n_lines, np.int64),
                          np.zeros(n_lines))
    micro.census(kind.reshape(-1), pdl1.reshape(-1), lo, hi, kind.shape[-1], count, cols, total)
    tumour = kind.reshape(n_lines, -1) == TUMOR
    np.testing.assert_array_equal(count, tumour.sum(1))
    np.testing.assert_array_equal(cols, (tumour * np.arange(kind.shape[-1])).sum(1))
    np.testing.assert_allclose(total, np.nansum(np.where(tumour, pdl1.reshape(n_lines, -1), 0), 1))


def test_tags_restart_before_overflow():
    """The runtime clears the proposal array and restarts tags before int32 would wrap."""
    from simulator.model.immune import ImmuneSystem
    system = ImmuneSystem.__new__(ImmuneSystem)
    system.proposal = np.full(10, 12345, np.int32)
    system.tag = agents_k.MAX_TAG - 3
    assert system._tags(5) == 1 and system.tag == 6 and not system.proposal.any()
    assert (agents_k.MAX_TAG + 30) * agents_k.TAG_UNIT < 2 ** 31


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
    the documented mobility rule and the documented stream keys."""
    engine = _engine_scenario(dims)
    from simulator.engine import Engine
    e = Engine(engine)
    sc, im = e.scenario, e.immune
    dt_d = sc.simulation.dt_hours / 24.0
    t_sc = sc.t_cells
    params = dict(suppression_max=sc.suppressive.suppression_max,
                  suppression_half_saturation=sc.suppressive.cytokine_half_saturation_ng_per_ml,
                  exhaustion_suppression=t_sc.exhaustion_rate_per_day_suppression * dt_d,
                  exhaustion_pdl1=t_sc.exhaustion_rate_per_day_pdl1 * dt_d,
                  pd1_max_inhibition=t_sc.pd1_max_inhibition,
                  pd1_half_saturation=t_sc.pd1_half_saturation, pd1_blockade=0.0,
                  log_survival=-t_sc.kill_rate_per_day * dt_d,
                  antigenicity=np.full(2, sc.tumor.antigenicity), exhaustion_relief=0.0,
                  handling_steps=round(t_sc.handling_hours / sc.simulation.dt_hours))
    moves = round(t_sc.speed_um_per_min * sc.simulation.dt_hours * 60 / sc.simulation.spacing_um)
    s_moves = round(sc.suppressive.speed_um_per_min * sc.simulation.dt_hours * 60
                    / sc.simulation.spacing_um)
    totals = dict(kills=0, born=0, died=0)
    for _ in range(8):
        step = e.state.step
        key = _step_keys(e, step)
        for name in ("doses", "fields", "tumor", "tumor_response", "recruitment"):
            dict(e.phases)[name]()
        kind = _grid(e, e.state.kind).copy()
        clone = _grid(e, e.state.clone)
        chem, cyt = (_grid(e, e.tissue.flat(n)) for n in ("chemokine", "suppressive_cytokine"))
        pdl1 = _grid(e, im.pdl1).copy()
        t = {name: list(im.t.live(name).copy()) for name in ("sites", "kills_left", "engaged",
                                                               "exhaustion", "flags")}
        mobility = [0 if eng > 0 else (2 if not f & ref.EXHAUSTED and k > 0 else 1)
                    for eng, f, k in zip(t["engaged"], t["flags"], t["kills_left"])]
        sites = t["sites"]
        for s in range(moves):
            sites = ref.migrate_substep(kind, sites, mobility, chem, TUMOR, t_sc.chemotaxis_bias,
                                        ref.substep_key(key(rng.STREAM_T_CELL_MOVE), s),
                                        ref.substep_key(key(rng.STREAM_MOVE_PRIORITY), s), T_CELL)
        t["sites"] = sites
        killed = ref.attack(kind, clone, pdl1, cyt, t, params,
                            dict(target=key(rng.STREAM_T_CELL_TARGET),
                                 kill=key(rng.STREAM_T_CELL_KILL),
                                 priority=key(rng.STREAM_KILL_PRIORITY)))
        e._t_cell_phase()
        np.testing.assert_array_equal(_grid(e, e.state.kind), kind)
        for name in t:
            np.testing.assert_array_equal(im.t.live(name), t[name], err_msg=name)
        totals["kills"] += len(killed)

        s_sites = list(im.s.live("sites"))
        for s in range(s_moves):
            s_sites = ref.migrate_substep(kind, s_sites, [1] * len(s_sites), chem, -1,
                                          sc.suppressive.chemotaxis_bias,
                                          ref.substep_key(key(rng.STREAM_SUPPRESSIVE_MOVE), s),
                                          ref.substep_key(key(rng.STREAM_SUPPRESSIVE_PRIORITY), s),
                                          SUPPRESSIVE)
        e._suppressive_phase()
        np.testing.assert_array_equal(_grid(e, e.state.kind), kind)
        np.testing.assert_array_equal(im.s.live("sites"), s_sites)

        p_death = -math.expm1(-t_sc.death_rate_per_day * dt_d)
        p_exh = -math.expm1(-t_sc.exhausted_death_rate_per_day * dt_d)
        alive = ref.t_cell_fate(kind, t, p_death, p_exh, key(rng.STREAM_T_CELL_FATE))
        parents = sorted((t["sites"][a], a) for a in range(len(alive))
                         if alive[a] and t["flags"][a] & ref.KILLED)
        new, which = ref.place_beside(kind, [s for s, _ in parents],
                                      [t_sc.expansion_probability_per_kill] * len(parents),
                                      key(rng.STREAM_T_CELL_EXPAND), T_CELL)
        expected = {name: [v for v, ok in zip(t[name], alive) if ok] for name in t}
        for site, p in zip(new, which):
            a = parents[p][1]
            expected["sites"].append(site)
            for name in ("kills_left", "engaged", "exhaustion"):
                expected[name].append(t[name][a])
            expected["flags"].append(t["flags"][a] & ref.EXHAUSTED)
        s_alive = ref.deaths(kind, s_sites, -math.expm1(-sc.suppressive.death_rate_per_day * dt_d),
                             key(rng.STREAM_SUPPRESSIVE_FATE))
        e._immune_state_phase()
        np.testing.assert_array_equal(_grid(e, e.state.kind), kind)
        for name in expected:
            np.testing.assert_array_equal(im.t.live(name), expected[name], err_msg=name)
        np.testing.assert_array_equal(im.s.live("sites"),
                                      [s for s, ok in zip(s_sites, s_alive) if ok])
        totals["born"] += len(new)
        totals["died"] += alive.count(False)
        e.state.step += 1
        # the recorded tumour count follows the lattice through kills and necrosis
        assert e.observe()["tumor_cells"] == int((e.state.kind == TUMOR).sum())
    assert totals["kills"] > 0 and totals["born"] > 0 and totals["died"] > 0
    assert im.s.n > 0
