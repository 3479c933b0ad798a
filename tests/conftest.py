import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Subprocesses (`python -m simulator ...`) import this checkout, whatever their working
# directory: otherwise a test that runs in a temporary directory would test whichever
# tumorsim is installed in the environment.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                           if p)

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT") == "1"
needs_jit = pytest.mark.skipif(JIT_DISABLED, reason="too slow without Numba JIT")


#: A study small enough for tests (seconds) that still writes every kind of output: a
#: cohort draw (melanoma), doses and rules, a drug with spatial penetration (tissue series
#: and a drug field snapshot), tissue fields, three arms forked from one tumour.
TINY_STUDY_ARMS = ("targeted_continuous", "combination_concurrent",
                   "targeted_continuous_penetration")
TINY_STUDY_SETTINGS = ["simulation.dimensions=[48,48]", "simulation.duration_days=40",
                       "simulation.treatment_start_day=12", "initial.tumor_radius_sites=5",
                       "endpoints.scan_interval_days=7", "endpoints.durable_min_days=14",
                       "output.snapshot_every_days=10"]


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """DIR of `tumorsim compare` over TINY_STUDY_ARMS x 2 replicates, figures and report."""
    if JIT_DISABLED:
        pytest.skip("too slow without Numba JIT")
    from simulator import study
    from simulator.scenario import library_dir
    directory = tmp_path_factory.mktemp("tiny-study")
    report = study.compare([library_dir() / f"{a}.toml" for a in TINY_STUDY_ARMS], 2,
                           directory, overrides=TINY_STUDY_SETTINGS, figures=True,
                           workers=2)   # one Numba thread each: no parallel-region stalls
    assert not report.failed, report.failed
    return directory


def chromium_or_skip():
    """Playwright driving Debian's chromium (Playwright's own browser download is not
    reachable here). Skips, saying why, only when either is missing; `.ci/run` installs
    both, so in CI these tests run."""
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the Python package playwright is not installed (pip install playwright)")
    return exe


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def save_screenshot(path, name):
    """Browser tests write screenshots under their tmp dir; with TUMORSIM_SCREENSHOTS=DIR
    (e.g. docs/figures, to refresh the README's) they are copied there too."""
    target = os.environ.get("TUMORSIM_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / name)
