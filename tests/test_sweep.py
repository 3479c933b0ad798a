"""Parameter sweeps: grid with common random numbers, bad values caught before running."""
import csv

import pytest

from conftest import needs_jit
from simulator.study import sweep
from simulator.scenario import library_dir
from simulator.schema import ScenarioError

SMALL = ["simulation.dimensions=[50,50]", "simulation.duration_days=15",
         "initial.tumor_radius_sites=3", "endpoints.scan_interval_days=5"]


@needs_jit
def test_grid_sweep_table_and_heatmap(tmp_path):
    grid = sweep.parse_grid(["tumor.division_rate_per_day=0.3,1.0", "tumor.death_rate_per_day=0,0.2"])
    rows, figures = sweep.sweep(library_dir() / "tumor_only.toml", tmp_path, grid=grid,
                                replicates=2, endpoint="final_tumor_cells", overrides=SMALL)
    assert len(rows) == 8 and all(r["status"] == "complete" for r in rows)
    assert figures[0].exists() and figures[0].stat().st_size > 1000
    table = list(csv.DictReader(open(tmp_path / "sweep.csv")))
    final = {(r["tumor.division_rate_per_day"], r["tumor.death_rate_per_day"], r["replicate"]):
             float(r["final_tumor_cells"]) for r in table}
    # faster division gives a bigger tumour at every death rate and replicate (paired)
    for death in ("0", "0.2"):
        for rep in ("0", "1"):
            assert final[("1.0", death, rep)] > final[("0.3", death, rep)]


def test_bad_grid_value_is_caught_before_running(tmp_path):
    grid = sweep.parse_grid(["tumor.death_rate_per_day=0.1,-1"])
    with pytest.raises(ScenarioError, match="tumor.death_rate_per_day: must be >= 0"):
        sweep.sweep(library_dir() / "tumor_only.toml", tmp_path, grid=grid, overrides=SMALL)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ScenarioError, match="--grid"):
        sweep.parse_grid(["tumor.death_rate_per_day"])


@needs_jit
def test_sobol_indices_rank_the_influential_parameter(tmp_path):
    """Final burden depends strongly on the division rate and hardly on the (tiny-ranged)
    clearance rate of debris: the division rate's total index must be the larger."""
    pytest.importorskip("SALib")
    ranges = sweep.parse_ranges(["tumor.division_rate_per_day=0.3:1.2",
                                 "tumor.dead_clearance_rate_per_day=0.9:1.0"])
    rows, _ = sweep.sweep(library_dir() / "tumor_only.toml", tmp_path, sobol=ranges,
                          base_samples=4, endpoint="final_tumor_cells",
                          overrides=SMALL + ["tumor.death_rate_per_day=0"])
    assert len(rows) == 4 * (2 + 2) and all(r["status"] == "complete" for r in rows)
    table = {r["parameter"]: r for r in csv.DictReader(open(tmp_path / "sobol.csv"))}
    assert float(table["tumor.division_rate_per_day"]["ST"]) > \
        float(table["tumor.dead_clearance_rate_per_day"]["ST"])
