"""The dt convergence study (``python -m simulator.study.convergence``) end to end on a tiny
lattice: two step lengths, two replicates, one arm; the written table and the choice of step."""
import numpy as np
from scipy import stats

from conftest import needs_jit
from simulator.study import convergence


@needs_jit
def test_tiny_study_writes_the_table_and_the_choice(tmp_path):
    doc = tmp_path / "convergence.md"
    assert convergence.main([
        "--replicates", "2", "--dt", "6,3", "--groups", "melanoma", "--arms", "untreated",
        "--set", "simulation.dimensions=[40,40]", "--set", "simulation.duration_days=70",
        "--set", "initial.tumor_radius_sites=4", "-o", str(tmp_path / "study"),
        "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "## melanoma: untreated" in text and "| 6 h vs 3 h |" in text
    assert "| tumor_cells_day_60 |" in text and "| box_limited |" in text
    assert "## Which step" in text
    # the same study tabulated again without running anything
    again = tmp_path / "again.md"
    assert convergence.main([
        "--replicates", "2", "--dt", "6,3", "--groups", "melanoma", "--arms", "untreated",
        "-o", str(tmp_path / "study"), "--doc", str(again), "--tabulate-only"]) == 0
    assert again.read_text().split("\n", 3)[3] == text.split("\n", 3)[3]
    assert "Tabulated by" in again.read_text()


def test_tabulating_a_missing_study_is_one_clear_line(tmp_path, capsys):
    assert convergence.main(["--groups", "default", "-o", str(tmp_path / "none"),
                             "--doc", str(tmp_path / "x.md"), "--tabulate-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no study here to tabulate" in err[0]


def _values(coarse_by_endpoint, fine_by_endpoint, arm="a", dts=(6.0, 3.0)):
    return {(arm, dts[0]): coarse_by_endpoint, (arm, dts[1]): fine_by_endpoint}


def test_correlated_endpoints_do_not_count_as_independent_evidence():
    """Ten copies of one endpoint whose single interval excludes zero: a Binomial(10, 0.05)
    reading calls 10 of 10 overwhelming (p = 1e-13), but the ten are one piece of evidence.
    The count only says whether that one interval excludes zero, so the sign-flip test
    gives the chance that it does without an effect: about 0.05."""
    rng = np.random.default_rng(21)
    n = 20
    shift = rng.normal(0.0, 1.0, n) + 0.5          # t = 2.48, p = 0.023 for this seed
    base = rng.normal(0.0, 1.0, n)
    coarse = {f"e{i}": base + shift for i in range(10)}
    fine = {f"e{i}": base.copy() for i in range(10)}
    t = stats.ttest_1samp(shift, 0.0).pvalue
    assert 0.005 < t < 0.05                        # the seed gives a borderline effect
    [test] = convergence.pair_tests({"g": _values(coarse, fine)}, (6.0, 3.0), n, flips=4000)
    assert (test.comparisons, test.excluding_zero) == (10, 10)
    # P(|t| > t_0.975) over the 2^20 sign patterns of one sample is close to 0.05; with
    # 4000 flips the Monte Carlo standard error is 0.0035, so +-0.02 is over 5 of them
    assert abs(test.p - 0.05) < 0.02
    assert test.null_mean < 1.0


def test_independent_null_endpoints_count_near_chance():
    """No effect, independent endpoints: the count is about 5% of them, p is not small."""
    rng = np.random.default_rng(11)
    n, m = 20, 40
    coarse = {f"e{i}": rng.normal(size=n) for i in range(m)}
    fine = {f"e{i}": rng.normal(size=n) for i in range(m)}
    [test] = convergence.pair_tests({"g": _values(coarse, fine)}, (6.0, 3.0), n, flips=500)
    # null mean of the count: 0.05 m = 2 (the t interval is exact for normal data)
    assert 1.0 < test.null_mean < 3.0
    assert test.p > 0.05


def test_a_real_effect_is_found():
    rng = np.random.default_rng(5)
    n = 20
    coarse = {f"e{i}": rng.normal(size=n) + 1.5 for i in range(5)}
    fine = {f"e{i}": rng.normal(size=n) for i in range(5)}
    [test] = convergence.pair_tests({"g": _values(coarse, fine)}, (6.0, 3.0), n, flips=500)
    assert test.excluding_zero == 5
    assert test.p == 1 / 501                       # no flip pattern reaches it


def test_recommendation_picks_the_coarsest_consistent_step():
    def pair(coarse, fine, k, p):
        return convergence.PairTest(coarse, fine, 20, k, 1.0, p)
    text = convergence.recommendation([pair(6, 3, 1, 0.6), pair(3, 1.5, 10, 0.001)],
                                      (6.0, 3.0, 1.5))
    assert "| 3 h vs 1.5 h | 20 | 10 | 1.0 | 0.001 |" in text
    assert "No step coarser than 1.5 h" in text
    text = convergence.recommendation([pair(6, 3, 3, 0.02), pair(3, 1.5, 1, 0.7)],
                                      (6.0, 3.0, 1.5))
    assert "From 3 h down to 1.5 h" in text


def test_too_few_pairs_give_no_interval():
    """Two patients still on study, one T cell apart at both: a zero-width t interval
    [1, 1] would 'exclude zero'; below MIN_PAIRS pairs there is no interval."""
    nan = float("nan")
    coarse = np.array([61.0, 59.0, nan, nan, nan, nan])
    fine = np.array([60.0, 58.0, 70.0, nan, nan, nan])
    diff, low, high, pairs = convergence.paired_difference(coarse, fine, binary=False)
    assert pairs == 2 and np.isnan(low) and np.isnan(high)
    full = np.arange(6.0)
    diff, low, high, pairs = convergence.paired_difference(full + 1.0, full, binary=False)
    assert pairs == 6 and diff == 1.0 and low == high == 1.0   # enough pairs: it is real
