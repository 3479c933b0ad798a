"""The tumorsim growth rule written as an ordinary Mesa 3 model, for ``bench_tumor.py``.

The rule (tumorsim's tumour phase without mutation, see ``kernels/tumor.py``): a square
grid with walls (no torus), Moore neighbourhood, at most one cell per site. Each step every
tumour cell draws one uniform ``u``: ``u < p_die`` -> it dies (its site is freed at once);
else ``u < p_die + (1 - p_die) * p_divide`` -> it divides into a uniformly chosen empty
Moore neighbour, if it has one (contact inhibition). Daughters do not act in the step they
are born in.

This is written the way the Mesa documentation writes grid models — one ``CellAgent`` per
tumour cell on an ``OrthogonalMooreGrid(capacity=1)``, activated with
``agents.shuffle_do`` — not tuned for speed, since the point of the comparison is what a
modeller gets from the idiomatic framework code. Two unavoidable differences from tumorsim:
Mesa activates agents one after another in random order (a cell sees the divisions of the
cells before it this step), where tumorsim resolves all proposals of a step at once; and
Mesa removes a dead cell at once, where tumorsim leaves debris (the benchmark sets
tumorsim's clearance so debris lasts one step). Mesa builds each grid cell's neighbourhood
on first use and caches it, so the benchmark runs one untimed step first (as tumorsim's
kernels are compiled before timing).

Run ``python benchmarks/mesa_growth.py`` for a short stand-alone check.
"""
from __future__ import annotations

import math
import time

import mesa
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid


class TumourCell(CellAgent):
    """One tumour cell; it lives on one grid site."""

    def __init__(self, model: "GrowthModel", cell):
        super().__init__(model)
        self.cell = cell

    def step(self):
        model = self.model
        u = self.random.random()
        if u < model.p_die:
            self.remove()
        elif u < model.p_die + (1.0 - model.p_die) * model.p_divide:
            free = [c for c in self.cell.neighborhood if c.is_empty]
            if free:
                TumourCell(model, self.random.choice(free))


class GrowthModel(mesa.Model):
    """A disc of tumour cells of ``radius_sites`` at the centre of a ``width x height``
    grid, growing by the rule above with per-step probabilities ``p_die``, ``p_divide``."""

    def __init__(self, width: int = 200, height: int = 200, radius_sites: int = 60,
                 p_die: float = 0.0124, p_divide: float = 0.1175, seed: int = 1):
        super().__init__(seed=seed)
        self.p_die = p_die
        self.p_divide = p_divide
        self.grid = OrthogonalMooreGrid((width, height), torus=False, capacity=1,
                                        random=self.random)
        cx, cy = width // 2, height // 2
        for x in range(max(cx - radius_sites, 0), min(cx + radius_sites + 1, width)):
            for y in range(max(cy - radius_sites, 0), min(cy + radius_sites + 1, height)):
                if (x - cx) ** 2 + (y - cy) ** 2 <= radius_sites ** 2:
                    TumourCell(self, self.grid[(x, y)])
        self.tumor_cells = [len(self.agents)]   # live tumour cells after each step

    def step(self):
        self.agents.shuffle_do("step")
        self.tumor_cells.append(len(self.agents))


def per_step_probabilities(division_rate_per_day: float, death_rate_per_day: float,
                           dt_hours: float) -> tuple[float, float]:
    """(p_die, p_divide) as tumorsim computes them: p = 1 - exp(-k dt)."""
    dt_days = dt_hours / 24.0
    return -math.expm1(-death_rate_per_day * dt_days), -math.expm1(-division_rate_per_day
                                                                   * dt_days)


if __name__ == "__main__":
    p_die, p_divide = per_step_probabilities(0.5, 0.05, 6.0)
    model = GrowthModel(200, 200, 60, p_die, p_divide)
    model.step()                      # untimed: fills Mesa's neighbourhood caches
    model.tumor_cells = model.tumor_cells[-1:]
    steps = 10
    t0 = time.perf_counter()
    for _ in range(steps):
        model.step()
    wall = time.perf_counter() - t0
    updates = sum(model.tumor_cells[:-1])
    print(f"mesa {mesa.__version__}: {steps} steps, {model.tumor_cells[0]} -> "
          f"{model.tumor_cells[-1]} cells, {updates / wall / 1e6:.3f} M cell-updates/s")
