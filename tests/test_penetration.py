"""Spatial drug penetration: the per-site kernel against naive.py, the uniform limit equal to
plasma exposure, the tissue field equal to its discrete steady state, the sanctuary effect,
output and validation."""
import math

import h5py
import numpy as np
import pytest

import naive
from conftest import needs_jit
from kernels import drug_response, lattice, rng
from simulator import study
from simulator.cli import main as cli_main
from simulator.treatment.effects import EffectModel, clone_modifiers
from simulator.engine import Engine, fork, tumor_rates
from simulator.scenario import library_dir, load
from simulator.schema import ScenarioError

DRUG = """
[drugs.blocker]
drug_class = "targeted"
target = "BRAF"
route = "iv_bolus"
half_life_hours = 1000.0
volume_l = 1.0
kill = {{ emax = {kill}, ec50_mg_per_l = 10.0 }}
arrest = {{ emax = 0.5, ec50_mg_per_l = 10.0 }}
{penetration}

[[drugs.blocker.doses]]
start_day = 0
count = 1
dose_mg = {dose}
"""


def _scenario(tmp_path, penetration="penetration = {}", kill=1.0, dose=100.0, extra=(),
              base="tumor_only.toml"):
    path = tmp_path / "drug.toml"
    path.write_text(f'base = "{library_dir() / base}"\n'
                    + DRUG.format(kill=kill, dose=dose, penetration=penetration))
    return load(path, ["simulation.dimensions=[40,40]", "simulation.duration_days=4",
                       "initial.tumor_radius_sites=10", "initial.resistant_fraction=0.3",
                       "vessels.density=0.02", *extra])


# ------------------------------------------------------------------ kernel vs reference
@pytest.mark.parametrize("shape, n_targets", [((13, 11), 1), ((7, 6, 5), 2)])
def test_local_hazards_match_naive(shape, n_targets):
    r = np.random.default_rng(3)
    n_sites = int(np.prod(shape))
    clone = r.integers(0, 1 << n_targets, size=n_sites)
    drugs = [dict(target_bit=0, kill=(2.0, 5.0, 1.5), arrest=(0.7, 3.0, 1.0)),
             dict(target_bit=n_targets - 1, kill=(0.5, 1.0, 2.0), arrest=(0.0, 1.0, 1.0))]
    conc = r.uniform(0.0, 20.0, size=(2, n_sites))
    conc[0][r.random(n_sites) < 0.2] = 0.0      # no drug at some sites
    death_hazard = r.uniform(0.001, 0.05, 1 << n_targets)
    division_hazard = r.uniform(0.01, 0.1, 1 << n_targets)
    dt_days = 0.25
    target_bit = np.array([d["target_bit"] for d in drugs], np.int64)
    kill = np.array([d["kill"] for d in drugs])
    arrest = np.array([d["arrest"] for d in drugs])
    for i in range(n_sites):
        c = int(clone[i])
        got = drug_response.local_hazards(i, c, death_hazard[c], division_hazard[c], conc,
                                          target_bit, kill, arrest, dt_days)
        expected = naive.local_hazards(c, conc[:, i], drugs, death_hazard[c],
                                       division_hazard[c], dt_days)
        assert got == pytest.approx(expected, rel=1e-12)


@needs_jit
def test_field_at_plasma_level_everywhere_gives_the_systemic_hazards(tmp_path):
    """Kill rates add and arrest scales the division rate per site exactly as the clone-wide
    rules do, so C(x) = C_plasma everywhere reproduces plasma exposure (to rounding)."""
    scenario = _scenario(tmp_path)
    engine = Engine(scenario)
    plasma = 7.5
    systemic = EffectModel(scenario.drugs, scenario.tumor.resistance_targets).at([plasma])
    extra_death, division_factor, _ = clone_modifiers(systemic, 1)
    expected = tumor_rates(scenario, extra_death, division_factor)
    local = EffectModel(scenario.drugs, scenario.tumor.resistance_targets,
                        local=["blocker"]).at([plasma])
    assert not local.kill_rate_per_day.any() and not local.arrest.any()
    base = tumor_rates(scenario)
    pen = engine.penetration
    pen.concentration[:] = plasma
    tumour = np.flatnonzero(engine.state.kind == lattice.TUMOR)
    clones = engine.state.clone[tumour]
    assert set(np.unique(clones)) == {0, 1}
    got = np.array([drug_response.local_hazards(
        i, c, base.death_hazard[c], base.division_hazard[c], pen.concentration,
        pen.target_bit, pen.kill, pen.arrest, engine.dt_days) for i, c in zip(tumour, clones)])
    np.testing.assert_allclose(got[:, 0], expected.death_hazard[clones], rtol=1e-13)
    np.testing.assert_allclose(got[:, 1], expected.division_hazard[clones], rtol=1e-13)
    assert expected.death_hazard[0] > 5 * expected.death_hazard[1]  # the drug kills


@needs_jit
def test_tumor_step_with_local_hazards_matches_naive(tmp_path):
    """The tumour phase under a penetrating drug, event by event against naive.py, with each
    cell's hazards taken at its own site's concentration (daughters included)."""
    engine = Engine(_scenario(tmp_path, kill=3.0))
    geo = engine.state.geometry
    kind = engine.state.kind.reshape(geo.padded).copy()
    clone = engine.state.clone.reshape(geo.padded).copy()
    names = dict(death=rng.STREAM_TUMOR_EVENT, attempt=rng.STREAM_TUMOR_ATTEMPT,
                 target=rng.STREAM_DIVISION_TARGET, mutation=rng.STREAM_MUTATION,
                 clearance=rng.STREAM_CLEARANCE)
    sim = engine.scenario.simulation
    pen = engine.penetration
    drugs = [dict(target_bit=int(pen.target_bit[d]), kill=tuple(pen.kill[d]),
                  arrest=tuple(pen.arrest[d])) for d in range(len(pen.names))]
    compared = 0
    for _ in range(6):
        before = engine.state.totals.copy()
        for name, phase in engine.phases:
            if name == "tumor":
                keys = {k: naive.step_key(naive.stream_key(sim.seed, sim.replicate, s),
                                          engine.state.step) for k, s in names.items()}
                r = engine.rates
                local = pen.active
                expected = naive.tumor_events(
                    kind, clone, geo.padded, r.death_hazard, r.division_hazard,
                    r.mutation_probability, 1, r.clear_dead_hazard, r.clear_necrotic_hazard,
                    keys, dt_days=engine.dt_days,
                    drug_fields=[pen.concentration[d].reshape(geo.padded)
                                 for d in range(len(drugs))] if local else (),
                    drugs=drugs if local else ())
                compared += local
            phase()
        engine.state.step += 1
        got = tuple(engine.state.totals[k] - before[k]
                    for k in ("divisions", "deaths", "mutations", "mutable_divisions"))
        assert got == expected
        np.testing.assert_array_equal(engine.state.kind, kind.ravel())
    assert compared == 6


# ------------------------------------------------------------------ the field
@needs_jit
def test_tissue_field_is_the_discrete_steady_state(tmp_path):
    """D lap C - (decay + uptake) C + k_v (C_p - C) [vessel] = 0, checked against a dense
    direct solve of the same discrete equations (naive.steady_state)."""
    engine = Engine(_scenario(tmp_path, penetration="penetration = { tumor_uptake_per_min = 0.2 }"))
    engine.step()  # the dose lands in step 0
    pen = engine.penetration
    plasma = float(engine.treatment.mean_concentration[0])
    assert plasma > 0 and pen.active
    geo = engine.state.geometry
    kind = engine.state.kind
    # uptake and source as the step saw them (the lattice before the step's tumour phase is
    # not kept, so rebuild from a copy of the state the field was solved on)
    engine2 = Engine(engine.scenario)
    uptake = pen.uptake_by_kind[0][engine2.state.kind].reshape(geo.padded)
    source = (engine2.state.kind == lattice.VESSEL) * pen.exchange_dt[0] * plasma
    expected = naive.steady_state(geo.padded, pen.alpha[0], pen.decay_dt[0], uptake,
                                  source.reshape(geo.padded), pen.bc_kind, pen.bc_value)
    got = pen.concentration[0].reshape(geo.padded)
    inner = (slice(1, -1),) * 2
    # the solve stops once a multigrid cycle's coarse-grid correction is <= 1e-4 of the
    # field's maximum; a cycle contracts the error by <= 0.4 even for stiff sites, so what
    # is left is below 0.4 / 0.6 of that (and float32 rounding, 6e-8, is far smaller)
    assert np.abs(got[inner] - expected[inner]).max() < 1e-4 * expected[inner].max()
    # and it is a penetration profile: highest at vessels, lower in the tumour
    flat = got.reshape(-1)
    assert flat[kind == lattice.VESSEL].mean() > flat[kind == lattice.TUMOR].mean()


@needs_jit
def test_poorly_perfused_tumour_is_a_sanctuary(tmp_path):
    """Common random numbers: a drug that kills sensitive cells at 2.7/day at plasma level,
    given systemically vs through tissue with a ~55 um penetration length from vessels that
    lie only outside the initial tumour (radius 14 sites = 280 um): the tumour core gets
    little drug, so more sensitive cells survive 1.5 days. The difference of two counts
    with Poisson-like noise has a standard deviation of about sqrt(N1 + N2) (less under common
    random numbers, so the bound is conservative); the gap must exceed 5 of them (measured:
    241 vs 4 cells of 428, 15 SD)."""
    extra = ["simulation.duration_days=1.5", "initial.tumor_radius_sites=14",
             "simulation.dimensions=[50,50]"]
    pen = _scenario(tmp_path, kill=3.0, dose=100.0, extra=extra,
                    penetration="penetration = { tumor_uptake_per_min = 2.0 }")
    systemic = _scenario(tmp_path, kill=3.0, dose=100.0, extra=extra, penetration="")
    counts = {}
    for name, scenario in (("penetration", pen), ("systemic", systemic)):
        engine = Engine(scenario)
        while engine.state.step < scenario.simulation.steps:
            engine.step()
        counts[name] = engine.observe()["tumor_sensitive"]
        if name == "penetration":
            means = engine.penetration.tumor_means(engine.state.kind)["blocker"]
            assert means < 0.5 * float(engine.treatment.mean_concentration[0])
    gap = counts["penetration"] - counts["systemic"]
    assert gap > 5 * math.sqrt(counts["penetration"] + counts["systemic"])


# ------------------------------------------------------------------ output and forks
@needs_jit
def test_run_file_records_tissue_concentration_and_field(tmp_path):
    out = tmp_path / "run.h5"
    path = tmp_path / "drug.toml"
    path.write_text(f'base = "{library_dir() / "default.toml"}"\n'
                    + DRUG.format(kill=1.0, dose=100.0, penetration="penetration = {}"))
    code = cli_main(["run", str(path), "-o", str(out), "--set", "simulation.dimensions=[50,50]",
                     "--set", "simulation.duration_days=2", "--set",
                     "initial.tumor_radius_sites=8", "--set",
                     'output.snapshot_fields=["drug_blocker", "oxygen"]'])
    assert code == 0
    with h5py.File(out) as f:
        tissue = f["timeseries/drug_tissue/blocker"][()]
        plasma = f["timeseries/drug/blocker"][()]
        assert tissue.shape == plasma.shape
        assert tissue[0] == 0.0 and np.all(tissue[1:] > 0) and np.all(tissue[1:] < plasma[1:])
        field = f["snapshots/fields/drug_blocker"]
        assert field.attrs["units"] == "mg/L" and field.shape[0] >= 2
        assert field[-1].max() > 0


@needs_jit
def test_fork_into_an_arm_with_penetration(tmp_path):
    base = Engine(_scenario(tmp_path, penetration=""))
    assert base.penetration is None and "drug_penetration" not in base.phase_names
    arm = fork(base, _scenario(tmp_path))
    assert arm.penetration is not None and "drug_penetration" in arm.phase_names
    arm.step()
    assert arm.penetration.active


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("text, extra, key, words", [
    ('penetration = {}', ["vessels.density=0"], "drugs.blocker.penetration", "needs vessels"),
    ('penetration = { diffusion_um2_per_min = -1 }', [],
     "drugs.blocker.penetration.diffusion_um2_per_min", ""),
    ('penetration = { difusion_um2_per_min = 1 }', [], "drugs.blocker.penetration", "did you mean"),
])
def test_bad_penetration_is_one_clear_line(tmp_path, text, extra, key, words):
    with pytest.raises(ScenarioError) as err:
        _scenario(tmp_path, penetration=text, extra=extra)
    assert key in str(err.value) and words in str(err.value)


def test_penetration_needs_a_local_channel_and_a_targeted_drug(tmp_path):
    with pytest.raises(ScenarioError, match="drugs.blocker.penetration: acts through"):
        _scenario(tmp_path, kill=0.0, extra=["drugs.blocker.arrest.emax=0"])
    path = tmp_path / "pd1.toml"
    path.write_text(f'base = "{library_dir() / "melanoma.toml"}"\n'
                    "[drugs.anti_pd1]\npenetration = {}\n")
    with pytest.raises(ScenarioError, match="drugs.anti_pd1.penetration: only targeted"):
        load(path)


def test_snapshot_field_names_follow_the_penetrating_drugs(tmp_path):
    _scenario(tmp_path, extra=['output.snapshot_fields=["drug_blocker"]'])
    with pytest.raises(ScenarioError, match="unknown field 'drug_blocker'"):
        _scenario(tmp_path, penetration="", extra=['output.snapshot_fields=["drug_blocker"]'])


@needs_jit
def test_stiff_vessel_exchange_is_solved(tmp_path):
    """Exchange x dt = 6000 against D dt / dx^2 = 900 per step, which stalled the
    pseudo-time ADI iteration (the run stopped with an error): multigrid reaches the
    discrete steady state (naive.steady_state) to the solve's tolerance (1e-4 of the
    maximum; a cycle contracts the error by <= 0.4 even at stiff sites)."""
    scenario = _scenario(tmp_path, extra=["simulation.dt_hours=1"],
                         penetration="penetration = { vessel_exchange_per_min = 100.0 }")
    engine = Engine(scenario)
    kind_before = engine.state.kind.copy()
    engine.step()  # the dose lands in step 0
    pen = engine.penetration
    plasma = float(engine.treatment.mean_concentration[0])
    assert plasma > 0 and pen.exchange_dt[0] == pytest.approx(6000.0)
    geo = engine.state.geometry
    uptake = pen.uptake_by_kind[0][kind_before].reshape(geo.padded)
    source = (kind_before == lattice.VESSEL) * pen.exchange_dt[0] * plasma
    expected = naive.steady_state(geo.padded, pen.alpha[0], pen.decay_dt[0], uptake,
                                  source.reshape(geo.padded), pen.bc_kind, pen.bc_value)
    got = pen.concentration[0].reshape(geo.padded)
    inner = (slice(1, -1),) * 2
    assert np.abs(got[inner] - expected[inner]).max() < 1e-4 * expected[inner].max()


@needs_jit
def test_study_arm_with_penetration_forks_from_a_plain_pretreatment_tumour(tmp_path):
    """compare grows the pre-treatment tumour under the first arm and forks the others: an
    arm that adds penetration (and saves its field) gets its series and snapshots, zero
    before the fork."""
    plain = tmp_path / "plain.toml"
    plain.write_text(f'base = "{library_dir() / "tumor_only.toml"}"\n'
                     + DRUG.format(kill=1.0, dose=100.0, penetration=""))
    with_field = tmp_path / "penetrating.toml"
    with_field.write_text(f'base = "{library_dir() / "tumor_only.toml"}"\n'
                          + DRUG.format(kill=1.0, dose=100.0, penetration="penetration = {}")
                          + '[output]\nsnapshot_fields = ["drug_blocker"]\n')
    arms = study.load_arms([plain, with_field], [
        "simulation.dimensions=[40,40]", "simulation.duration_days=3",
        "simulation.treatment_start_day=1", "vessels.density=0.02",
        "output.snapshot_every_days=1"])
    outcomes = study.run_replicate(arms, 0, str(tmp_path / "study"), 1)
    assert [o.status for o in outcomes] == ["complete", "complete"], outcomes
    with h5py.File(outcomes[1].path) as f:
        days = f["timeseries/time_days"][()]
        tissue = f["timeseries/drug_tissue/blocker"][()]
        assert np.all(tissue[days <= 1.0] == 0) and np.all(tissue[days > 1.0] > 0)
        frames = f["snapshots/fields/drug_blocker"]
        assert frames.shape[0] == f["snapshots/time_days"].shape[0] == 4
        assert frames[0].max() == 0 and frames[-1].max() > 0
