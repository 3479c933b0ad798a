"""Hill functions, how drugs combine on a channel, and per-clone modifiers (against a naive
loop over clones)."""
import numpy as np
import pytest

from simulator import scenario as scenario_mod
from simulator.scenario import library_dir
from simulator.schema import ScenarioError
from simulator.treatment.drugs import Drug, Effect
from simulator.treatment.effects import EffectModel, Effects, clone_modifiers, combine_effects, hill


def targeted(target, **channels):
    return Drug(drug_class="targeted", target=target, route="iv_bolus", half_life_hours=10.0,
                volume_l=10.0, **{k: Effect(*v) for k, v in channels.items()})


def immune(cls, **channels):
    return Drug(drug_class=cls, route="iv_bolus", half_life_hours=500.0, volume_l=6.0,
                **{k: Effect(*v) for k, v in channels.items()})


# ----------------------------------------------------------------------------- hill
def test_hill_values():
    assert hill(2.0, 0.8, 2.0, 1.0) == pytest.approx(0.4)
    assert hill(0.0, 0.8, 2.0, 3.0) == 0.0
    assert hill(5.0, 0.0, 2.0, 1.0) == 0.0
    assert hill(6.0, 1.0, 2.0, 2.0) == pytest.approx(36 / (4 + 36))
    assert hill(1e300, 0.7, 1.0, 50.0) == pytest.approx(0.7)
    assert hill(1e-300, 0.7, 1.0, 50.0) == 0.0
    c = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(hill(c, 2.0, 1.0, 1.0), [0.0, 1.0, 1.5])


def test_hill_is_monotone_and_bounded():
    c = np.logspace(-4, 4, 200)
    e = hill(c, 0.9, 1.3, 2.5)
    assert np.all(np.diff(e) >= 0) and np.all(e <= 0.9) and np.all(e >= 0)


# ----------------------------------------------------------------------------- identity
def test_no_drug_is_the_identity():
    e = Effects.none(3)
    assert e.is_none()
    death, division, antigen = clone_modifiers(e, 3)
    assert death.shape == division.shape == antigen.shape == (8,)
    assert np.all(death == 0) and np.all(division == 1) and np.all(antigen == 1)
    assert death.dtype == division.dtype == antigen.dtype == np.float64


def test_ablated_channels_change_nothing():
    drugs = {"a": targeted("BRAF", kill=(0.0,), arrest=(0.0, 1.0)),
             "p": immune("anti_pd1", checkpoint_blockade=(0.0,)),
             "c": immune("anti_ctla4")}
    e = EffectModel(drugs, ["BRAF"]).at([100.0, 100.0, 100.0])
    assert e.is_none()


# ----------------------------------------------------------------------------- combination
def test_two_drugs_on_one_target_combine_by_channel_kind():
    drugs = {"a": targeted("BRAF", kill=(0.2, 1.0), arrest=(0.5, 1.0), antigenicity=(0.3, 1.0)),
             "b": targeted("BRAF", kill=(0.1, 1.0), arrest=(0.6, 1.0), antigenicity=(0.4, 1.0))}
    c = [1.0, 1.0]                                  # both at EC50: half of Emax
    e = EffectModel(drugs, ["BRAF", "MEK"]).at(c)
    np.testing.assert_allclose(e.kill_rate_per_day, [0.1 + 0.05, 0.0])       # rates add
    np.testing.assert_allclose(e.arrest, [1 - (1 - 0.25) * (1 - 0.3), 0.0])   # Bliss
    np.testing.assert_allclose(e.antigenicity_boost, [0.15 + 0.2, 0.0])       # boosts add


def test_global_channels_combine():
    drugs = {
        "braf": targeted("BRAF", infiltration=(0.4, 1.0), microenvironment=(0.5, 1.0),
                         t_cell_toxicity=(0.0,)),
        "mek": targeted("MEK", infiltration=(0.2, 1.0), microenvironment=(0.2, 1.0),
                        t_cell_toxicity=(0.3, 1.0)),
        "pd1": immune("anti_pd1", checkpoint_blockade=(0.8, 1.0),
                      exhaustion_relief=(0.4, 1.0), priming=(0.4, 1.0)),
        "pdl1": immune("anti_pdl1", checkpoint_blockade=(0.6, 1.0),
                       exhaustion_relief=(0.2, 1.0)),
        "ctla4": immune("anti_ctla4", priming=(0.5, 1.0), treg_depletion=(0.2, 1.0)),
        "ctla4b": immune("anti_ctla4", priming=(0.25, 1.0), treg_depletion=(0.1, 1.0)),
    }
    e = combine_effects(drugs, np.ones(6), ["BRAF", "MEK"])     # every E = Emax / 2
    assert e.infiltration_boost == pytest.approx(0.2 + 0.1)
    assert e.suppressive_recruitment_factor == pytest.approx((1 - 0.25) * (1 - 0.1))
    assert e.suppressive_cytokine_factor == e.suppressive_recruitment_factor
    assert e.t_cell_toxicity_rate_per_day == pytest.approx(0.15)
    assert e.checkpoint_blockade == pytest.approx(1 - (1 - 0.4) * (1 - 0.3))
    assert e.exhaustion_relief == pytest.approx(1 - (1 - 0.2) * (1 - 0.1))
    assert e.priming_boost == pytest.approx(0.2 + 0.25 + 0.125)   # anti-PD-1's adds too
    assert e.treg_depletion_rate_per_day == pytest.approx(0.1 + 0.05)
    assert not e.kill_rate_per_day.any()


def test_fractions_stay_fractions():
    drugs = {f"d{i}": immune("anti_pd1", checkpoint_blockade=(1.0, 1.0)) for i in range(4)}
    e = EffectModel(drugs, ["BRAF"]).at(np.full(4, 1e9))
    assert 0.999 < e.checkpoint_blockade <= 1.0


def test_concentrations_must_match_the_drugs():
    model = EffectModel({"a": targeted("BRAF", kill=(1.0, 1.0))}, ["BRAF"])
    with pytest.raises(ValueError):
        model.at([1.0, 2.0])
    with pytest.raises(ValueError):
        EffectModel({"a": targeted("EGFR", kill=(1.0, 1.0))}, ["BRAF"])


# ----------------------------------------------------------------------------- clones
def naive_clone_modifiers(effects, n_targets):
    death, division, antigen = [], [], []
    for mask in range(2 ** n_targets):
        d, f, a = 0.0, 1.0, 1.0
        for t in range(n_targets):
            if mask & (1 << t):             # resistant to target t: only the resistant share
                d += effects.resistant_kill_rate_per_day[t]
                f *= 1.0 - effects.resistant_arrest[t]
                continue
            d += effects.kill_rate_per_day[t]
            f *= 1.0 - effects.arrest[t]
            a += effects.antigenicity_boost[t]
        death.append(d)
        division.append(f)
        antigen.append(a)
    return np.array(death), np.array(division), np.array(antigen)


def test_clone_modifiers_two_targets_by_hand():
    e = Effects(kill_rate_per_day=np.array([0.3, 0.1]), arrest=np.array([0.5, 0.2]),
                antigenicity_boost=np.array([0.4, 0.1]))
    death, division, antigen = clone_modifiers(e, 2)
    np.testing.assert_allclose(death, [0.4, 0.1, 0.3, 0.0])        # masks 0b00 .. 0b11
    np.testing.assert_allclose(division, [0.4, 0.8, 0.5, 1.0])
    np.testing.assert_allclose(antigen, [1.5, 1.1, 1.4, 1.0])


@pytest.mark.parametrize("n_targets", [1, 3, 7])
@pytest.mark.parametrize("partial", [False, True])
def test_clone_modifiers_match_naive_loop(n_targets, partial):
    rng = np.random.default_rng(n_targets)
    e = Effects(kill_rate_per_day=rng.uniform(0, 1, n_targets),
                arrest=rng.uniform(0, 1, n_targets),
                antigenicity_boost=rng.uniform(0, 2, n_targets),
                resistant_kill_rate_per_day=rng.uniform(0, 0.2, n_targets) if partial else None,
                resistant_arrest=rng.uniform(0, 0.3, n_targets) if partial else None)
    for got, want in zip(clone_modifiers(e, n_targets), naive_clone_modifiers(e, n_targets)):
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_resistant_clone_escapes_its_target_only():
    drugs = {"braf": targeted("BRAF", kill=(0.5, 1.0)), "mek": targeted("MEK", kill=(0.2, 1.0))}
    e = EffectModel(drugs, ["BRAF", "MEK"]).at([1e12, 1e12])
    death, _, _ = clone_modifiers(e, 2)
    np.testing.assert_allclose(death, [0.7, 0.2, 0.5, 0.0])


def test_resistant_response_passes_its_share_of_kill_and_arrest():
    # BRAF-inhibitor-resistant clones keep 10% of the MEK inhibitor's effect (and none of
    # the BRAF inhibitor's); both drugs share the BRAF target, at saturating concentrations
    drugs = {"braf": targeted("BRAF", kill=(0.05, 1.0), arrest=(0.6, 1.0)),
             "mek": Drug(drug_class="targeted", target="BRAF", route="iv_bolus",
                         half_life_hours=10.0, volume_l=10.0, kill=Effect(0.2, 1.0),
                         arrest=Effect(0.5, 1.0), antigenicity=Effect(0.4, 1.0),
                         resistant_response=0.1)}
    e = EffectModel(drugs, ["BRAF"]).at([1e15, 1e15])
    assert not e.is_none()
    death, division, antigen = clone_modifiers(e, 1)
    np.testing.assert_allclose(death, [0.25, 0.02], rtol=1e-12)
    np.testing.assert_allclose(division, [0.4 * 0.5, 1.0 - 0.05], rtol=1e-12)
    np.testing.assert_allclose(antigen, [1.4, 1.0])     # antigenicity: sensitive cells only


def test_resistant_response_zero_leaves_resistant_clones_untouched():
    e = EffectModel({"braf": targeted("BRAF", kill=(0.5, 1.0), arrest=(0.5, 1.0))},
                    ["BRAF"]).at([1e15])
    death, division, _ = clone_modifiers(e, 1)
    assert death[1] == 0.0 and division[1] == 1.0


@pytest.mark.parametrize("override, message", [
    ("drugs.anti_pd1.resistant_response=0.2", "only targeted drugs act on resistant"),
    ("drugs.mek_inhibitor.resistant_response=1.5", "resistant_response"),
    ("drugs.mek_inhibitor.resistant_response=-0.1", "resistant_response"),
])
def test_resistant_response_is_checked(override, message):
    with pytest.raises(ScenarioError, match=message):
        scenario_mod.load(library_dir() / "melanoma.toml", [override])


def test_resistant_response_is_refused_with_penetration():
    with pytest.raises(ScenarioError, match="not supported for a drug with penetration"):
        scenario_mod.load(library_dir() / "targeted_continuous_penetration.toml",
                          ["drugs.braf_inhibitor.resistant_response=0.1"])


def test_resistant_response_reaches_the_engine_from_a_scenario():
    s = scenario_mod.load(library_dir() / "melanoma.toml",
                          ["drugs.mek_inhibitor.resistant_response=0.25"])
    e = EffectModel(s.drugs, s.tumor.resistance_targets).at(np.full(len(s.drugs), 1e6))
    mek = s.drugs["mek_inhibitor"]
    for got, effect in ((e.resistant_kill_rate_per_day[0], mek.kill),
                        (e.resistant_arrest[0], mek.arrest)):
        assert got == pytest.approx(0.25 * hill(1e6, effect.emax, effect.ec50_mg_per_l,
                                                effect.hill), rel=1e-12)


def test_clone_modifiers_check_the_target_count():
    with pytest.raises(ValueError):
        clone_modifiers(Effects.none(2), 3)


def test_vectorised_hill_terms_give_the_bits_of_term_by_term():
    """EffectModel evaluates every channel's Hill function in one numpy call; the result
    must equal evaluating each term on its own (what the calibration was run with), bit for
    bit, over the melanoma library's four drugs and many concentrations."""
    from simulator.scenario import library_dir, load
    scenario = load(library_dir() / "melanoma.toml")
    drugs = scenario.drugs
    model = EffectModel(drugs, scenario.tumor.resistance_targets)
    names = list(drugs)
    g = np.random.default_rng(11)
    for _ in range(300):
        conc = np.where(g.random(len(names)) < 0.2, 0.0, g.lognormal(0.0, 3.0, len(names)))
        got = model.at(conc)
        for channel, terms in model.terms.items():
            by_term = [hill(conc[i], emax, ec50, h) for i, _, emax, ec50, h in terms]
            assert [e for _, e in model._values(channel, hill(
                conc[model._drug], model._emax, model._ec50, model._hill).tolist())] == by_term
        kill = sum(hill(conc[names.index(n)], d.kill.emax, d.kill.ec50_mg_per_l, d.kill.hill)
                   for n, d in drugs.items() if d.kill is not None and d.kill.is_on)
        assert got.kill_rate_per_day[0] == kill
