"""The claims machinery (simulator.study.claims) on synthetic studies with known answers.

Each synthetic arm is a list of summary rows built so that the paired tables are known by
construction; the expected effects, intervals and p-values are the published formulas
applied to those tables (tests/test_statistics.py checks the formulas themselves).
"""
import math

import pytest

from simulator.analysis.statistics import (binomial_test_p, clopper_pearson_interval,
                                           mcnemar_exact_p, newcombe_paired_interval)
from simulator.study import claims

N = 60


def row(arm, r, *, shrink=False, respond=False, pfs=300.0, progressed=False, ttr=56.0,
        dor=200.0, ongoing=True, resistant=0.0, baseline=1000.0):
    return dict(arm=arm, replicate=str(r), baseline_tumor_cells=str(baseline),
                first_scan_change=str(-0.5 if shrink else 0.0),
                objective_response=str(respond), progression_free_days=str(pfs),
                progression_observed=str(progressed),
                time_to_response_days=str(ttr if respond else math.nan),
                duration_of_response_days=str(dor if respond else math.nan),
                response_ongoing=str(ongoing and respond),
                resistant_fraction_at_progression=str(resistant if progressed else math.nan))


def cleared(arm, r):
    """A virtual patient whose immune system cleared the tumour before the treatment start,
    as summary.csv has it: no baseline, no first-scan change, best response NE, followed
    to the end without progression."""
    return {**row(arm, r, baseline=0.0), "first_scan_change": str(math.nan),
            "response_class": "NE"}


def result(results, claim):
    mine = [r for r in results if r.claim == claim]
    assert mine, claim
    return mine


def test_paired_proportion_claim_matches_newcombe_and_mcnemar():
    # targeted shrinks early in replicates 0-49, anti-PD-1 in 0-9 only:
    # a = 10 (both), b = 40 (targeted only), c = 0, d = 10
    rows = [row("targeted_continuous", r, shrink=r < 50) for r in range(N)]
    rows += [row("anti_pd1", r, shrink=r < 10) for r in range(N)]
    (fast,) = result(claims.evaluate(rows), "Targeted therapy acts fast")
    assert fast.n == N and fast.effect == pytest.approx(40 / 60)
    assert (fast.low, fast.high) == pytest.approx(newcombe_paired_interval(10, 40, 0, 10))
    assert fast.p_value == pytest.approx(mcnemar_exact_p(40, 0))
    assert fast.holds


def test_significant_in_the_wrong_direction_does_not_hold():
    # anti-PD-1 responds MORE often than targeted: "fewer responses" is contradicted
    rows = [row("targeted_continuous", r, respond=r < 10) for r in range(N)]
    rows += [row("anti_pd1", r, respond=r < 40) for r in range(N)]
    (fewer,) = result(claims.evaluate(rows), "Immunotherapy gives fewer responses")
    assert fewer.effect == pytest.approx(30 / 60) and fewer.p_value < 1e-6
    assert not fewer.holds


def test_no_difference_does_not_hold():
    same = [row(arm, r, pfs=100.0 + r, progressed=True)
            for arm in ("combination_concurrent", "combination_no_infiltration")
            for r in range(N)]
    (channel,) = result(claims.evaluate(same),
                        "The targeted drug's infiltration channel contributes")
    assert channel.effect == 0.0 and channel.p_value == 1.0 and not channel.holds
    assert (channel.low, channel.high) == pytest.approx(newcombe_paired_interval(0, 0, 0, N))


def test_progression_free_net_benefit_counts_certain_wins_only():
    # combination censored at 300 in every replicate; the ablation progresses at 100 in
    # replicates 0-19 (a certain win each) and is censored at 300 otherwise (ties)
    rows = [row("combination_concurrent", r, pfs=300.0) for r in range(N)]
    rows += [row("combination_t_cell_toxic", r, pfs=100.0 if r < 20 else 300.0,
                 progressed=r < 20) for r in range(N)]
    (tox,) = result(claims.evaluate(rows),
                    "T-cell toxicity of the targeted partner costs durability")
    assert tox.effect == pytest.approx(20 / 60)
    assert tox.p_value == pytest.approx(2 * 0.5 ** 20)
    assert (tox.low, tox.high) == pytest.approx(newcombe_paired_interval(0, 20, 0, 40))
    assert tox.holds


def test_one_arm_claims_use_the_binomial_test_against_one_half():
    # 30 targeted responders, 24 of them progress; 40 progressions in all, 36 of them with
    # a resistant majority
    rows = [row("targeted_continuous", r, respond=r < 30, progressed=(r < 24 or r >= 44),
                pfs=100.0, resistant=0.9 if r < 36 else 0.2) for r in range(N)]
    results = claims.evaluate(rows)
    (short,) = result(results, "... but its responses are short")
    assert short.n == 30 and short.effect == pytest.approx(24 / 30)
    assert (short.low, short.high) == pytest.approx(clopper_pearson_interval(24, 30))
    assert short.holds
    (resistant,) = result(results, "Resistant clones have taken over at progression")
    # progressed: replicates 0-23 and 44-59 (40); resistant majority: those below 36 (24)
    assert resistant.n == 40 and resistant.effect == pytest.approx(24 / 40)
    assert not resistant.holds  # 24 of 40 is not significantly more than half


def test_time_to_response_compares_only_pairs_where_both_respond():
    rows = [row("targeted_continuous", r, respond=True, ttr=28.0) for r in range(N)]
    # anti-PD-1 responds in 20 replicates, always later
    rows += [row("anti_pd1", r, respond=r < 20, ttr=84.0) for r in range(N)]
    (slower,) = result(claims.evaluate(rows), "... slower ones")
    assert slower.n == 20 and slower.effect == pytest.approx(-1.0)
    assert slower.p_value == pytest.approx(2 * 0.5 ** 20) and slower.holds


def test_a_claim_holds_only_if_every_comparison_does_and_missing_arms_are_not_evidence():
    rows = [row("combination_concurrent", r, shrink=True, pfs=300.0) for r in range(N)]
    rows += [row("anti_pd1", r, pfs=50.0, progressed=True) for r in range(N)]
    results = claims.evaluate(rows)
    both = result(results, "The combination is fast and durable")
    assert [r.holds for r in both] == [True, False, True]  # no targeted arm: n = 0
    assert both[1].n == 0 and math.isnan(both[1].p_value)
    assert not claims.claim_holds(results, "The combination is fast and durable")


def test_holm_adjustment_and_markdown():
    rows = [row("targeted_continuous", r, shrink=r < 50) for r in range(N)]
    rows += [row("anti_pd1", r, shrink=r < 10) for r in range(N)]
    results = claims.evaluate(rows)
    tested = [r for r in results if not math.isnan(r.p_value)]
    assert all(r.p_holm >= r.p_value for r in tested)
    text = claims.claims_markdown(results)
    assert "| Targeted therapy acts fast |" in text and "Claims that do not hold:" in text


def test_write_doc_keeps_the_method_section(tmp_path):
    doc = tmp_path / "calibration.md"
    doc.write_text(f"# old\n\n{claims.METHOD_BEGIN}\n## Method\nkept\n{claims.METHOD_END}\n"
                   "old results\n")
    claims.write_doc(doc, "## new results\n")
    text = doc.read_text()
    assert "## Method\nkept" in text and "## new results" in text
    assert "old results" not in text


def test_describe_says_whether_the_model_supports_the_statement():
    rows = [row("targeted_continuous", r, respond=r < 10, shrink=r < 50) for r in range(N)]
    rows += [row("anti_pd1", r, respond=r < 40, shrink=r < 50) for r in range(N)]
    results = {r.claim: r for r in claims.evaluate(rows)}
    fast = claims.describe(results["Targeted therapy acts fast"])
    assert "difference +0.00" in fast and "p = 1.0000 over 60 pairs" in fast
    assert "NOT SUPPORTED by the model here" in fast
    fewer = claims.describe(results["Immunotherapy gives fewer responses"])
    assert "points the other way" in fewer and "difference +0.50" in fewer
    # both arms respond in replicates 0-9, with equal ongoing durations: ten ties
    durable = claims.describe(results["... but durable ones"])
    assert "net benefit +0.00" in durable and "over 10 pairs" in durable
    assert "NOT SUPPORTED" in durable
    none = claims.describe(claims.evaluate(rows[:N])[4])  # no anti-PD-1 arm at all
    assert "not testable" in none


# ----------------------------------------------------------- patients a trial would enrol
def test_paired_comparisons_leave_out_patients_cleared_before_treatment():
    # targeted shrinks early in replicates 0-39, anti-PD-1 in 0-9; 40-59 were cleared before
    # treatment in both arms. Enrolled: a = 10, b = 30, c = 0, d = 0 over 40 pairs (counting
    # the cleared ones as "neither shrinks" would give 30 / 60 = 0.50 over 60)
    rows = [row("targeted_continuous", r, shrink=r < 40) for r in range(40)]
    rows += [row("anti_pd1", r, shrink=r < 10) for r in range(40)]
    rows += [cleared(arm, r) for arm in ("targeted_continuous", "anti_pd1")
             for r in range(40, N)]
    (fast,) = result(claims.evaluate(rows), "Targeted therapy acts fast")
    assert fast.n == 40 and fast.effect == pytest.approx(30 / 40)
    assert (fast.low, fast.high) == pytest.approx(newcombe_paired_interval(10, 30, 0, 0))
    assert fast.p_value == pytest.approx(mcnemar_exact_p(30, 0))
    # progression-free time: the ablation progresses at 100 in replicates 0-19, 20-39 tie at
    # 300 censored, 40-59 cleared in both (ties if counted): 20 wins of 40 pairs, not of 60
    rows = [row("combination_concurrent", r) for r in range(40)]
    rows += [row("combination_t_cell_toxic", r, pfs=100.0 if r < 20 else 300.0,
                 progressed=r < 20) for r in range(40)]
    rows += [cleared(arm, r) for arm in ("combination_concurrent", "combination_t_cell_toxic")
             for r in range(40, N)]
    (tox,) = result(claims.evaluate(rows),
                    "T-cell toxicity of the targeted partner costs durability")
    assert tox.n == 40 and tox.effect == pytest.approx(20 / 40)
    assert (tox.low, tox.high) == pytest.approx(newcombe_paired_interval(0, 20, 0, 20))
    assert tox.p_value == pytest.approx(2 * 0.5 ** 20)


def test_a_pair_counts_only_when_enrolled_in_both_arms():
    # replicate 0 shrinks under targeted but is cleared in the anti-PD-1 arm (common random
    # numbers make this rare; the rule must hold anyway). Pairs 1-59: a = 9 (1-9), b = 40
    # (10-49), c = 0, d = 10; with replicate 0 it would be b = 41 over 60
    rows = [row("targeted_continuous", r, shrink=r < 50) for r in range(N)]
    rows += [cleared("anti_pd1", 0)]
    rows += [row("anti_pd1", r, shrink=r < 10) for r in range(1, N)]
    (fast,) = result(claims.evaluate(rows), "Targeted therapy acts fast")
    assert fast.n == N - 1 and fast.effect == pytest.approx(40 / 59)
    assert (fast.low, fast.high) == pytest.approx(newcombe_paired_interval(9, 40, 0, 10))
    assert fast.p_value == pytest.approx(mcnemar_exact_p(40, 0))


def test_one_arm_proportions_count_enrolled_patients_only():
    # 30 enrolled responders, 24 of them progress; replicates 60-69 have no tumour at
    # baseline. The endpoints never mark such a patient a responder: these rows are built so
    # only to show that the rule is the baseline, whatever the other columns say (counted,
    # they would make it 24 / 40 = 0.60, not significant)
    rows = [row("targeted_continuous", r, respond=r < 30, progressed=r < 24, pfs=100.0)
            for r in range(N)]
    rows += [row("targeted_continuous", r, respond=True, baseline=0.0) for r in range(N, 70)]
    (short,) = result(claims.evaluate(rows), "... but its responses are short")
    assert short.n == 30 and short.effect == pytest.approx(24 / 30)
    assert (short.low, short.high) == pytest.approx(clopper_pearson_interval(24, 30))
    assert short.p_value == pytest.approx(binomial_test_p(24, 30, 0.5))
    assert short.holds


def test_arms_markdown_counts_enrolled_patients_and_says_how_many():
    def arm_row(r, respond):
        return {**row("untreated", r, respond=respond, progressed=not respond, pfs=100.0),
                "response_class": "CR" if respond else "PD", "durable_response": "False",
                "box_limited": "False"}
    # 1 complete response and 3 progressions enrolled, 1 patient cleared before treatment:
    # 1 of 4 (25%), not 1 of 5 (20%)
    rows = [arm_row(0, True)] + [arm_row(r, False) for r in (1, 2, 3)]
    rows += [{**cleared("untreated", 4), "durable_response": "False", "box_limited": "False"}]
    text = claims.arms_markdown(rows, (12.0,))
    header, _, line = text.splitlines()
    assert header.startswith("| arm | n enrolled of N | response (95% CI) | CR |")
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:2] == ["untreated", "4 of 5"]
    assert cells[2].startswith("25% (") and cells[3] == "25%"
    assert cells[-1] == "0/4"


def test_resistant_takeover_is_a_censored_time():
    """The examples' "resistant_takeover" endpoint: time_to_resistance_days where the
    resistant share passed its threshold, else censored at the last scan (follow_up_days).
    Arm X: takeover on day 40 in replicates 0-9, never (followed 200 days) in 10-11;
    arm Y: takeover on day 20 everywhere. X wins every pair (later, or not at all), so the
    net benefit is 12/12 with the Newcombe interval of (0 ties, 12 wins, 0 losses) and the
    sign test p = 2 * 0.5^12."""
    def takeover_row(arm, r, days):
        return {**row(arm, r), "time_to_resistance_days": str(days), "follow_up_days": "200"}
    rows = [takeover_row("x", r, 40.0 if r < 10 else math.nan) for r in range(12)]
    rows += [takeover_row("y", r, 20.0) for r in range(12)]
    claim = claims.Claim("takeover later", (claims.Comparison(
        "time to takeover, x vs y", "times", "x", "resistant_takeover", +1, "y"),))
    (later,) = claims.evaluate(rows, (claim,))
    assert later.n == 12 and later.effect == pytest.approx(1.0)
    assert (later.low, later.high) == pytest.approx(newcombe_paired_interval(0, 12, 0, 0))
    assert later.p_value == pytest.approx(2 * 0.5 ** 12)
    assert later.holds
    assert claims._time(rows[11], "resistant_takeover") == (200.0, False)
    assert claims._time(rows[0], "resistant_takeover") == (40.0, True)
