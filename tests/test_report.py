"""The study report: one self-contained report.html, written by compare and by
`tumorsim report`, checked offline in headless Chromium."""
import re
import subprocess
import sys


from conftest import CHROMIUM_ARGS, ROOT, TINY_STUDY_ARMS, chromium_or_skip, needs_jit
from simulator.output.plotting import STUDY_FIGURES


def _tumorsim(*args):
    return subprocess.run(cwd=ROOT, args=[sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, timeout=300)


@needs_jit
def test_compare_writes_a_self_contained_report(tiny_study):
    html = (tiny_study / "report.html").read_text()
    assert "<script" not in html.lower()
    # nothing fetched from anywhere: every src/href is a data URI or an in-page anchor
    for attr in re.findall(r'(?:src|href)=["\']([^"\']*)["\']', html):
        assert attr.startswith(("data:", "#")), attr
    assert "@import" not in html and "url(" not in html
    images = re.findall(r"<img [^>]*src='data:image/png;base64,", html)
    assert len(images) == len(STUDY_FIGURES)
    for arm in TINY_STUDY_ARMS:
        assert f"id='provenance-{arm}'" in html
    assert html.count("[simulation]") >= len(TINY_STUDY_ARMS)   # each arm's resolved scenario
    for words in ("response rate (95% CI)", "durable difference vs reference",
                  "seeds (replicate: seed)", "software version", "git commit",
                  "wall time of the compare call", "library versions", "progression (PD)",
                  "durable response", "cohort"):
        assert words in html, words


@needs_jit
def test_report_command_rebuilds_it_and_bad_targets_are_one_line(tiny_study, tmp_path):
    before = (tiny_study / "report.html").stat().st_mtime_ns
    result = _tumorsim("report", str(tiny_study / "study.h5"))
    assert result.returncode == 0, result.stderr
    assert "report.html" in result.stdout
    assert (tiny_study / "report.html").stat().st_mtime_ns > before
    result = _tumorsim("report", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "study.h5: no such file" in result.stderr


@needs_jit
def test_report_opens_offline_in_chromium(tiny_study, tmp_path):
    exe = chromium_or_skip()
    from playwright.sync_api import sync_playwright
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True, java_script_enabled=False,
                                      viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto((tiny_study / "report.html").as_uri())
        page.wait_for_load_state("load")
        # every figure decoded: a broken or blocked image has no natural size
        sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(sizes) == len(STUDY_FIGURES) and min(sizes) > 100
        rows = page.locator("#arms-table tr").count()
        assert rows == 1 + len(TINY_STUDY_ARMS)
        assert page.locator("#provenance").is_visible()
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    external = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert not external, external
    assert shot.stat().st_size > 10_000
