"""Slow, readable references of the immune and microenvironment kernels, in plain Python.

Same conventions as ``naive.py`` (to be merged into it): padded grids indexed by coordinate
tuples, the kernels' Moore neighbour order, Python integers for the hash. Each function
states a rule directly — dictionaries of proposals grouped by target, one loop over agents
or sites — and shares nothing with the kernels but the published rules and constants.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from naive import (DEAD, EMPTY, NECROTIC, SUPPRESSIVE, T_CELL, TUMOR, VESSEL, hash_index,
                   neighbours, step_key, uniform)

EXHAUSTED, CONTACT, KILLED = 1, 2, 4


def deltas(ndim):
    return [d for d in itertools.product((-1, 0, 1), repeat=ndim) if any(d)]


def substep_key(key, substep):
    return step_key(key, substep)


def _coord(shape, i):
    return tuple(int(x) for x in np.unravel_index(i, shape))


def _flat(shape, c):
    return int(np.ravel_multi_index(c, shape))


# --------------------------------------------------------------------------- migration
def migrate_substep(kind, sites, mobility, attractant, stop_kind, bias, move_key,
                    priority_key, agent_kind):
    """One move substep of one population on the padded grid ``kind`` (changed in place).

    ``sites``: list of flat indices (returned updated), ``mobility``: 0 immobile, 1 mobile,
    2 mobile unless a neighbour has ``stop_kind``; ``attractant``: padded grid or None.
    """
    shape = kind.shape
    before = kind.copy()
    wanted = {}  # source site -> target site
    sites = [int(i) for i in sites]
    for a, i in enumerate(sites):
        if mobility[a] == 0:
            continue
        c = _coord(shape, i)
        nbrs = list(neighbours(shape, c))
        if mobility[a] == 2 and any(before[n] == stop_kind for n in nbrs):
            continue
        free = [n for n in nbrs if before[n] == EMPTY]
        if not free:
            continue
        best, best_rise = None, 0.0
        if attractant is not None:
            for n in free:
                length = math.sqrt(sum((x - y) ** 2 for x, y in zip(n, c)))
                rise = (attractant[n] - attractant[c]) * (1.0 / length)
                if rise > best_rise:
                    best, best_rise = n, rise
        u = uniform(move_key, i)
        if u < bias and best is not None:
            target = best
        else:
            r = (u - bias) / (1.0 - bias) if u >= bias else u / bias
            target = free[min(int(r * len(free)), len(free) - 1)]
        wanted[i] = _flat(shape, target)
    by_target = {}
    for i, j in wanted.items():
        by_target.setdefault(j, []).append(i)
    moved = {}
    for j, sources in by_target.items():
        winner = max(sources, key=lambda s: (hash_index(priority_key, s), s))
        moved[winner] = j
        kind[_coord(shape, j)] = agent_kind
        kind[_coord(shape, winner)] = EMPTY
    return [moved.get(i, i) for i in sites]


# --------------------------------------------------------------------------- entry
def place_beside(kind, parents, probability, key, agent_kind):
    """Serial entry of new cells beside ``parents`` (flat sites) in the given order."""
    shape = kind.shape
    new, which = [], []
    for p, i in enumerate(int(i) for i in parents):
        prob = probability[p]
        if prob <= 0.0:
            continue
        u = uniform(key, i)
        if u >= prob:
            continue
        free = [n for n in neighbours(shape, _coord(shape, i)) if kind[n] == EMPTY]
        if not free:
            continue
        target = free[min(int(u / prob * len(free)), len(free) - 1)]
        kind[target] = agent_kind
        new.append(_flat(shape, target))
        which.append(p)
    return new, which


# --------------------------------------------------------------------------- T cells
def attack(kind, clone, pdl1, cytokine, t, params, keys):
    """One round of attacks. ``t``: dict of per-agent lists ``sites``, ``kills_left``,
    ``engaged``, ``exhaustion``, ``flags`` (updated in place); grids ``kind``, ``clone``,
    ``pdl1`` and ``cytokine`` (or None) are padded. ``params``: dict with the kernel's
    scalars; ``keys``: 'target', 'kill', 'priority'. Returns the killed flat sites."""
    shape = kind.shape
    succeeded = {}
    for a, i in enumerate(int(i) for i in t["sites"]):
        f = t["flags"][a] & EXHAUSTED
        if f:
            t["flags"][a] = f
            continue
        c = _coord(shape, i)
        s_sup = 0.0
        if cytokine is not None and cytokine[c] > 0.0:
            s_sup = params["suppression_max"] * cytokine[c] / (
                cytokine[c] + params["suppression_half_saturation"])
        drive = params["exhaustion_suppression"] * s_sup
        targets = []
        if t["engaged"][a] == 0 and t["kills_left"][a] > 0:
            targets = [n for n in neighbours(shape, c) if kind[n] == TUMOR]
        if targets:
            j = targets[min(int(uniform(keys["target"], i) * len(targets)), len(targets) - 1)]
            level = pdl1[j]
            s_pd = (params["pd1_max_inhibition"] * level
                    / (level + params["pd1_half_saturation"]) * (1.0 - params["pd1_blockade"]))
            s = 1.0 - (1.0 - s_pd) * (1.0 - s_sup)
            p_kill = -math.expm1(params["log_survival"] * params["antigenicity"][clone[j]]
                                 * (1.0 - s))
            drive += params["exhaustion_pdl1"] * level
            f |= CONTACT
            if uniform(keys["kill"], i) < p_kill:
                succeeded[i] = (a, _flat(shape, j))
        t["exhaustion"][a] += drive * (1.0 - params["exhaustion_relief"])
        t["flags"][a] = f
    by_target = {}
    for i, (a, j) in succeeded.items():
        by_target.setdefault(j, []).append((i, a))
    killed = []
    for j, attackers in by_target.items():
        i, a = max(attackers, key=lambda x: (hash_index(keys["priority"], x[0]), x[0]))
        kind[_coord(shape, j)] = DEAD
        t["kills_left"][a] -= 1
        t["engaged"][a] = params["handling_steps"]
        t["flags"][a] |= KILLED
        killed.append(j)
    return sorted(killed)


def t_cell_fate(kind, t, p_death, p_death_exhausted, fate_key):
    """Exhaustion, handling countdown, deaths; returns the alive flags."""
    shape = kind.shape
    alive = []
    for a, i in enumerate(int(i) for i in t["sites"]):
        f = t["flags"][a]
        if not f & EXHAUSTED and (t["exhaustion"][a] >= 1.0 or t["kills_left"][a] <= 0):
            f |= EXHAUSTED
        if t["engaged"][a] > 0 and not f & KILLED:
            t["engaged"][a] -= 1
        t["flags"][a] = f
        p = p_death_exhausted if f & EXHAUSTED else p_death
        dies = uniform(fate_key, i) < p
        if dies:
            kind[_coord(shape, i)] = EMPTY
        alive.append(not dies)
    return alive


def deaths(kind, sites, p_death, fate_key):
    shape = kind.shape
    alive = []
    for i in (int(i) for i in sites):
        dies = uniform(fate_key, i) < p_death
        if dies:
            kind[_coord(shape, i)] = EMPTY
        alive.append(not dies)
    return alive


# --------------------------------------------------------------------------- tissue
def hill(x, half, h):
    if x <= 0.0:
        return 0.0
    r = (x / half) ** h
    return r / (1.0 + r)


def kind_sources(kind, uptake_by_kind, source_by_kind, ifn, induced_field, induced_rate,
                 half, h):
    """(uptake, source): arrays (n_fields, *shape) per the kind tables, plus IFN-induced
    secretion at tumour sites into ``induced_field``."""
    n_fields = uptake_by_kind.shape[0]
    uptake = np.zeros((n_fields,) + kind.shape)
    source = np.zeros((n_fields,) + kind.shape)
    for c in itertools.product(*(range(n) for n in kind.shape)):
        k = kind[c]
        for f in range(n_fields):
            uptake[(f,) + c] = uptake_by_kind[f, k]
            source[(f,) + c] = source_by_kind[f, k]
        if induced_field >= 0 and ifn is not None and k == TUMOR:
            source[(induced_field,) + c] += induced_rate * hill(ifn[c], half, h)
    return uptake, source


def division_factor(kind, oxygen, threshold, saturation):
    """Per tumour site: clip((O - threshold) / (saturation - threshold), 0, 1)."""
    out = {}
    for c in zip(*np.nonzero(kind == TUMOR)):
        x = (oxygen[c] - threshold) / (saturation - threshold)
        out[tuple(int(v) for v in c)] = min(max(x, 0.0), 1.0)
    return out


def tumor_response(kind, clone, pdl1, oxygen, ifn, params, necrosis_key, visit):
    """Necrosis and PD-L1 at the sites in ``visit`` (coordinate tuples); returns a dict
    clone -> cells turned necrotic."""
    shape = kind.shape
    necrotic = {}
    for c in visit:
        if kind[c] != TUMOR:
            pdl1[c] = np.nan
            continue
        i = _flat(shape, c)
        if oxygen is not None and oxygen[c] < params["necrosis_threshold"]:
            x = (params["necrosis_threshold"] - oxygen[c]) / (
                params["necrosis_threshold"] - params["necrosis_full"])
            p = params["p_necrosis_max"] * min(x, 1.0)
            if uniform(necrosis_key, i) < p:
                kind[c] = NECROTIC
                pdl1[c] = np.nan
                necrotic[int(clone[c])] = necrotic.get(int(clone[c]), 0) + 1
                continue
        target = params["baseline"]
        if ifn is not None:
            target += params["induced"] * hill(ifn[c], params["half"], params["hill"])
        if math.isnan(pdl1[c]):
            pdl1[c] = target
        else:
            pdl1[c] = target + (pdl1[c] - target) * params["keep"]
    return necrotic


__all__ = ["CONTACT", "DEAD", "EXHAUSTED", "KILLED", "SUPPRESSIVE", "T_CELL", "VESSEL",
           "attack", "deaths", "deltas", "division_factor", "hill", "kind_sources",
           "migrate_substep", "place_beside", "substep_key", "t_cell_fate", "tumor_response"]
