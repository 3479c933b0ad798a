"""The explorer's Python side, without a browser: the form is the CLI's --set (same scenario,
same one-line errors), two arms fork one pre-treatment tumour and each equals a plain run of
its own scenario, the player publishes frames, frames are rasters in the figures' colours."""
import subprocess
import sys
import time

import matplotlib.colors as mc
import numpy as np
import pytest

from conftest import ROOT, needs_jit
from kernels.lattice import KIND_NAMES
from simulator import engine as engine_mod
from simulator import scenario as scenario_mod
from simulator.app import render
from simulator.app.form import Form, error_line
from simulator.app.lessons import LESSONS
from simulator.app.session import Exploration, Player
from simulator.output.plotting import KIND_COLOURS
from simulator.scenario import library_dir
from simulator.schema import ScenarioError

SMALL = ('base = "{base}"\n[simulation]\ndimensions = [40, 40]\nduration_days = 24\n'
         'treatment_start_day = 8\n[initial]\ntumor_radius_sites = 5\n')


def _small(tmp_path, base="targeted_continuous.toml", name="small.toml"):
    path = tmp_path / name
    path.write_text(SMALL.format(base=library_dir() / base))
    return path


def _cli_error(source, overrides):
    args = [sys.executable, "-m", "simulator", "run", str(source)]
    for o in overrides:
        args += ["--set", o]
    result = subprocess.run(cwd=ROOT, args=args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    return result.stderr.strip()


def test_an_untouched_form_is_the_file():
    """... but for going off study at progression: the explorer follows every arm to the
    horizon, and says so in its overrides and command line."""
    source = library_dir() / "targeted_adaptive.toml"
    form = Form.of_file(source)
    assert form.overrides() == ["endpoints.off_study_at_progression=false"]
    followed = scenario_mod.load(source, ["endpoints.off_study_at_progression=false"])
    assert form.scenario().to_toml() == followed.to_toml()
    drug = form.arms[0]["braf_inhibitor"]
    assert drug.given and drug.every_days == "0.5" and drug.rule == "adaptive"
    assert form.command_line() == ("tumorsim run scenarios/targeted_adaptive.toml "
                                   "--set endpoints.off_study_at_progression=false")
    untouched = Form.of_file(library_dir() / "default.toml")
    assert untouched.overrides() == []
    assert untouched.command_line() == "tumorsim run scenarios/default.toml"


@pytest.mark.parametrize("key, text", [("initial.resistant_fraction", "1.5"),
                                       ("tumor.antigenicity", "lots"),
                                       ("simulation.treatment_start_day", "2000")])
def test_bad_values_give_the_clis_line(key, text):
    form = Form.of_file(library_dir() / "targeted_continuous.toml").with_value(key, text)
    with pytest.raises(ScenarioError) as info:
        form.scenario()
    assert error_line(info.value) == _cli_error(form.source, form.overrides())
    assert key in str(info.value)


def test_bad_regimen_values_give_the_clis_line():
    form = Form.of_file(library_dir() / "targeted_continuous.toml")
    for changes, words in (({"dose_mg": "a lot"}, "dose_mg: expected a number"),
                           ({"on_days": "28"}, "off_days: on/off cycles need both"),
                           ({"rule": "adaptive", "pause_below": "2", "resume_above": "1"},
                            "must be below the resume threshold")):
        bad = form.with_drug(0, "braf_inhibitor", **changes)
        with pytest.raises(ScenarioError) as info:
            bad.scenario()
        assert words in str(info.value)
        assert error_line(info.value) == _cli_error(bad.source, bad.overrides())


def test_regimen_edits_become_the_scenarios_doses_and_rules():
    form = Form.of_file(library_dir() / "melanoma.toml").with_arms(2)
    form = form.with_drug(1, "braf_inhibitor", given=True, every_days="0.5", dose_mg="960",
                          on_days="28", off_days="28", rule="adaptive", pause_below="0.5")
    form = form.with_drug(1, "anti_pd1", given=True, start_day="28", every_days="21",
                          dose_mg="200", rule="progression", after="braf_inhibitor")
    a, b = form.scenarios()
    assert not any(d.doses for d in a.drugs.values())
    block = b.drugs["braf_inhibitor"].doses[0]
    assert (block.every_days, block.dose_mg, block.on_days, block.off_days) == (0.5, 960, 28, 28)
    assert b.drugs["braf_inhibitor"].rules[0].pause_below_fraction == 0.5
    rule = b.drugs["anti_pd1"].rules[0]
    assert rule.when == "progression" and rule.of == "braf_inhibitor"
    assert b.drugs["anti_pd1"].doses[0].start_day == 28
    # the command line shown is the same scenario
    args = form.command_line(1).split(" --set ")
    overrides = [o.strip("'") for o in args[1:]]
    assert scenario_mod.load(form.source, overrides).to_toml() == b.to_toml()


def test_a_switch_at_progression_looks_when_the_endpoints_look(tmp_path):
    """A file whose rules scan weekly and its endpoints every 6 weeks from week 12: an arm
    that switches at progression gets the endpoints' scans for its rules (so it cannot
    switch before the endpoints call progression); an arm without such a rule keeps the
    file's."""
    weekly = tmp_path / "weekly_rules.toml"
    weekly.write_text(f'base = "{library_dir() / "melanoma.toml"}"\n'
                      "[regimen]\nscan_interval_days = 7\nfirst_scan_days = 0\n")
    form = Form.of_file(weekly).with_arms(2)
    form = form.with_drug(0, "braf_inhibitor", given=True, every_days="0.5", dose_mg="960")
    form = form.with_drug(1, "braf_inhibitor", given=True, every_days="0.5", dose_mg="960")
    form = form.with_drug(1, "anti_pd1", given=True, every_days="21", dose_mg="200",
                          rule="progression", after="braf_inhibitor")
    a, b = form.scenarios()
    assert (a.regimen.scan_interval_days, a.regimen.first_scan_days) == (7.0, 0.0)
    assert (b.regimen.scan_interval_days, b.regimen.first_scan_days) == \
        (b.endpoints.scan_interval_days, b.endpoints.first_scan_days) == (42.0, 84.0)
    # a sequence file already scanning with its endpoints needs no override
    seq = Form.of_file(library_dir() / "targeted_then_anti_pd1.toml")
    assert not [o for o in seq.overrides() if o.startswith("regimen.")]


def test_every_lesson_opens_valid_forkable_arms():
    for lesson in LESSONS:
        form = Form.of_file(library_dir() / lesson.arm_a,
                            library_dir() / lesson.arm_b if lesson.arm_b else None)
        scenarios = form.scenarios()
        assert len(scenarios) == (2 if lesson.arm_b else 1)
        from simulator.study.comparison import _pretreatment_part
        assert len({str(_pretreatment_part(s)) for s in scenarios}) == 1, lesson.key
        assert lesson.text.count("<p>") >= 2


@needs_jit
def test_two_arms_share_the_pretreatment_tumour_and_each_equals_its_own_run(tmp_path):
    engine_mod.set_threads(1)
    form = Form.of_file(_small(tmp_path), library_dir() / "combination_concurrent.toml")
    scenarios = form.scenarios()
    ex = Exploration(scenarios)
    while not ex.done:
        ex.advance(7)
    ha, hb = ex.history(0), ex.history(1)
    fork = ex.fork_step
    assert fork == 32
    for name in ("tumor_cells", "t_cells"):
        assert ha.series[name][:fork + 1] == hb.series[name][:fork + 1]
    assert ha.series["tumor_cells"] != hb.series["tumor_cells"]   # the regimens differ after
    assert ex.arms[0].given_drugs() == ["braf_inhibitor"]
    assert ex.arms[1].given_drugs() == ["anti_pd1", "braf_inhibitor"]
    for arm, s in zip(ex.arms, scenarios):   # what `tumorsim run` of the arm computes
        alone = engine_mod.Engine(s)
        series = []

        class Rec:
            def record(self, engine):
                series.append(engine.observe()["tumor_cells"])
        engine_mod.run(s, Rec(), engine=alone)
        assert series == arm.history.series["tumor_cells"]
        assert np.array_equal(alone.state.grid(), arm.engine.state.grid())


@needs_jit
def test_player_publishes_frames_and_stops_at_the_end(tmp_path):
    ex = Exploration(Form.of_file(_small(tmp_path)).scenarios())
    player = Player(ex, fps=50, days_per_second=None)
    first = player.latest()
    assert first.step == 0 and first.frames[0].shape == (40, 40)
    player.play()
    deadline = time.time() + 120
    while not ex.done and player.error is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert player.error is None and ex.done
    last = player.latest()
    assert last.done and not last.running and last.step == ex.last_step
    assert player.frames_published >= 2
    assert last.records == [ex.last_step + 1]
    h = ex.history(0)
    assert h.frame_steps[0] == 0 and len(h.frames) == len(h.frame_steps)
    step, frame = h.frame_at(ex.scenarios[0].simulation.treatment_start_day, ex.dt_days)
    assert step == ex.fork_step and frame.dtype == np.uint8
    player.stop()
    player.thread.join(5)
    assert not player.thread.is_alive()


@needs_jit
def test_paced_player_keeps_to_the_chosen_days_per_second(tmp_path):
    ex = Exploration(Form.of_file(_small(tmp_path)).scenarios())
    player = Player(ex, fps=20, days_per_second=40.0)
    started = time.perf_counter()
    player.play()
    while not ex.done and time.perf_counter() - started < 60:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    player.stop()
    # 24 simulated days at 40 days/s: at least 0.6 s (the pace is a ceiling)
    assert elapsed >= 0.55


def test_frames_are_rasters_in_the_figures_colours():
    kind = np.zeros((3, 2), np.uint8)
    kind[0, 0] = KIND_NAMES.index("tumor")
    kind[1, 0] = KIND_NAMES.index("tumor")
    kind[2, 1] = KIND_NAMES.index("t_cell")
    clone = np.zeros_like(kind)
    clone[1, 0] = 1
    cat = render.categories(kind, clone)
    image = render.rgba(cat)
    assert image.dtype == np.uint32 and image.shape == (2, 3)   # rows = y, columns = x

    def hex_of(v):
        b = int(v).to_bytes(4, "little")
        return "#{:02x}{:02x}{:02x}".format(*b[:3])
    assert hex_of(image[0, 0]) == KIND_COLOURS["tumor"]
    assert hex_of(image[0, 1]) == KIND_COLOURS["tumor_resistant"]
    assert hex_of(image[1, 2]) == KIND_COLOURS["t_cell"]
    assert hex_of(image[1, 0]) == mc.to_hex(KIND_COLOURS["empty"])
    # a field overlay paints empty sites only
    field = np.arange(6, dtype=float).reshape(3, 2)
    over = render.rgba(cat, field)
    assert over[0, 0] == image[0, 0] and over[1, 0] != image[1, 0]
    # immune-escape variants (clone bit 2 here) in their own colour unless also resistant
    clone[0, 0] = 2
    escape = render.rgba(render.categories(kind, clone, escape_bit=2))
    assert hex_of(escape[0, 0]) == KIND_COLOURS["tumor_escape"]
    assert hex_of(escape[0, 1]) == KIND_COLOURS["tumor_resistant"]
    assert render.rgba(render.categories(np.zeros((4, 5, 6), np.uint8),
                                         np.zeros((4, 5, 6), np.uint8))).shape == (5, 4)


def _explore(*args, hide_bokeh=False):
    code = "import sys\n"
    if hide_bokeh:
        code += ("import importlib.util\nreal = importlib.util.find_spec\n"
                 "importlib.util.find_spec = lambda n, *a: None if n == 'bokeh' "
                 "else real(n, *a)\n")
    code += f"import simulator.cli as c\nsys.exit(c.main(['explore', *{list(args)!r}]))"
    return subprocess.run(cwd=ROOT, args=[sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_explore_without_bokeh_names_the_extra():
    result = _explore(hide_bokeh=True)
    assert result.returncode == 2
    assert result.stderr.strip() == ("tumorsim: error: tumorsim explore needs the 'explore' "
                                     "extra (Bokeh): pip install 'tumorsim[explore]'")


def test_explore_bad_port_is_one_line():
    result = _explore("--port", "70000")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--port: must be 0-65535" in result.stderr
