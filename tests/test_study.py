"""Paired comparison: common random numbers, resume, failure reporting, Dask execution."""
import csv
import math
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import ROOT, needs_jit
from simulator import study
from simulator.scenario import library_dir
from simulator.schema import ScenarioError

SMALL = ["simulation.dimensions=[60,60]", "simulation.duration_days=20",
         "simulation.treatment_start_day=8", "initial.tumor_radius_sites=4",
         "endpoints.scan_interval_days=4"]


def _arm(tmp_path, name, extra=""):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'base = "{library_dir() / "default.toml"}"\n{extra}')
    return path


def _same(a, b):
    """Equal values; NaN (a series with no defined value, e.g. mean PD-L1 without tumour
    cells) equals NaN."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


@needs_jit
def test_identical_arms_give_identical_runs_and_resume_skips_finished(tmp_path):
    a, b = _arm(tmp_path, "a"), _arm(tmp_path, "b")
    out = tmp_path / "study"
    report = study.compare([a, b], 3, out, overrides=SMALL, figures=False)
    assert [o.status for o in report.outcomes] == ["complete"] * 6
    for r in range(3):
        da = _datasets(study.run_path(out, "a", r))
        db = _datasets(study.run_path(out, "b", r))
        assert da.keys() == db.keys()
        for key in da:
            if key != "provenance/scenario_toml":
                assert _same(da[key], db[key]), key
    # replicates differ from each other (a different random key per replicate)
    t0 = _datasets(study.run_path(out, "a", 0))["timeseries/tumor_cells"]
    t1 = _datasets(study.run_path(out, "a", 1))["timeseries/tumor_cells"]
    assert not np.array_equal(t0, t1)
    # resume: remove one run and break another; only those are redone
    study.run_path(out, "b", 1).unlink()
    with h5py.File(study.run_path(out, "a", 2), "r+") as f:
        f.attrs["status"] = "incomplete"
    again = study.compare([a, b], 3, out, overrides=SMALL, figures=False)
    statuses = {(o.arm, o.replicate): o.status for o in again.outcomes}
    assert statuses.pop(("b", 1)) == "complete" and statuses.pop(("a", 2)) == "complete"
    assert set(statuses.values()) == {"skipped"}
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == 6 and {r["arm"] for r in rows} == {"a", "b"}
    arms = list(csv.DictReader(open(out / "arms.csv")))
    assert [r["arm"] for r in arms] == ["a", "b"]
    assert float(arms[1]["vs_a_best_response_mean_difference"]) == 0.0
    with h5py.File(out / "study.h5", "r") as f:
        assert f["timeseries/tumor_cells"].shape[:2] == (2, 3)


@needs_jit
def test_failed_runs_are_reported_and_others_finish(tmp_path):
    # A cohort draw of a death rate from normal(0, 1) is negative for some replicates:
    # those runs fail with a clear line naming arm, replicate and seed; the rest finish.
    cohort = ('[[cohort]]\nkey = "tumor.death_rate_per_day"\ndistribution = "normal"\n'
              'mean = 0.0\nsd = 1.0\n')
    arm = _arm(tmp_path, "c", cohort)
    report = study.compare([arm], 6, tmp_path / "s", overrides=SMALL, figures=False)
    failed = report.failed
    assert 0 < len(failed) < 6
    assert all("tumor.death_rate_per_day" in o.error and "replicate" in o.error for o in failed)
    done = [o for o in report.outcomes if o.status == "complete"]
    for o in done:
        with h5py.File(o.path, "r") as f:
            assert f.attrs["status"] == "complete"
            assert f["cohort"].attrs["tumor.death_rate_per_day"] >= 0


def test_an_override_of_a_key_the_cohort_draws_is_refused():
    """A study draws the [[cohort]] keys per patient after --set, so `--set
    tumor.antigenicity=2` on the melanoma arms (which draw it) would be replaced in every
    replicate without a word: refused with the key named; without the entry it is taken."""
    arm = library_dir() / "untreated.toml"
    with pytest.raises(ScenarioError, match="a \\[\\[cohort\\]\\] entry draws it") as caught:
        study.load_arms([arm], ["tumor.antigenicity=2"])
    assert caught.value.key == "tumor.antigenicity" and caught.value.source == str(arm)
    (loaded,) = study.load_arms([arm], ["cohort=[]", "tumor.antigenicity=2"])
    assert "antigenicity = 2.0" in loaded.toml
    study.load_arms([arm], ["tumor.division_rate_per_day=0.5"])  # not drawn: taken


def test_arms_may_differ_in_their_rules_scans_not_in_their_tumour(tmp_path):
    """The rules first look at the tumour at the treatment start, so [regimen] is part of
    what an arm may change (the library's sequences scan fortnightly, the other arms'
    rules weekly); a pre-treatment key is not."""
    base = f'base = "{(library_dir() / "anti_pd1.toml").as_posix()}"\n'
    (tmp_path / "fortnightly.toml").write_text(base + "[regimen]\nscan_interval_days = 14\n")
    (tmp_path / "hotter.toml").write_text(base + "[tumor]\ndeath_rate_per_day = 0.3\n")
    arms = study.load_arms([library_dir() / "anti_pd1.toml", tmp_path / "fortnightly.toml"])
    assert [a.name for a in arms] == ["anti_pd1", "fortnightly"]
    with pytest.raises(ScenarioError, match="differs from the first arm.*tumor.death_rate"):
        study.load_arms([library_dir() / "anti_pd1.toml", tmp_path / "hotter.toml"])


@needs_jit
def test_cli_compare_reports_failures(tmp_path):
    arm = _arm(tmp_path, "d")
    result = subprocess.run([sys.executable, "-m", "simulator", "compare", str(arm),
                             "--replicates", "2", "-o", str(tmp_path / "out"), "--no-figures",
                             *sum((["--set", o] for o in SMALL), [])],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 of 2 runs on disk" in result.stdout


@needs_jit
@pytest.mark.timeout(300)
def test_study_runs_on_a_real_dask_cluster(tmp_path):
    pytest.importorskip("distributed")
    dask = shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command line is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        import json
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--host", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                # the workers import this checkout, not whichever tumorsim is installed
                env={**os.environ, "PYTHONPATH": str(ROOT)}))
        from distributed import Client
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        a, b = _arm(tmp_path, "a"), _arm(tmp_path, "b")
        local = study.compare([a, b], 2, tmp_path / "local", overrides=SMALL, figures=False)
        remote = study.compare([a, b], 2, tmp_path / "dask", overrides=SMALL, figures=False,
                               scheduler=address)
        assert [o.status for o in remote.outcomes] == ["complete"] * 4
        for o in local.outcomes:
            da = _datasets(o.path)
            db = _datasets(study.run_path(tmp_path / "dask", o.arm, o.replicate))
            for key in da:
                if key != "provenance/scenario_toml":
                    assert _same(da[key], db[key]), key
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@needs_jit
def test_worker_pool_after_parallel_kernels_in_the_parent(tmp_path):
    """The parent has run parallel (OpenMP) kernels; a forked worker would die at its
    first parallel kernel, so workers are spawned."""
    from simulator.engine import Engine, set_threads
    from simulator.scenario import load
    set_threads(2)
    engine = Engine(load(library_dir() / "tumor_only.toml", ["simulation.dimensions=[40,40]"]))
    engine.step()
    report = study.compare([_arm(tmp_path, "p")], 2, tmp_path / "s", overrides=SMALL,
                           workers=2, figures=False)
    assert [o.status for o in report.outcomes] == ["complete"] * 2


def test_stopping_a_pool_leaves_no_worker_and_no_manager_thread(tmp_path):
    """stop_pool (an interrupted study) ends the workers mid-job and waits for the pool's
    manager thread, which closes its wake-up pipe once they are gone: an exit while it did
    so raced Python's exit hook writing to that pipe (a traceback at a SIGTERMed compare,
    tests/test_faults.py's compare-SIGTERM case, seen once in CI)."""
    from simulator.study import workers
    pool = workers.start_pool(2, tmp_path)
    jobs = [pool.submit(time.sleep, 60) for _ in range(2)]
    deadline = time.monotonic() + 120
    while not all(job.running() for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(job.running() for job in jobs)
    processes = list(pool._processes.values())
    manager = pool._executor_manager_thread
    workers.stop_pool(pool, tmp_path)
    assert not any(p.is_alive() for p in processes)
    assert not manager.is_alive()


def test_paired_differences_with_no_shared_replicate_are_empty_not_an_error():
    """An arm whose runs all failed shares no replicate with the reference: the paired
    columns say 0 pairs and NaN, and the study summary is still written."""
    from simulator.analysis.statistics import paired_differences
    out = paired_differences({0: dict(objective_response=True, durable_response=False,
                           best_response=-0.5)}, {}, prefix="vs_ref_")
    assert out["vs_ref_pairs"] == 0
    assert math.isnan(out["vs_ref_objective_response_difference"])
