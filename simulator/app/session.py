"""One explorer run: one or two regimen arms grown from one pre-treatment tumour.

A thin layer over the engine's API, with no model logic of its own: the tumour grows under
arm A's scenario with :func:`simulator.engine.run` (``until_step`` = the treatment start),
then :func:`simulator.engine.fork` copies it into every arm — common random numbers, as in
``tumorsim compare`` — so the two arms on screen differ only where their regimens do.
Records come from :meth:`Engine.observe` through ``run``'s recorder hook (:class:`History`),
lattice frames from the engine's state, fields from :meth:`Engine.field`.

:class:`Player` advances a :class:`Exploration` on a background thread (Numba kernels
release the GIL), publishing the latest frame for the browser at most ``fps`` times a
second, so the page keeps up whatever the lattice size: the simulation runs at its own
speed (or at a chosen number of simulated days per second) and the view shows the newest
state each time it draws.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from simulator import engine as engine_mod
from simulator.app import render
from simulator.model.tissue import FIELD_NAMES
from simulator.model.tumor import escape_bit
from simulator.treatment.regimen import day_to_step

#: Series the explorer plots, from ``Engine.observe()``.
SERIES = ("tumor_cells", "tumor_sensitive", "tumor_resistant", "t_cells", "suppressive_cells")
#: Frames kept for replay per arm, at most (one every ``stride`` steps).
REPLAY_FRAMES = 600


class History:
    """A recorder for :func:`simulator.engine.run`: keeps the plotted series in memory and a
    replay frame every ``stride`` steps."""

    def __init__(self, stride: int):
        self.stride = stride
        self.steps: list[int] = []
        self.time_days: list[float] = []
        self.series: dict[str, list[float]] = {name: [] for name in SERIES}
        self.drugs: dict[str, list[float]] = {}
        self.frame_steps: list[int] = []
        self.frames: list[np.ndarray] = []

    def record(self, engine):
        step = engine.state.step
        if self.steps and self.steps[-1] == step:   # run() records step 0 again: once is enough
            return
        self.steps.append(step)
        obs = engine.observe()
        self.time_days.append(float(obs["time_days"]))
        for name in SERIES:
            self.series[name].append(float(obs[name]))
        for name, value in obs["drug"].items():
            self.drugs.setdefault(name, [0.0] * (len(self.time_days) - 1)).append(float(value))
        if step % self.stride == 0:   # frame first: a reader bounds itself by frame_steps
            self.frames.append(frame_of(engine))
            self.frame_steps.append(step)

    def copy(self) -> "History":
        h = History(self.stride)
        h.steps, h.time_days = list(self.steps), list(self.time_days)
        h.series = {k: list(v) for k, v in self.series.items()}
        h.drugs = {k: list(v) for k, v in self.drugs.items()}
        h.frame_steps, h.frames = list(self.frame_steps), list(self.frames)
        return h

    def rows(self, start: int, stop: int | None = None) -> dict[str, list[float]]:
        """Records ``start:stop`` as columns (for streaming to a plot)."""
        out = {"time_days": self.time_days[start:stop]}
        out.update({k: v[start:stop] for k, v in self.series.items()})
        return out

    def __len__(self) -> int:
        """Complete records (the series are appended after the time)."""
        return min(len(v) for v in (self.time_days, *self.series.values()))

    def frame_at(self, day: float, dt_days: float) -> tuple[int, np.ndarray] | None:
        """The kept frame nearest to ``day`` at or before it: (step, categories)."""
        if not self.frames:
            return None
        step = int(np.floor(day / dt_days + 1e-9))
        i = max(0, int(np.searchsorted(self.frame_steps, step, side="right")) - 1)
        return self.frame_steps[i], self.frames[i]


def frame_of(engine) -> np.ndarray:
    """The engine's lattice as replay categories (uint8 per site)."""
    state = engine.state
    return render.categories(state.grid(), state.grid(state.clone),
                             escape_bit(engine.scenario))


@dataclass
class Arm:
    name: str
    scenario: object
    engine: object = None
    history: History | None = None

    def doses(self) -> list[tuple[float, str]]:
        """(day, drug) of every dose given so far (the regimen's own log)."""
        if self.engine is None:
            return []
        return [(d.day, d.drug) for d in self.engine.treatment.dose_log]

    def given_drugs(self) -> list[str]:
        return sorted({drug for _, drug in self.doses()})


@dataclass
class Exploration:
    """Arms that share one pre-treatment tumour (arm A's scenario until the treatment
    start, then each arm's own)."""
    scenarios: list
    names: list = field(default_factory=lambda: ["A", "B"])

    def __post_init__(self):
        first = self.scenarios[0]
        sim = first.simulation
        self.dt_days = sim.dt_hours / 24.0
        self.last_step = sim.steps
        self.fork_step = min(day_to_step(sim.treatment_start_day, sim.dt_hours), self.last_step)
        self.stride = max(1, -(-self.last_step // REPLAY_FRAMES))
        self.base = engine_mod.Engine(first)
        self.base_history = History(self.stride)
        self.base_history.record(self.base)
        self.arms = [Arm(self.names[i], s) for i, s in enumerate(self.scenarios)]
        if self.fork_step == 0:
            self._fork()

    @property
    def forked(self) -> bool:
        return self.arms[0].engine is not None

    @property
    def step(self) -> int:
        return self.arms[0].engine.state.step if self.forked else self.base.state.step

    @property
    def day(self) -> float:
        return self.step * self.dt_days

    @property
    def done(self) -> bool:
        return self.step >= self.last_step

    def _fork(self):
        for arm in self.arms:
            arm.engine = engine_mod.fork(self.base, arm.scenario)
            arm.history = self.base_history.copy()
        self.base = None

    def advance(self, steps: int = 1):
        """Run every arm ``steps`` steps further (not past the end)."""
        target = min(self.step + steps, self.last_step)
        if not self.forked:
            until = min(target, self.fork_step)
            engine_mod.run(self.scenarios[0], self.base_history, engine=self.base,
                           until_step=until)
            if until == self.fork_step:
                self._fork()
        if self.forked:
            for arm in self.arms:
                engine_mod.run(arm.scenario, arm.history, engine=arm.engine, until_step=target)

    def history(self, arm: int) -> History:
        return self.arms[arm].history if self.forked else self.base_history

    def engine(self, arm: int):
        return self.arms[arm].engine if self.forked else self.base

    def frame(self, arm: int) -> np.ndarray:
        return frame_of(self.engine(arm))

    def field(self, arm: int, name: str) -> np.ndarray | None:
        """A tissue field of the arm's current state; None when it is not solved."""
        try:
            return self.engine(arm).field(name)
        except KeyError:
            return None

    def field_names(self) -> list[str]:
        """The tissue fields the engine solves (``Engine.field`` raises KeyError for the
        others)."""
        return [name for name in FIELD_NAMES if self.field(0, name) is not None]


@dataclass
class Published:
    """What the view draws: a frame per arm and how far each history and dose log had got
    when it was taken. Histories and dose logs only grow (a fork copies the shared part),
    so the view reads them up to these counts without taking the player's lock."""
    version: int
    step: int
    day: float
    frames: list            # categories per arm
    fields: list            # field per arm (or None)
    records: list           # history length per arm
    doses: list             # dose-log length per arm
    running: bool
    done: bool


class Player:
    """Runs an :class:`Exploration` on a background thread.

    ``days_per_second`` = None runs as fast as the machine allows; otherwise the simulated
    clock is held to that pace. A frame is published after each batch of steps, at most
    ``fps`` times a second; the view picks up the latest (``latest()``) when it draws.
    ``threads`` Numba threads step the arms (one by default: on a shared or busy machine a
    parallel region stalls whenever another process holds a core).

    Only the player's thread touches the engines; the view never waits for it (a lock the
    stepping thread takes back at once would starve the server), it reads ``latest()``.
    """

    def __init__(self, exploration: Exploration, *, fps: float = 20.0,
                 days_per_second: float | None = 20.0, field_name: str | None = None,
                 threads: int = 1):
        self.exploration = exploration
        self.threads = threads
        self.fps = fps
        self.days_per_second = days_per_second
        self.field_name = field_name
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._running = False
        self._pending_steps = 0
        self._republish = False
        self._version = 0
        self._published: Published | None = None
        self.frames_published = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="tumorsim-explore", daemon=True)
        self._publish()
        self.thread.start()

    # ------------------------------------------------------------------ controls
    def play(self):
        self._running = True
        self._wake.set()

    def pause(self):
        self._running = False

    def step(self, steps: int = 1):
        """Advance ``steps`` steps (while paused)."""
        self._pending_steps += steps
        self._wake.set()

    def stop(self):
        self._stop = True
        self._running = False
        self._wake.set()

    def set_field(self, name: str | None):
        """Overlay field ``name`` (None: none) from the next frame on."""
        self.field_name = name
        self._republish = True
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._running and not self.exploration.done

    def latest(self) -> Published | None:
        return self._published

    # ------------------------------------------------------------------ the thread
    def _publish(self):
        ex = self.exploration
        n = len(ex.arms)
        fields = [ex.field(a, self.field_name) if self.field_name else None for a in range(n)]
        self._version += 1
        doses = [len(arm.engine.treatment.dose_log) if arm.engine is not None else 0
                 for arm in ex.arms]
        self._published = Published(
            self._version, ex.step, ex.day, [ex.frame(a) for a in range(n)], fields,
            [len(ex.history(a).time_days) for a in range(n)], doses, self.running, ex.done)
        self.frames_published += 1

    def _loop(self):
        engine_mod.set_threads(self.threads)   # Numba's thread count is per calling thread
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - shown in the page, the server lives on
            self.error = exc
            self._running = False
            with self.lock:
                self._publish()

    def _run(self):
        ex = self.exploration
        frame_interval = 1.0 / self.fps
        while not self._stop:
            if not (self._running or self._pending_steps) or ex.done:
                if self._running and ex.done:
                    self._running = False
                if self._published.running != self.running or self._republish:
                    self._republish = False            # paused, finished or a new overlay
                    with self.lock:
                        self._publish()
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            started = time.perf_counter()
            start_day = ex.day
            # one batch: as many steps as fit in one frame interval (at least one)
            while True:
                if self._pending_steps:
                    n = self._pending_steps
                    self._pending_steps = 0
                else:
                    n = 1
                with self.lock:
                    ex.advance(n)
                elapsed = time.perf_counter() - started
                if (ex.done or self._stop or not self._running or elapsed >= frame_interval
                        or self._ahead(start_day, elapsed)):
                    break
            pace = self._pace(start_day, time.perf_counter() - started)
            if pace > 0:
                time.sleep(pace)
            if ex.done:
                self._running = False
            with self.lock:
                self._publish()

    def _ahead(self, start_day: float, elapsed: float) -> bool:
        if self.days_per_second is None:
            return False
        return self.exploration.day - start_day >= self.days_per_second / self.fps

    def _pace(self, start_day: float, elapsed: float) -> float:
        """Seconds to wait so the simulated clock keeps to ``days_per_second``."""
        if self.days_per_second is None:
            return 0.0
        wanted = (self.exploration.day - start_day) / self.days_per_second
        return max(0.0, wanted - elapsed)
