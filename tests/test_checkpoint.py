"""Checkpoint and restart: a run stopped at any step and resumed writes the same run file as
the uninterrupted run, bit for bit.

Compared: every dataset of the two files (dtype, shape and bytes: the time series, drug
series, snapshots with their fields, doses, provenance) and every attribute of every group
and dataset, root included (status, steps_completed, seed, scenario_sha256, software and
library versions, git commit, summary endpoints, cohort ...), except ``created`` and
``command_line`` (when and how each command was started) and ``resumed_at_steps`` (only in
the resumed file, where it must name the checkpoint's step).

A stop here is a crash: the recorder checkpoints at the chosen step, the run goes on a few
steps (records the resumed run must drop and redo) and then dies with an exception, as
after a SIGKILL (tests/test_runfile_kill.py kills real processes).
"""
import json
from contextlib import contextmanager

import h5py
import numba
import numpy as np
import pytest

from conftest import needs_jit
from runfile_compare import assert_same_run_file
from simulator import engine as engine_mod
from simulator import scenario as scenario_mod
from simulator.cli import main
from simulator.output import checkpoint, partial
from simulator.output import recorder as recorder_mod
from simulator.output.recorder import CannotResume, Recorder
from simulator.study import runner

TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2


class Crash(Exception):
    """Stands for a kill: the run stops with no checkpoint of its last steps."""


@contextmanager
def crash(monkeypatch, at_step: int, after: int = 3):
    """Checkpoint at ``at_step``, die ``after`` steps later."""
    original = Recorder.record

    def record(self, engine):
        original(self, engine)
        if engine.state.step == at_step:
            self.checkpoint(engine)
        if engine.state.step == at_step + after:
            raise Crash

    with monkeypatch.context() as m:
        m.setattr(Recorder, "record", record)
        with pytest.raises(Crash):
            yield


def _scenario(name, *overrides):
    path = None if name is None else scenario_mod.library_dir() / name
    return scenario_mod.load(path, list(overrides))


SMALL_2D = ["simulation.dimensions=[40,40]", "simulation.duration_days=16",
            "initial.tumor_radius_sites=4", "output.snapshot_every_days=2"]
TREATED = ["simulation.dimensions=[44,40]", "simulation.duration_days=24",
           "simulation.treatment_start_day=8", "initial.tumor_radius_sites=5",
           "vessels.density=0.05", "output.snapshot_every_days=3"]
CASES = {
    # name: (scenario, stop step)
    "2d_immune_fields": (lambda: _scenario(None, *SMALL_2D), 37),
    "3d_immune_fields": (lambda: _scenario(None, "simulation.dimensions=[14,13,12]",
                                           "simulation.duration_days=8",
                                           "initial.tumor_radius_sites=3",
                                           "output.snapshot_every_days=2"), 17),
    "2d_tumor_only": (lambda: _scenario("tumor_only.toml", *SMALL_2D), 29),
    # fields on coarser grids: each keeps its solution there between steps (warm start)
    "2d_coarse_fields": (lambda: _scenario(None, *SMALL_2D, "fields.oxygen.grid_coarsening=2",
                                           "fields.chemokine.grid_coarsening=4"), 37),
    "targeted_drug": (lambda: _scenario("targeted_continuous.toml", *TREATED), 45),
    "penetration": (lambda: _scenario("targeted_continuous_penetration.toml", *TREATED), 41),
    "anti_pd1_3d": (lambda: _scenario("anti_pd1.toml", "simulation.dimensions=[14,14,12]",
                                      "simulation.duration_days=12",
                                      "simulation.treatment_start_day=4",
                                      "initial.tumor_radius_sites=3"), 23),
}


@needs_jit
@pytest.mark.parametrize("case", sorted(CASES))
def test_resumed_run_is_bit_identical(tmp_path, monkeypatch, case):
    make, stop = CASES[case]
    scenario = make()
    assert scenario.simulation.steps > stop + 3
    runner.run_to_file(scenario, tmp_path / "reference.h5", threads=1)
    out = tmp_path / "run.h5"
    with crash(monkeypatch, stop):
        runner.run_to_file(scenario, out, threads=1)
    assert not out.exists() and len(partial.partials_of(out)) == 1
    result = runner.resume_to_file(out, threads=1)
    assert result.steps == scenario.simulation.steps
    assert partial.partials_of(out) == []
    assert_same_run_file(tmp_path / "reference.h5", out, [stop])


@needs_jit
@pytest.mark.skipif(not TWO_THREADS, reason="needs 2 Numba threads")
@pytest.mark.parametrize("beside", [False, True], ids=["as_chosen", "lanes_and_beside"])
def test_resumed_on_another_thread_count_twice(tmp_path, monkeypatch, beside):
    """Stopped at 1 thread, resumed at 2, stopped again, resumed at 1; ``lanes_and_beside``:
    at 2 threads the fields go in two lanes and the tumour phase solves two of them beside
    its kernels, whatever the lattice (``TissueFields.LANES``, ``Engine.FIELDS_ALONGSIDE``),
    and the checkpoint at 2 threads leaves out the second lane's workspace."""
    if beside:
        from simulator.model.tissue import TissueFields
        monkeypatch.setattr(TissueFields, "LANES", True)
        monkeypatch.setattr(engine_mod.Engine, "FIELDS_ALONGSIDE", True)
    scenario = _scenario(None, *SMALL_2D)
    runner.run_to_file(scenario, tmp_path / "reference.h5", threads=2)
    out = tmp_path / "run.h5"
    with crash(monkeypatch, 21):
        runner.run_to_file(scenario, out, threads=1)
    with crash(monkeypatch, 40):
        runner.resume_to_file(out, threads=2)
    runner.resume_to_file(out, threads=1)
    assert_same_run_file(tmp_path / "reference.h5", out, [21, 40])


@needs_jit
def test_adaptive_rule_state_survives_a_stop_during_a_pause(tmp_path, monkeypatch):
    """Stopped while the adaptive rule holds the drug off: the resumed run resumes dosing
    exactly when the uninterrupted one does."""
    # pause below 60% of baseline: on this small lattice the tumour's low point under the
    # drug is near the library's 50% (52% with the multigrid fields), too close to rely on;
    # the uncalibrated library's fast kill and arrest (the calibrated drug acts over months)
    # and no regression bed (the rules would see the lesion shrink only as it clears); the
    # calibrated growth takes ~40 days to regrow to the baseline after the pause
    scenario = _scenario("targeted_adaptive.toml", "simulation.dimensions=[50,50]",
                         "simulation.duration_days=100", "simulation.treatment_start_day=20",
                         "initial.tumor_radius_sites=6", "regimen.scan_interval_days=2",
                         "endpoints.residual_half_life_days=0",
                         "drugs.braf_inhibitor.kill.emax=0.08",
                         "drugs.braf_inhibitor.arrest.emax=0.85",
                         "output.snapshot_every_days=10",
                         "drugs.braf_inhibitor.rules=[{pause_below_fraction=0.6, "
                         "resume_above_fraction=1.0}]")
    runner.run_to_file(scenario, tmp_path / "reference.h5", threads=1)
    with h5py.File(tmp_path / "reference.h5") as f:
        doses = f["doses/table"][()]
    steps = doses["step"]
    gap = int(np.argmax(np.diff(steps)))
    assert steps[gap + 1] - steps[gap] > 2, "no pause in the reference run"
    assert b"rule:adaptive-resume" in set(doses["reason"])
    stop = int(steps[gap] + steps[gap + 1]) // 2   # inside the pause
    out = tmp_path / "run.h5"
    with crash(monkeypatch, stop):
        runner.run_to_file(scenario, out, threads=1)
    runner.resume_to_file(out, threads=1)
    assert_same_run_file(tmp_path / "reference.h5", out, [stop])


@needs_jit
def test_compare_arm_resumes_from_its_checkpoint_not_from_scratch(tmp_path, monkeypatch):
    """A killed compare arm (forked from the replicate's pre-treatment tumour) continues
    from its checkpoint: the pre-treatment tumour is not grown again, and the arm's file
    equals the uninterrupted arm's."""
    first = _scenario("untreated.toml", *TREATED)
    arm = _scenario("targeted_continuous.toml", *TREATED)
    start = runner.treatment_start_step(first)

    def run_arm(directory):
        pre = runner.Pretreatment(first, directory)
        try:
            runner.run_arm(pre, arm, directory / "targeted.h5", arm="targeted",
                           cohort={"tumor.antigenicity": 1.25})
        finally:
            pre.discard()
        return pre

    run_arm(tmp_path / "reference")
    out = tmp_path / "study" / "targeted.h5"
    with crash(monkeypatch, start + 9):
        run_arm(tmp_path / "study")
    again = run_arm(tmp_path / "study")
    assert again.history is None, "the pre-treatment tumour was grown again"
    assert_same_run_file(tmp_path / "reference" / "targeted.h5", out, [start + 9])
    with h5py.File(out) as f:
        assert f.attrs["arm"] == "targeted" and f.attrs["stage"] == "treatment"
        assert f["cohort"].attrs["tumor.antigenicity"] == 1.25
    assert sorted(p.name for p in out.parent.iterdir()) == ["targeted.h5"]


@needs_jit
@pytest.mark.parametrize("how", ["sweep", "compare arm"])
def test_a_stale_partial_of_another_run_is_not_resumed(tmp_path, monkeypatch, how):
    """run --resume refuses a partial run of another scenario; a study's run (a sweep point,
    a compare arm) starts afresh, and the stale partial run goes when it completes."""
    scenario = _scenario(None, *SMALL_2D)
    out = tmp_path / "run.h5"
    with crash(monkeypatch, 12):
        runner.run_to_file(scenario, out, threads=1)
    other = _scenario(None, *SMALL_2D, "simulation.seed=9")
    with pytest.raises(CannotResume, match="holds a run of another scenario"):
        runner.run_or_resume(other, out, threads=1)
    assert len(partial.partials_of(out)) == 1
    if how == "sweep":
        runner.run_or_resume(other, out, threads=1, restart=True)
    else:
        runner.run_arm(runner.Pretreatment(other, tmp_path), other, out)
    assert partial.partials_of(out) == []
    with h5py.File(out) as f:
        assert f.attrs["seed"] == 9 and "resumed_at_steps" not in f.attrs


@needs_jit
def test_resume_refuses_a_checkpoint_that_does_not_fit(tmp_path, monkeypatch, capsys):
    scenario = _scenario(None, *SMALL_2D)
    out = tmp_path / "run.h5"
    with crash(monkeypatch, 12):
        runner.run_to_file(scenario, out, threads=1)
    part, = partial.partials_of(out)
    ckpt = partial.checkpoint_path(part)
    with h5py.File(ckpt, "r+") as f:   # the engine of another software version
        tree = json.loads(f["tree"][()])
        tree["attrs"]["state"]["attrs"]["bogus_counter"] = {"t": "int", "v": 0}
        del f["tree"]
        f.create_dataset("tree", data=json.dumps(tree), dtype=h5py.string_dtype())
    assert main(["resume", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "engine.state: attributes differ (only in the checkpoint: " \
                              "bogus_counter)" in err[0], err
    with monkeypatch.context() as m:
        m.setattr(recorder_mod, "software_version", lambda: "9.9")
        assert main(["resume", str(part)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "written by tumorsim" in err[0] and "this is 9.9" in err[0]
    assert partial.partials_of(out) == [part] and not out.exists()  # nothing was changed


@needs_jit
def test_every_library_scenario_checkpoints_and_restores_exactly(tmp_path):
    """The generic walk covers whatever each scenario builds (drugs, rules, penetration,
    cohorts, 3D): state restored into a fresh engine steps on exactly as the original."""
    for path in sorted(scenario_mod.library_dir().glob("*.toml")):
        base = scenario_mod.load(path)
        dims = "[10,10,8]" if base.simulation.ndim == 3 else "[24,22]"
        scenario = scenario_mod.load(path, [f"simulation.dimensions={dims}",
                                            "initial.tumor_radius_sites=3",
                                            "simulation.treatment_start_day=0.5",
                                            "vessels.density=0.05"])
        engine = engine_mod.Engine(scenario)
        engine_mod.run(scenario, None, engine=engine, until_step=3)
        checkpoint.save(engine, tmp_path / "a.h5", {})
        restored = engine_mod.Engine(scenario)
        checkpoint.restore(restored, tmp_path / "a.h5")
        for e in (engine, restored):
            engine_mod.run(scenario, None, engine=e, until_step=6)
        checkpoint.save(engine, tmp_path / "b.h5", {})
        checkpoint.save(restored, tmp_path / "c.h5", {})
        with h5py.File(tmp_path / "b.h5") as b, h5py.File(tmp_path / "c.h5") as c:
            assert b["tree"][()] == c["tree"][()], path.name
            assert set(b["arrays"]) == set(c["arrays"]), path.name
            for name in b["arrays"]:
                assert b["arrays"][name][()].tobytes() == c["arrays"][name][()].tobytes(), \
                    f"{path.name}: {name}"


def test_what_cannot_be_checkpointed_is_named(tmp_path):
    class Holder:
        pass

    from simulator.output.checkpoint import CheckpointError
    root = Holder.__new__(Holder)
    root.scenario = None
    root.callback = lambda: None
    with pytest.raises(CheckpointError, match="engine.callback: .* not a module-level"):
        checkpoint.save(root, tmp_path / "x.h5", {})
    root.callback = np.array([object()])
    with pytest.raises(CheckpointError, match="engine.callback: an object array"):
        checkpoint.save(root, tmp_path / "x.h5", {})


def test_aliases_views_and_methods_survive_a_round_trip(tmp_path, monkeypatch):
    from simulator.output.checkpoint import restore, save
    monkeypatch.setattr(checkpoint, "OWN_MODULES", (__name__,))
    monkeypatch.setattr(checkpoint, "GLOBAL_MODULES", (__name__, "numpy", "builtins"))
    root = _Node()
    base = np.arange(24.0).reshape(4, 6)
    root.scenario = {"shared": [1, 2]}
    root.grid = base
    root.row = base[1]                  # a view
    root.flat = base.ravel()            # a view of the same buffer
    root.again = base                   # an alias
    root.child = _Node()
    root.child.parent = root            # a cycle through the root
    root.child.table = root.scenario["shared"]   # a reference into the scenario
    root.keys = {3: np.uint64(2**63 + 5), "x": (1.5, None, float("nan"))}
    root.action = root.child.act        # a bound method
    root.kinds = frozenset({1, 2, 3})
    save(root, tmp_path / "c.h5", {"step": 1})
    fresh = _Node()
    fresh.scenario = {"shared": [1, 2]}
    for name in ("grid", "row", "flat", "again", "child", "keys", "action", "kinds"):
        setattr(fresh, name, None)
    restore(fresh, tmp_path / "c.h5")
    assert np.array_equal(fresh.grid, base) and fresh.again is fresh.grid
    fresh.grid[1, 2] = -1.0
    assert fresh.row[2] == -1.0 and fresh.flat[8] == -1.0
    assert fresh.child.parent is fresh and fresh.child.table is fresh.scenario["shared"]
    assert fresh.keys[3] == np.uint64(2**63 + 5) and type(fresh.keys[3]) is np.uint64
    assert fresh.keys["x"][0] == 1.5 and np.isnan(fresh.keys["x"][2])
    assert fresh.action.__self__ is fresh.child and fresh.kinds == {1, 2, 3}


class _Node:
    def act(self):
        return self
