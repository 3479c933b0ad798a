"""The lattice state of one run: flat padded arrays plus the bookkeeping kernels need.

Everything a run needs to continue lives in :class:`LatticeState` (arrays) and the step
counter; randomness is a pure function of (seed, replicate, stream, step, site), so a state
copied at step s and advanced gives the same future as the original — the basis of forking
one pre-treatment tumour into every regimen arm.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

import kernels
from kernels import lattice
from kernels.lattice import EMPTY, TUMOR, WALL
from kernels.rng import STREAM_INITIAL, fill_uniform, step_key, stream_key

# 2D lattices of fewer sites than this run the serial flavour of the kernels
# (``kernels.serial``): it compiles in ~2/3 of the time (the default scenario's first run
# ~7 s sooner), and at this size the parallel regions add little: a small lattice's 2-core
# work is mostly the fields' two lanes and the helper thread (``model.alongside``), which
# need none. The default scenario's whole run took as long either way (six runs each,
# alternating: 0.99-1.42 s serial, 1.08-1.46 s parallel); its steps at day 100 pinned at 2
# threads took 6-7% longer serial, the same at 1 thread (``benchmarks/bench_flavours.py``;
# benchmarks/README.md, "Serial kernels for small lattices"). 3D has no lanes: every 3D
# lattice runs the parallel kernels.
SERIAL_KERNELS_BELOW = 2 ** 17


def kernel_flavour(dimensions):
    """The kernel package a lattice of these (interior) dimensions calls
    (``kernels.flavour``): ``kernels.serial`` for a 2D lattice of fewer than
    SERIAL_KERNELS_BELOW sites, else ``kernels``. The results are the same either way."""
    dims = tuple(int(n) for n in dimensions)
    return kernels.flavour(len(dims) == 2 and math.prod(dims) < SERIAL_KERNELS_BELOW)


@dataclass
class Geometry:
    """Shape, neighbourhoods and line layout of a padded lattice."""
    dimensions: tuple[int, ...]
    padded: tuple[int, ...]
    offsets: np.ndarray
    line_offsets: np.ndarray
    line_length: int
    n_lines: int

    @classmethod
    def of(cls, dimensions) -> "Geometry":
        dims = tuple(int(n) for n in dimensions)
        padded = lattice.padded_shape(dims)
        return cls(dims, padded, lattice.moore_offsets(padded),
                   lattice.neighbour_line_offsets(padded), padded[-1],
                   int(np.prod(padded[:-1])))

    @property
    def ndim(self) -> int:
        return len(self.dimensions)

    @property
    def n_sites(self) -> int:
        return int(np.prod(self.padded))

    @property
    def kernels(self):
        """The kernel package this lattice's runs call (:func:`kernel_flavour`)."""
        return kernel_flavour(self.dimensions)

    def flat_index(self, coords) -> np.ndarray:
        """Flat padded indices of interior coordinates (array of shape (n, ndim))."""
        coords = np.asarray(coords) + 1
        return np.ravel_multi_index(tuple(coords.T), self.padded)

    def interior_mask(self) -> np.ndarray:
        mask = np.zeros(self.padded, dtype=bool)
        mask[tuple(slice(1, -1) for _ in self.padded)] = True
        return mask.ravel()

    def edge_sites(self) -> np.ndarray:
        """Flat indices of the interior sites on the domain's faces (next to the wall)."""
        mask = self.interior_mask().reshape(self.padded)
        inner = np.zeros_like(mask)
        inner[tuple(slice(2, -2) for _ in self.padded)] = True
        return np.flatnonzero(mask & ~inner)


# Per-site arrays of a LatticeState and their dtypes (read by ``model.memory``); per-line
# arrays: lo and hi, int64.
SITE_ARRAYS = dict(kind=np.uint8, clone=np.uint8, proposal=np.uint8)
LINE_ARRAYS = dict(lo=np.int64, hi=np.int64)


@dataclass
class LatticeState:
    """Per-site arrays (flat, padded) and per-line tissue extents."""
    geometry: Geometry
    kind: np.ndarray            # uint8 cell kind per site (kernels.lattice constants)
    clone: np.ndarray           # uint8 resistance mask of the tumour cell at a site
    proposal: np.ndarray        # uint8 scratch of the tumour kernel
    lo: np.ndarray              # int64 per line: first column holding tissue
    hi: np.ndarray              # int64 per line: last column holding tissue
    step: int = 0
    totals: dict = field(default_factory=lambda: dict(divisions=0, deaths=0, mutations=0,
                                                      mutable_divisions=0))

    @classmethod
    def empty(cls, dimensions) -> "LatticeState":
        geo = Geometry.of(dimensions)
        kind = np.full(geo.padded, WALL, dtype=SITE_ARRAYS["kind"])
        kind[tuple(slice(1, -1) for _ in geo.padded)] = EMPTY
        kind = kind.ravel()
        state = cls(geo, kind, np.zeros(geo.n_sites, SITE_ARRAYS["clone"]),
                    np.zeros(geo.n_sites, SITE_ARRAYS["proposal"]),
                    np.empty(geo.n_lines, LINE_ARRAYS["lo"]),
                    np.empty(geo.n_lines, LINE_ARRAYS["hi"]))
        state.refresh_extents()
        return state

    def refresh_extents(self):
        self.geometry.kernels.lattice.tissue_extents(self.kind, self.geometry.line_length,
                                                     self.lo, self.hi)

    def copy(self) -> "LatticeState":
        return copy.deepcopy(self)

    def grid(self, array: np.ndarray | None = None) -> np.ndarray:
        """The unpadded lattice view of a per-site array (default: cell kinds)."""
        return lattice.interior(self.kind if array is None else array, self.geometry.padded)

    @property
    def bytes_per_site(self) -> float:
        arrays = (self.kind, self.clone, self.proposal, self.lo, self.hi)
        return sum(a.nbytes for a in arrays) / np.prod(self.geometry.dimensions)


def seed_tumor(state: LatticeState, radius_sites: int, resistant_fraction: float,
               n_targets: int, seed: int, replicate: int, escape_fraction: float = 0.0,
               escape_bit: int = 0) -> None:
    """Fill a disc/ball of the given radius at the lattice centre with tumour cells (radius
    0: one founder); each is resistant to every target with ``resistant_fraction`` and,
    independently (its own draws), carries ``escape_bit`` with ``escape_fraction``."""
    geo = state.geometry
    centre = np.array([n // 2 for n in geo.dimensions])
    reach = np.arange(-radius_sites, radius_sites + 1)
    deltas = np.stack(np.meshgrid(*([reach] * geo.ndim), indexing="ij"), -1).reshape(-1, geo.ndim)
    deltas = deltas[(deltas ** 2).sum(1) <= radius_sites ** 2]
    coords = centre + deltas
    inside = np.all((coords >= 0) & (coords < np.array(geo.dimensions)), axis=1)
    sites = np.sort(geo.flat_index(coords[inside]))
    state.kind[sites] = TUMOR
    key = np.uint64(step_key(np.uint64(stream_key(seed, replicate, STREAM_INITIAL)), 0))
    draws = fill_uniform(key, np.empty(geo.n_sites))[sites]
    full_mask = (1 << n_targets) - 1
    clone = np.where(draws < resistant_fraction, full_mask, 0)
    if escape_bit:
        key = np.uint64(step_key(np.uint64(stream_key(seed, replicate, STREAM_INITIAL)), 1))
        escapes = fill_uniform(key, np.empty(geo.n_sites))[sites] < escape_fraction
        clone = clone | np.where(escapes, escape_bit, 0)
    state.clone[sites] = clone.astype(np.uint8)
    state.refresh_extents()


def ensure_resistant_cells(state: LatticeState, minimum: int, n_targets: int, seed: int,
                           replicate: int) -> int:
    """Make at least ``minimum`` live tumour cells resistant to every target: when fewer are,
    sensitive cells drawn uniformly at random (the smallest of one uniform draw per site,
    its own stream) gain every resistance bit; every cell when there are too few. Returns
    how many cells changed."""
    return _ensure_cells_carrying(state, minimum, (1 << n_targets) - 1, seed, replicate,
                                  draw_index=2)


def ensure_escape_cells(state: LatticeState, minimum: int, escape_bit: int, seed: int,
                        replicate: int) -> int:
    """Make at least ``minimum`` live tumour cells immune-escape variants: as
    :func:`ensure_resistant_cells`, with ``escape_bit`` and draws of their own (resistance
    bits are kept)."""
    return _ensure_cells_carrying(state, minimum, escape_bit, seed, replicate, draw_index=3)


def _ensure_cells_carrying(state: LatticeState, minimum: int, bits: int, seed: int,
                           replicate: int, draw_index: int) -> int:
    """At least ``minimum`` live tumour cells whose clone carries every one of ``bits``:
    the missing ones drawn uniformly among the others (the smallest of one uniform per
    site, drawn on STREAM_INITIAL at ``draw_index``). Returns how many cells changed."""
    tumour = np.flatnonzero(state.kind == TUMOR)
    carrying = (state.clone[tumour] & bits) == bits
    missing = minimum - int(np.count_nonzero(carrying))
    if missing <= 0:
        return 0
    candidates = tumour[~carrying]
    key = np.uint64(step_key(np.uint64(stream_key(seed, replicate, STREAM_INITIAL)),
                             draw_index))
    draws = fill_uniform(key, np.empty(state.geometry.n_sites))[candidates]
    chosen = candidates[np.argsort(draws, kind="stable")[:missing]]
    state.clone[chosen] |= np.uint8(bits)
    return len(chosen)
