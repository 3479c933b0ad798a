"""`tumorsim explore` driven in headless Chromium (Playwright + Debian's chromium).

One server and one page for the module, used in order: load, pick a lesson, run two arms,
see the lattice image and the curves change, replay, save the scenario and the run and run
the saved scenario with the CLI to the same numbers, a bad value giving the CLI's message,
open one's own file. Screenshots go to the test's tmp dir (and, with
TUMORSIM_SCREENSHOTS=docs/figures, to the README's figures). Measured start-up time, time
to the first frame and frames per second are printed (pytest -s) and written to
``explorer-timings.json`` in the tmp dir.
"""
import json
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import CHROMIUM_ARGS, ROOT, chromium_or_skip, needs_jit, save_screenshot
from simulator.scenario import library_dir
from simulator.study.layout import is_complete

pytestmark = needs_jit
TIMINGS = {}
LESSON = "Why targeted therapy relapses"


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("explorer-screenshots")


def _warm_kernel_cache(directory):
    """Compile (and cache) the kernels the default scenario and a drug arm use, on tiny
    lattices, before the clock starts: these tests measure the explorer with a warm cache
    (docs/explorer.md), and on a fresh checkout the first Run would otherwise compile."""
    for scenario in ("default.toml", "targeted_continuous.toml"):
        subprocess.run([sys.executable, "-m", "simulator", "run", "--quiet", "--threads", "1",
                        str(library_dir() / scenario), "-o", str(directory / f"{scenario}.h5"),
                        "--set", "simulation.dimensions=[40,40]",
                        "--set", "initial.tumor_radius_sites=4",
                        "--set", "simulation.treatment_start_day=1",
                        "--set", "simulation.duration_days=2"],
                       cwd=ROOT, check=True, timeout=600, capture_output=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("bokeh")
    exe = chromium_or_skip()
    save_dir = tmp_path_factory.mktemp("explorer-saves")
    _warm_kernel_cache(tmp_path_factory.mktemp("warm-up"))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "explore", "--port", "0",
                             "--save-dir", str(save_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    assert match, line
    yield dict(url=match.group(1), save_dir=save_dir, started=started, exe=exe)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server, shots):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=server["exe"], args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1500})
        pg.set_default_timeout(60_000)
        deadline = time.time() + 60
        while True:
            try:
                pg.goto(server["url"])
                break
            except Exception:  # noqa: BLE001 - the server may still be starting
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        pg.wait_for_function("window.tumorsimFrames >= 1", timeout=60_000)
        TIMINGS["startup_to_first_frame_s"] = time.perf_counter() - server["started"]
        yield pg
        browser.close()
    print("\nexplorer timings:", json.dumps(TIMINGS, indent=1))
    (shots / "explorer-timings.json").write_text(json.dumps(TIMINGS, indent=1))


def status(pg) -> str:
    return pg.inner_text(".ts-status div")


def message(pg) -> str:
    return pg.inner_text(".ts-message div").strip()


def day(pg) -> float:
    return float(re.search(r"day (\d+\.\d+)", status(pg)).group(1))


def tumour_cells(pg) -> dict[str, int]:
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"([AB]): (\d+) tumour cells", status(pg))}


def frames(pg) -> int:
    return pg.evaluate("window.tumorsimFrames || 0")


def set_value(pg, css, text):
    pg.fill(f"{css} input", text)
    pg.press(f"{css} input", "Enter")


def wait_until(check, timeout_s=60.0, what=""):
    """Poll ``check()`` (Bokeh renders into nested shadow roots, which Playwright's
    selectors pierce but page scripts' querySelector does not)."""
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_ready(pg):
    """The form is valid and its run prepared ("ok: press Run")."""
    wait_until(lambda: "ok: press Run" in message(pg), what="the form to be ready")


def wait_finished(pg, timeout_s=150):
    deadline = time.time() + timeout_s
    while "finished" not in status(pg):
        assert time.time() < deadline, status(pg)
        time.sleep(0.2)


def test_starts_and_shows_the_default_scenario(page, shots):
    assert page.title() == "tumorsim explorer"
    assert page.input_value(".ts-scenario select") == "default.toml"
    assert frames(page) >= 1                       # the initial lattice is drawn
    wait_ready(page)
    # at the default 20 days/s a quiet machine finishes the 120-day run within the 7 s
    # below, and Run on a finished run starts it again: 5 days/s keeps it going
    page.select_option(".ts-speed select", label="5 days/s")
    before = frames(page)
    clicked = time.perf_counter()
    page.click(".ts-run button")
    wait_until(lambda: frames(page) > before and day(page) > 0, 30, "the first frame")
    TIMINGS["run_click_to_first_new_frame_s"] = time.perf_counter() - clicked
    time.sleep(3)
    n0, t0 = frames(page), time.perf_counter()
    time.sleep(4)
    TIMINGS["fps_default_300x300_at_5_days_per_s"] = (frames(page) - n0) / (time.perf_counter() - t0)
    page.click(".ts-run button")                   # pause
    wait_until(lambda: "paused" in status(page), 30, "the pause")
    # the status may say "paused" one view tick before it shows the last stepped day;
    # once two reads agree, the clock must stay put
    last = [day(page)]

    def settled():
        time.sleep(0.3)
        now = day(page)
        settled_now, last[0] = now == last[0], now
        return settled_now
    wait_until(settled, 30, "the paused day to settle")
    paused_at = day(page)
    time.sleep(1.0)
    assert day(page) == paused_at
    page.click(".ts-step button")
    wait_until(lambda: f"day {paused_at + 1:.2f}" in status(page), 30, "one day's step")
    page.screenshot(path=str(shots / "default.png"))


def test_lesson_runs_two_arms_and_the_view_changes(page, shots):
    page.select_option(".ts-lesson select", label=LESSON)
    wait_until(lambda: "selected" in page.inner_text(".ts-lesson-text div"), 30, "the lesson")
    # (the widgets update over a websocket: poll, as for every other change on screen)
    wait_until(lambda: page.is_checked(".ts-compare input"), 10, "the lesson's two arms")
    set_value(page, ".ts-duration-days", "56")
    set_value(page, ".ts-treatment-start-day", "20")
    page.select_option(".ts-speed select", label="as fast as possible")
    wait_ready(page)
    assert page.is_visible(".ts-lattice-b")
    lattice0 = page.locator(".ts-lattice-a").screenshot()
    burden0 = page.locator(".ts-burden").screenshot()
    n0, t0 = frames(page), time.perf_counter()
    page.click(".ts-run button")
    wait_finished(page)
    elapsed = time.perf_counter() - t0
    TIMINGS["fps_lesson_2x150x150_live"] = (frames(page) - n0) / 2 / elapsed
    TIMINGS["lesson_run_224_steps_2_arms_s"] = elapsed
    assert day(page) == pytest.approx(56.0)
    cells = tumour_cells(page)
    assert set(cells) == {"A", "B"} and cells["A"] != cells["B"]   # treated vs untreated
    assert page.locator(".ts-lattice-a").screenshot() != lattice0
    assert page.locator(".ts-burden").screenshot() != burden0
    page.screenshot(path=str(shots / "explorer.png"))
    save_screenshot(shots / "explorer.png", "explorer.png")


def test_replay_redraws_stored_frames(page, shots):
    n0, t0 = frames(page), time.perf_counter()
    page.click(".ts-replay button")
    wait_until(lambda: day(page) < 20, 30, "the replay to start")
    deadline = time.time() + 60
    while day(page) < 55.9 and time.time() < deadline:
        time.sleep(0.1)
    elapsed = time.perf_counter() - t0
    TIMINGS["fps_replay_2x150x150"] = (frames(page) - n0) / 2 / elapsed
    assert frames(page) - n0 >= 20                 # frames of two arms, drawn in turn
    page.locator(".ts-lattice-a").screenshot(path=str(shots / "replay-end.png"))


def test_saved_scenario_runs_in_the_cli_to_the_numbers_on_screen(page, server, tmp_path):
    # the replay before may still be drawing on a busy machine: read the last day's numbers
    wait_until(lambda: day(page) >= 55.9, 180, "the view to show the run's last day")
    on_screen = tumour_cells(page)
    page.fill(".ts-save-name input", "lesson")
    page.press(".ts-save-name input", "Enter")
    page.click(".ts-save-scenario button")
    wait_until(lambda: "saved scenario" in message(page), 30, "the scenario to be saved")
    page.click(".ts-save-run button")
    save_dir = server["save_dir"]
    for arm in ("A", "B"):
        toml = save_dir / f"lesson_{arm}.toml"
        assert toml.exists()
        out = tmp_path / f"cli_{arm}.h5"
        result = subprocess.run(cwd=ROOT, args=[sys.executable, "-m", "simulator", "run", str(toml), "-o",
                                 str(out), "--quiet", "--threads", "1"], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        with h5py.File(out, "r") as f:
            cli = f["timeseries/tumor_cells"][()]
        assert cli[-1] == on_screen[arm]
        saved = save_dir / f"lesson_{arm}.h5"
        deadline = time.time() + 300
        while not is_complete(saved):       # the explorer writes it on a worker thread
            assert time.time() < deadline, message(page)
            time.sleep(0.2)
        with h5py.File(saved, "r") as f:
            assert f.attrs["status"] == "complete"
            assert np.array_equal(f["timeseries/tumor_cells"][()], cli)


def test_bad_value_gets_the_clis_one_line_message(page):
    set_value(page, ".ts-resistant-fraction", "1.5")
    wait_until(lambda: "error" in message(page), 30, "the error message")
    shown = message(page)
    source = library_dir() / "targeted_continuous.toml"
    cli = subprocess.run(cwd=ROOT, args=[sys.executable, "-m", "simulator", "run", str(source), "--set",
                          "simulation.duration_days=56", "--set",
                          "simulation.treatment_start_day=20", "--set",
                          "initial.resistant_fraction=1.5"], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 2
    assert shown == cli.stderr.strip()
    assert shown.startswith("tumorsim: error: ") and "initial.resistant_fraction" in shown
    set_value(page, ".ts-resistant-fraction", "0.05")
    wait_ready(page)


def test_opens_the_users_own_file(page, tmp_path, shots):
    own = tmp_path / "my_tumour.toml"
    own.write_text('base = "melanoma.toml"\ndescription = "mine"\n[simulation]\n'
                   'dimensions = [60, 60]\nduration_days = 30\ntreatment_start_day = 10\n[initial]\n'
                   'tumor_radius_sites = 6\n[[drugs.anti_pd1.doses]]\nevery_days = 21\n'
                   'dose_mg = 200\n')
    page.set_input_files(".ts-upload input", str(own))
    wait_until(lambda: page.input_value(".ts-scenario select") == "my_tumour.toml", 30,
               "the file to open")
    # the select changes before the form is rebuilt from the file; until then the page
    # still shows the previous scenario's "ok: press Run"
    wait_until(lambda: "my_tumour.toml" in page.inner_text(".ts-command div"), 30,
               "the form of the file")
    wait_ready(page)
    assert page.is_checked(".ts-a-anti-pd1-given input")
    assert page.input_value(".ts-a-anti-pd1-every-days input") == "21"
    assert "my_tumour.toml" in page.inner_text(".ts-command div")
