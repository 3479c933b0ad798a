"""Counter-based random numbers: a pure function of (seed, replicate, stream, step, index).

Keys and hashes are uint64 throughout: every function coerces its inputs, because a key
that crosses into Python comes back as int64, and a signed right shift would sign-extend.

There is no generator state. Each decision hashes its own coordinates, so the value a cell
draws does not depend on thread count, iteration order or on what other cells did — the
basis of bit-identical parallel runs and of common random numbers across regimen arms.

The mixer is SplitMix64's finaliser (Steele, Lea & Flood 2014, the generator behind Java's
SplittableRandom): ``mix64(key + index * GOLDEN)`` for consecutive indices is exactly the
SplitMix64 sequence started at ``key``, which passes BigCrush.
"""
import numpy as np

from .jit import jit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53

# One stream per kind of decision. Never renumber: stored results depend on these values.
STREAM_TUMOR_EVENT = 1        # death clocks of tumour cells
STREAM_DIVISION_TARGET = 2    # which free neighbour receives the daughter
STREAM_DIVISION_PRIORITY = 3  # (retired with the synchronous tumour step; kept, never reused)
STREAM_MUTATION = 4           # resistance mutation of the daughter
STREAM_CLEARANCE = 5          # removal of dead-cell debris
STREAM_INITIAL = 6            # initial resistant clones
STREAM_NECROSIS = 7
STREAM_T_CELL_RECRUIT = 8
STREAM_T_CELL_MOVE = 9
STREAM_T_CELL_KILL = 10
STREAM_T_CELL_FATE = 11
STREAM_SUPPRESSIVE_RECRUIT = 12
STREAM_SUPPRESSIVE_MOVE = 13
STREAM_SUPPRESSIVE_FATE = 14
STREAM_MOVE_PRIORITY = 15
STREAM_COHORT = 16
STREAM_VESSEL = 17                # random vessel placement at t = 0
STREAM_T_CELL_EXPAND = 18         # expansion of a T cell after a kill (and the daughter's site)
STREAM_KILL_PRIORITY = 19         # kill credit when several T cells kill one tumour cell
STREAM_T_CELL_TARGET = 20         # which adjacent tumour cell a T cell attacks
STREAM_SUPPRESSIVE_PRIORITY = 21  # who wins when suppressive cells propose the same site
STREAM_MOVE_COUNT = 22           # stochastic rounding of an immune cell's moves per step
STREAM_T_CELL_ENTRY_SITE = 23    # which free neighbour of its vessel a new T cell takes
STREAM_SUPPRESSIVE_ENTRY_SITE = 24  # the same for a new suppressive cell
STREAM_EXPANSION_SITE = 25       # which free neighbour a T cell's daughter takes
STREAM_ENTRY_TIME = 26           # when in the step a recruited cell enters
STREAM_TUMOR_ATTEMPT = 27         # division-attempt clocks of tumour cells (continuous time)


@jit
def mix64(z):
    """SplitMix64 finaliser: a bijective avalanche of a 64-bit word."""
    z = np.uint64(z)
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit
def stream_key(seed, replicate, stream):
    """Key of one decision stream of one replicate; computed once per run."""
    z = mix64(np.uint64(seed) + GOLDEN)
    z = mix64(z ^ (np.uint64(replicate) * _M1))
    return mix64(z ^ (np.uint64(stream) * _M2))


@jit
def step_key(key, step):
    """Key of one step of a stream; computed once per step, outside the site loop."""
    return mix64(np.uint64(key) ^ (np.uint64(step) * GOLDEN + _M2))


@jit
def hash_index(key, index):
    """64 random bits for one site or cell within a step."""
    return mix64(np.uint64(key) + (np.uint64(index) + np.uint64(1)) * GOLDEN)


@jit
def uniform(key, index):
    """A uniform double in [0, 1) with 53 random bits."""
    return np.float64(hash_index(key, index) >> _S11) * _TO_UNIT


@jit
def time_salt(time):
    """What ``uniform_at`` mixes into a key for an event at ``time``: one hash per event
    time, so a kernel drawing for several sites or streams at one time computes it once
    (``uniform(key ^ time_salt(t), i)`` is ``uniform_at(key, i, t)``)."""
    return mix64(np.uint64(time * 9007199254740992.0) + GOLDEN)


@jit
def uniform_at(key, index, time):
    """A uniform double for one site at one event time within a step (``time`` in [0, 1),
    in units of the step): draws made by events of a continuous-time process are keyed by
    the event's time as well as the site, so a site can draw again later in the same step."""
    return uniform(np.uint64(key) ^ time_salt(time), index)


@jit
def fill_uniform(key, out):
    """out[i] = uniform(key, i); used by tests and by Python-side draws."""
    for i in range(out.shape[0]):
        out[i] = uniform(key, i)
    return out
