"""How fast the explorer starts and how many lattice frames per second it delivers.

Run: ``python benchmarks/bench_explorer.py [--quick] [--json PATH]`` (needs the ``explore``
extra, the Python package playwright and /usr/bin/chromium; ~40 s). Prints a table and
writes ``benchmarks/results/explorer.json`` (the common head of ``benchmarks/common.py``,
the figures under ``result``). ``--quick``: 2 s windows instead of 4, 10 frames per
server-cost size instead of 30.

Measured, end to end, with ``tumorsim explore`` in its own process and headless Chromium:

- start-up: process launch -> URL printed; -> ``/`` served (HTTP 200); -> the first lattice
  frame drawn in the browser (the page's ``window.tumorsimFrames`` counter, incremented by
  the image source's change callback, i.e. frames that reached the browser);
- first frame after pressing Run (default scenario, 300 x 300);
- frames per second drawn in the browser while running as fast as possible, with the
  simulation's own pace (steps per second, read off the day shown) beside it: the view keeps
  up when frames/s = min(steps/s, the 20 frames/s cap);
- replay frames per second (stored frames only: the display pipeline alone);
- server-side cost of one frame (RGBA raster + Bokeh serialisation), CPU time in this
  process, at 150, 300 and 600 sites a side: the frame rate one core can feed.

Wall-clock numbers depend on the machine's load; the script prints the load average.
"""
import argparse
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (puts the repository root on sys.path)

import numpy as np  # noqa: E402

ROOT = HERE.parent
STARTUP_TARGET_S = 5.0  # the explorer's start-up goal (docs/explorer.md)
MODES = dict(full=dict(window_s=4.0, frame_repeats=30),
             quick=dict(window_s=2.0, frame_repeats=10))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def frame_cost(n: int, repeats: int) -> float:
    """CPU seconds to make and serialise one n x n frame."""
    from bokeh.core.serialization import Serializer
    from bokeh.models import ColumnDataSource

    from simulator.app import render
    rng = np.random.default_rng(1)
    kind = rng.integers(0, 7, size=(n, n)).astype(np.uint8)
    clone = rng.integers(0, 2, size=(n, n)).astype(np.uint8)
    src = ColumnDataSource(data=dict(image=[np.zeros((1, 1), np.uint32)]))
    started = time.process_time()
    for _ in range(repeats):
        image = render.rgba(render.categories(kind, clone))
        src.data = dict(image=[image])
        Serializer().encode(src.data)
    return (time.process_time() - started) / repeats


def status(page) -> str:
    return page.inner_text(".ts-status div")


def day(page) -> float:
    return float(re.search(r"day (\d+\.\d+)", status(page)).group(1))


def frames(page) -> int:
    return page.evaluate("window.tumorsimFrames || 0")


def wait(check, timeout=120.0):
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise TimeoutError
        time.sleep(0.02)


def pause(page):
    """Pause a running view; one that already finished stays as it is."""
    if "running" in status(page):
        page.click(".ts-run button")
    wait(lambda: "paused" in status(page) or "finished" in status(page))


def live_rate(page, seconds: float, arms: int, steps_per_day: float) -> dict:
    n0, d0, t0 = frames(page), day(page), time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - t0
    steps = (day(page) - d0) * steps_per_day
    return dict(frames_per_s=(frames(page) - n0) / arms / elapsed,
                steps_per_s=steps / elapsed)


def measure(window_s: float, frame_repeats: int) -> dict:
    """The figures of the module docstring, ``window_s`` seconds per live or replay rate."""
    from playwright.sync_api import sync_playwright
    results = {}
    launched = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "explore", "--port", "0",
                             "--save-dir", "/tmp"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"(http://\S+/)", proc.stdout.readline()).group(1)
        results["startup_url_printed_s"] = time.perf_counter() - launched
        wait(lambda: _served(url))
        results["startup_page_served_s"] = time.perf_counter() - launched
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(url)
            page.wait_for_function("window.tumorsimFrames >= 1", timeout=120_000)
            results["startup_first_frame_in_browser_s"] = time.perf_counter() - launched
            wait(lambda: "ok: press Run" in page.inner_text(".ts-message div"))
            page.select_option(".ts-speed select", label="as fast as possible")
            n0 = frames(page)
            clicked = time.perf_counter()
            page.click(".ts-run button")
            wait(lambda: frames(page) > n0 and day(page) > 0)
            results["run_click_to_first_frame_s"] = time.perf_counter() - clicked
            time.sleep(1.0)
            # the whole 120-day default run takes about 8 s of steps here: a window of
            # 4 s (2 s with --quick) falls within it
            results["live_default_300x300"] = live_rate(page, window_s, 1, 4.0)
            pause(page)
            page.select_option(".ts-lesson select", label="Why targeted therapy relapses")
            wait(lambda: "ok: press Run" in page.inner_text(".ts-message div"))
            page.select_option(".ts-speed select", label="as fast as possible")
            time.sleep(0.5)
            page.click(".ts-run button")
            wait(lambda: " B: " in status(page) and "running" in status(page)
                 and day(page) > 1)
            results["live_lesson_2_arms_250x250"] = live_rate(page, window_s, 2, 4.0)
            pause(page)
            n0, t0 = frames(page), time.perf_counter()
            page.click(".ts-replay button")
            time.sleep(window_s)
            results["replay_2_arms_250x250_frames_per_s"] = \
                (frames(page) - n0) / 2 / (time.perf_counter() - t0)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    results["server_frame_cpu_s"] = {n: frame_cost(n, frame_repeats) for n in (150, 300, 600)}
    return results


def print_report(res: dict) -> None:
    common.print_header(res, "Explorer: start-up and frames per second",
                        optional=("psutil", "bokeh", "playwright"))
    r = res["result"]
    live, lesson = r["live_default_300x300"], r["live_lesson_2_arms_250x250"]
    cost = r["server_frame_cpu_s"]
    rows = [
        ("process start -> URL printed (s)", f"{r['startup_url_printed_s']:.2f}"),
        ("process start -> page served (s)", f"{r['startup_page_served_s']:.2f}"),
        ("process start -> first frame in the browser (s)",
         f"{r['startup_first_frame_in_browser_s']:.2f}"),
        ("Run pressed -> first new frame (s)", f"{r['run_click_to_first_frame_s']:.2f}"),
        ("live, default 300x300: frames/s (steps/s)",
         f"{live['frames_per_s']:.1f} ({live['steps_per_s']:.0f})"),
        ("live, lesson 2 arms x 250x250: frames/s per arm (steps/s)",
         f"{lesson['frames_per_s']:.1f} ({lesson['steps_per_s']:.0f})"),
        ("replay, 2 arms x 250x250: frames/s per arm",
         f"{r['replay_2_arms_250x250_frames_per_s']:.1f}"),
        ("server CPU per frame, 150^2 / 300^2 / 600^2 (ms)",
         " / ".join(f"{1e3 * cost[n]:.2f}" for n in (150, 300, 600))),
    ]
    for name, value in rows:
        print(f"  {name:<60}{value:>16}")
    common.print_targets(res["targets"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 s windows and 10 frames per server-cost size")
    ap.add_argument("--json", type=Path, default=common.default_json("explorer"))
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    res = common.new_result("explorer", mode, dict(MODES[mode]),
                            optional=("psutil", "bokeh", "playwright"))
    res["result"] = measure(**MODES[mode])
    common.finish_result(res)
    r = res["result"]
    res["targets"] = [
        common.target_row("process start -> URL printed (s)", r["startup_url_printed_s"],
                          STARTUP_TARGET_S, f"<= {STARTUP_TARGET_S:g} s",
                          higher_is_better=False),
        common.target_row("process start -> first frame in the browser (s)",
                          r["startup_first_frame_in_browser_s"], STARTUP_TARGET_S,
                          f"<= {STARTUP_TARGET_S:g} s", higher_is_better=False)]
    print_report(res)
    common.write_json(res, args.json)
    return 0


def _served(url) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
