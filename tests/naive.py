"""Slow, readable reference versions of every kernel, in plain Python.

Each mirrors one kernel's rules in the most direct form (no extents, no parallel passes,
Python integers for the hash) and shares nothing with it but the published constants, so
a test that finds them equal checks the fast version's bookkeeping, not a copy of it.
"""
from __future__ import annotations

import itertools

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

EMPTY, TUMOR, T_CELL, SUPPRESSIVE, DEAD, NECROTIC, VESSEL, WALL = range(8)


# --------------------------------------------------------------------------- random numbers
def mix64(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_key(seed: int, replicate: int, stream: int) -> int:
    z = mix64(seed + GOLDEN)
    z = mix64(z ^ ((replicate * 0xBF58476D1CE4E5B9) & MASK64))
    return mix64(z ^ ((stream * 0x94D049BB133111EB) & MASK64))


def step_key(key: int, step: int) -> int:
    return mix64(key ^ ((step * GOLDEN + 0x94D049BB133111EB) & MASK64))


def hash_index(key: int, index: int) -> int:
    return mix64(key + (index + 1) * GOLDEN)


def uniform(key: int, index: int) -> float:
    return (hash_index(key, index) >> 11) / 2.0 ** 53


# --------------------------------------------------------------------------- lattice
def neighbours(shape, coord):
    """Moore neighbours of a padded-grid coordinate, in the kernels' fixed order."""
    for delta in itertools.product((-1, 0, 1), repeat=len(shape)):
        if any(delta):
            yield tuple(c + d for c, d in zip(coord, delta))


def tumor_step(kind, clone, shape, p_die, p_divide, mutation_probability, n_targets,
               p_clear_dead, p_clear_necrotic, keys, division_factor=None):
    """One tumour step on padded grids ``kind``/``clone`` (modified in place).

    ``keys``: dict of step keys 'event', 'target', 'priority', 'mutation', 'clearance'.
    Returns (births, deaths, mutations, mutable_divisions).
    """
    flat = lambda c: int(np.ravel_multi_index(c, shape))  # noqa: E731 - index of a site
    before = kind.copy()
    targets = {}   # empty site -> list of parent coordinates proposing it
    dying = []
    for coord in itertools.product(*(range(n) for n in shape)):
        if before[coord] != TUMOR:
            continue
        i = flat(coord)
        c = int(clone[coord])
        u = uniform(keys["event"], i)
        if u < p_die[c]:
            dying.append(coord)
            continue
        divide = p_divide[c] * (1.0 if division_factor is None else division_factor[coord])
        if u < p_die[c] + (1.0 - p_die[c]) * divide:
            free = [n for n in neighbours(shape, coord) if before[n] == EMPTY]
            if free:
                target = free[int(uniform(keys["target"], i) * len(free))]
                targets.setdefault(target, []).append(coord)
    births = mutations = mutable = 0
    for target, parents in targets.items():
        parent = max(parents, key=lambda p: (hash_index(keys["priority"], flat(p)), -flat(p)))
        daughter = int(clone[parent])
        lacking = [t for t in range(n_targets) if not (daughter >> t) & 1]
        if lacking:
            mutable += 1
            u = uniform(keys["mutation"], flat(target))
            if u < mutation_probability:
                pick = min(int(u / mutation_probability * len(lacking)), len(lacking) - 1)
                daughter |= 1 << lacking[pick]
                mutations += 1
        kind[target] = TUMOR
        clone[target] = daughter
        births += 1
    for coord in dying:
        kind[coord] = DEAD
    for coord in itertools.product(*(range(n) for n in shape)):
        rate = {DEAD: p_clear_dead, NECROTIC: p_clear_necrotic}.get(int(before[coord]))
        if rate is not None and uniform(keys["clearance"], flat(coord)) < rate:
            kind[coord] = EMPTY
    return births, len(dying), mutations, mutable


def count_kinds(kind, n_kinds=8):
    return np.bincount(kind.ravel(), minlength=n_kinds)
