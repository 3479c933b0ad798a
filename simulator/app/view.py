"""The explorer's page: a Bokeh document over :mod:`.form`, :mod:`.session` and :mod:`.render`.

Callbacks only move values between widgets and those modules: a widget change updates the
:class:`~.form.Form` (validated by the scenario loader, as the CLI validates), a valid form
is turned into an :class:`~.session.Exploration` on a worker thread ahead of time (so Run
starts at once), and a periodic callback (every ``TICK_MS``) draws whatever the
:class:`~.session.Player` published last: the lattice of each arm as one RGBA raster
(``image_rgba``), new records streamed onto the curves, dose marks on their own strip.
"""
from __future__ import annotations

import base64
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (Button, Checkbox, ColumnDataSource, CustomJS, Div, FactorRange,
                          FileInput, Legend, LegendItem, Range1d, Select, Slider, Span,
                          TabPanel, Tabs, TextInput)
from bokeh.core.property.descriptors import UnsetValueError
from bokeh.plotting import figure

from simulator import scenario as scenario_mod
from simulator.app import form as form_mod
from simulator.app import render
from simulator.app.lessons import LESSONS, lesson
from simulator.app.session import Exploration, Player
from simulator.output.plotting import KIND_COLOURS
from simulator.output.runfile import FIELD_UNITS
from simulator.schema import ScenarioError

TICK_MS = 50
ARM_NAMES = ("A", "B")
ARM_DASH = {"A": "solid", "B": "dashed"}
SPEEDS = {"2 days/s": 2.0, "5 days/s": 5.0, "10 days/s": 10.0, "20 days/s": 20.0,
          "50 days/s": 50.0, "as fast as possible": None}
DEFAULT_SPEED = "20 days/s"
PLOT_WIDTH = 440
_DRUG_FIELD_TITLES = {"start_day": "start (d)", "every_days": "every (d)",
                      "dose_mg": "dose (mg)", "count": "# doses", "on_days": "on (d)",
                      "off_days": "off (d)"}
_STYLE = """
:host { font-family: system-ui, sans-serif; }
"""


def _cls(*names) -> list[str]:
    return [f"ts-{n}".replace(".", "-").replace("_", "-") for n in names]


def _key_class(key: str) -> str:
    return key.split(".")[-1]


class DrugWidgets:
    """One drug's regimen row (dose block and rule) for one arm."""

    def __init__(self, arm: str, name: str, drugs: list[str], on_change):
        tag = f"{arm.lower()}-{name}"
        self.name = name
        self.given = Checkbox(label=name, css_classes=_cls(f"{tag}-given"), width=150)
        self.inputs = {k: TextInput(title=t, width=72, css_classes=_cls(f"{tag}-{k}"))
                       for k, t in _DRUG_FIELD_TITLES.items()}
        self.rule = Select(title="rule", options=[("none", "none"),
                                                  ("adaptive", "adaptive (pause/resume)"),
                                                  ("progression", "start at progression")],
                           value="none", width=150, css_classes=_cls(f"{tag}-rule"))
        self.pause = TextInput(title="pause below (× start)", width=140,
                               css_classes=_cls(f"{tag}-pause"))
        self.resume = TextInput(title="resume above (× start)", width=140,
                                css_classes=_cls(f"{tag}-resume"))
        self.after = Select(title="after drug (switch)", options=[""] + [d for d in drugs
                                                                    if d != name],
                            value="", width=120, css_classes=_cls(f"{tag}-after"))
        self.layout = column(row(self.given, *self.inputs.values()),
                             row(self.rule, self.pause, self.resume, self.after),
                             styles={"border-bottom": "1px solid #ddd", "padding": "2px"})
        self.given.on_change("active", lambda attr, old, new: on_change())
        for w in (*self.inputs.values(), self.pause, self.resume):
            w.on_change("value", lambda attr, old, new: on_change())
        for w in (self.rule, self.after):
            w.on_change("value", lambda attr, old, new: on_change())

    def show(self, f: form_mod.DrugForm):
        self.given.active = f.given
        for k, w in self.inputs.items():
            w.value = getattr(f, k)
        self.rule.value = f.rule
        self.pause.value, self.resume.value = f.pause_below, f.resume_above
        self.after.value = f.after if f.after in self.after.options else ""

    def read(self) -> form_mod.DrugForm:
        return form_mod.DrugForm(self.given.active, **{k: w.value for k, w in
                                                       self.inputs.items()},
                                 rule=self.rule.value, pause_below=self.pause.value,
                                 resume_above=self.resume.value, after=self.after.value)


class ExplorerView:
    """One browser session: widgets, plots and the exploration they drive."""

    def __init__(self, doc, *, save_dir: Path, threads: int = 1):
        self.doc = doc
        self.save_dir = Path(save_dir)
        self.threads = threads
        self.jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tumorsim-build")
        self.saves = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tumorsim-save")
        self.upload_dir = Path(tempfile.mkdtemp(prefix="tumorsim-explore-"))
        self.syncing = False
        self._uploaded = None
        self.form = form_mod.Form.of_file(scenario_mod.library_dir()
                                          / scenario_mod.DEFAULT_SCENARIO)
        self.exploration: Exploration | None = None
        self.player: Player | None = None
        self.built_form = None
        self.build = None            # (form, future) being prepared
        self.play_when_ready = False
        self.save_jobs: list = []
        self.shown_version = -1
        self.sent = [0, 0]
        self.doses_sent = [0, 0]
        self.replay_day: float | None = None
        self.frames_drawn = 0
        self._widgets()
        self._plots()
        self.root = self._layout()
        self._sync_widgets()
        self._form_changed()
        doc.add_root(self.root)
        doc.title = "tumorsim explorer"
        doc.add_periodic_callback(self.tick, TICK_MS)
        doc.on_session_destroyed(lambda context: self.close())

    # ------------------------------------------------------------------ widgets
    def _widgets(self):
        self.lesson = Select(title="Guided lesson", value="",
                             options=[("", "(none: free exploration)")]
                             + [(l.key, l.title) for l in LESSONS],
                             css_classes=_cls("lesson"), width=340)
        self.lesson_text = Div(text="", width=340, css_classes=_cls("lesson-text"))
        library = sorted(p.name for p in scenario_mod.library_dir().glob("*.toml"))
        self.scenario = Select(title="Scenario (library)", value=scenario_mod.DEFAULT_SCENARIO,
                               options=library, css_classes=_cls("scenario"), width=340)
        self.upload = FileInput(accept=".toml", title="or open your own scenario file",
                                css_classes=_cls("upload"), width=340)
        self.values = {key: TextInput(title=form_mod.label(key), width=380,
                                      css_classes=_cls("value", _key_class(key)))
                       for key in (*form_mod.BIOLOGY, *form_mod.RUN)}
        self.compare = Checkbox(label="compare with a second regimen (B) on the same tumour",
                                css_classes=_cls("compare"))
        self.regimen_cols = [column(), column()]
        self.drug_widgets: list[dict[str, DrugWidgets]] = [{}, {}]
        self.regimen_tabs = Tabs(tabs=[TabPanel(child=self.regimen_cols[0], title="Regimen A"),
                                       TabPanel(child=self.regimen_cols[1], title="Regimen B")],
                                 width=600)
        self.message = Div(text="", width=600, css_classes=_cls("message"))
        self.command = Div(text="", width=900, css_classes=_cls("command"))
        self.run_button = Button(label="▶ Run", button_type="success", width=90,
                                 css_classes=_cls("run"))
        self.step_button = Button(label="Step +1 day", width=100, css_classes=_cls("step"))
        self.reset_button = Button(label="Reset", width=70, css_classes=_cls("reset"))
        self.replay_button = Button(label="Replay", width=80, css_classes=_cls("replay"))
        self.speed = Select(title="", value=DEFAULT_SPEED, options=list(SPEEDS), width=150,
                            css_classes=_cls("speed"))
        self.field = Select(title="", value="none", options=["none"], width=170,
                            css_classes=_cls("field"))
        self.save_name = TextInput(value="my_regimen", width=130, css_classes=_cls("save-name"))
        self.save_scenario_button = Button(label="Save scenario (.toml)", width=160,
                                           css_classes=_cls("save-scenario"))
        self.save_run_button = Button(label="Save run (.h5)", width=120,
                                      css_classes=_cls("save-run"))
        self.status = Div(text="", width=900, css_classes=_cls("status"))
        self.day_slider = Slider(start=0, end=1, value=0, step=0.25, title="day (drag to replay)",
                                 width=900, css_classes=_cls("day"))
        swatches = "".join(f"<span style='display:inline-block;width:11px;height:11px;"
                           f"background:{c};border:1px solid #999;margin:0 3px 0 10px'></span>"
                           f"{label}" for label, c in render.legend())
        self.legend = Div(text=f"<div style='font-size:12px'>{swatches}</div>", width=900)

        self.lesson.on_change("value", self._on_lesson)
        self.scenario.on_change("value", self._on_scenario)
        # Bokeh sets value, then filename (one message, one callback each): react to both,
        # once per (file name, content)
        self.upload.on_change("value", self._on_upload)
        self.upload.on_change("filename", self._on_upload)
        for w in self.values.values():
            w.on_change("value", lambda attr, old, new: self._on_form())
        self.compare.on_change("active", lambda attr, old, new: self._on_form())
        self.run_button.on_click(self._on_run)
        self.step_button.on_click(self._on_step)
        self.reset_button.on_click(self._on_reset)
        self.replay_button.on_click(self._on_replay)
        self.speed.on_change("value", self._on_speed)
        self.field.on_change("value", self._on_field)
        self.save_scenario_button.on_click(self._on_save_scenario)
        self.save_run_button.on_click(self._on_save_run)
        self.day_slider.on_change("value", self._on_slider)

    def _plots(self):
        self.images, self.lattices = [], []
        for name in ARM_NAMES:
            # x = -1 marks the placeholder: no lattice frame yet
            src = ColumnDataSource(data=dict(image=[np.zeros((1, 1), np.uint32)], x=[-1.0],
                                             y=[0.0], dw=[1.0], dh=[1.0]))
            # frames that reach the browser, counted there (tests and benchmarks read it);
            # a frame drawn before the page connected arrives with the document itself
            src.js_on_change("data", CustomJS(code="""
                window.tumorsimFrames = (window.tumorsimFrames || 0) + 1;
                window.tumorsimLastFrame = performance.now();"""))
            self.doc.js_on_event("document_ready", CustomJS(args=dict(src=src), code="""
                if (src.data.x[0] >= 0)
                    window.tumorsimFrames = Math.max(window.tumorsimFrames || 0, 1);"""))
            fig = figure(width=PLOT_WIDTH, height=PLOT_WIDTH, match_aspect=True,
                         x_range=Range1d(0, 1), y_range=Range1d(0, 1),
                         tools="pan,wheel_zoom,reset,save", title=f"Arm {name}",
                         x_axis_label="x (mm)", y_axis_label="y (mm)",
                         css_classes=_cls(f"lattice-{name.lower()}"))
            fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh", source=src)
            self.images.append(src)
            self.lattices.append(fig)
        self.curves = [ColumnDataSource(data=self._empty_curves()) for _ in ARM_NAMES]
        self.burden = figure(width=PLOT_WIDTH, height=260, title="Tumour burden",
                             x_range=Range1d(0, 1),
                             x_axis_label="time (days)", y_axis_label="tumour cells",
                             tools="pan,wheel_zoom,box_zoom,reset,save",
                             css_classes=_cls("burden"))
        self.share = figure(width=PLOT_WIDTH, height=260, x_range=self.burden.x_range,
                            y_range=Range1d(-0.02, 1.02),
                            title="Clone composition: resistant share of the tumour",
                            x_axis_label="time (days)", y_axis_label="resistant / all tumour cells",
                            tools="pan,wheel_zoom,reset,save", css_classes=_cls("share"))
        self.immune = figure(width=PLOT_WIDTH, height=260, x_range=self.burden.x_range,
                             title="Immune cells", x_axis_label="time (days)",
                             y_axis_label="cells", tools="pan,wheel_zoom,box_zoom,reset,save",
                             css_classes=_cls("immune"))
        self.doses = [ColumnDataSource(data=dict(day=[], lane=[])) for _ in ARM_NAMES]
        self.dose_strip = figure(width=PLOT_WIDTH, height=110, x_range=self.burden.x_range,
                                 y_range=FactorRange(factors=["A: (no drug)"]),
                                 title="Doses given", tools="", toolbar_location=None,
                                 css_classes=_cls("doses"))
        lines = {}   # (figure, label) -> renderers of both arms: one legend entry each
        for a, name in enumerate(ARM_NAMES):
            src, dash = self.curves[a], ARM_DASH[name]
            for fig, y, colour, label, width in (
                    (self.burden, "tumor_cells", "black", "all tumour cells", 2),
                    (self.burden, "tumor_sensitive", KIND_COLOURS["tumor"], "sensitive", 1.5),
                    (self.burden, "tumor_resistant", KIND_COLOURS["tumor_resistant"],
                     "resistant", 1.5),
                    (self.share, "resistant_share", KIND_COLOURS["tumor_resistant"],
                     "resistant share", 2),
                    (self.immune, "t_cells", KIND_COLOURS["t_cell"], "T cells", 1.5),
                    (self.immune, "suppressive_cells", KIND_COLOURS["suppressive"],
                     "suppressive cells", 1.5)):
                r = fig.line("time_days", y, source=src, color=colour, line_dash=dash,
                             line_width=width)
                lines.setdefault((fig, label), []).append(r)
            self.dose_strip.scatter("day", "lane", source=self.doses[a], marker="triangle",
                                    size=7, color="#555555" if a == 0 else "#c44e52")
        for fig in (self.burden, self.share, self.immune):
            items = [LegendItem(label=label, renderers=rs) for (f, label), rs in lines.items()
                     if f is fig]
            fig.add_layout(Legend(items=items, location="top_left", label_text_font_size="9px",
                                  background_fill_alpha=0.6, click_policy="hide"))
        for fig, what in ((self.burden, "Tumour burden"), (self.share, "Resistant share of "
                          "the tumour"), (self.immune, "Immune cells")):
            fig.title.text = f"{what} (A solid, B dashed)"
        self.now = [Span(location=0, dimension="height", line_color="#777", line_dash="dotted")
                    for _ in range(4)]
        for fig, span in zip((self.burden, self.share, self.immune, self.dose_strip), self.now):
            fig.add_layout(span)
        self.start_spans = [Span(location=0, dimension="height", line_color="#555",
                                 line_dash="dashed") for _ in range(3)]
        for fig, span in zip((self.burden, self.share, self.immune), self.start_spans):
            fig.add_layout(span)

    @staticmethod
    def _empty_curves():
        return dict(time_days=[], tumor_cells=[], tumor_sensitive=[], tumor_resistant=[],
                    t_cells=[], suppressive_cells=[], resistant_share=[])

    def _layout(self):
        title = Div(text="<h2 style='margin:0'>tumorsim explorer</h2><div style='color:#555'>"
                         "agent-based tumour-immune lattice; change one thing, run, watch</div>",
                    width=340)
        biology = [self.values[k] for k in form_mod.BIOLOGY]
        run_keys = [self.values[k] for k in form_mod.RUN]
        side = column(title, self.lesson, self.lesson_text, self.scenario, self.upload,
                      Div(text="<b>Biology</b> (shared by both arms)"),
                      *biology, Div(text="<b>Run</b> (shared)"), *run_keys,
                      width=400)
        controls = row(self.run_button, self.step_button, self.reset_button,
                       self.replay_button, Div(text="speed", width=40), self.speed,
                       Div(text="field overlay", width=80), self.field)
        saves = row(Div(text="save as", width=50), self.save_name,
                    self.save_scenario_button, self.save_run_button)
        main = column(controls, self.status, row(*self.lattices), self.legend,
                      self.day_slider, row(self.burden, self.share),
                      row(self.immune, self.dose_strip),
                      Div(text="<b>Regimens</b> (days count from the treatment start; blank = "
                               "not set; on/off = intermittent cycles)"),
                      self.compare, self.regimen_tabs, self.message, self.command, saves)
        return row(side, main, stylesheets=[_STYLE])

    # ------------------------------------------------------------------ form <-> widgets
    def _sync_widgets(self):
        """Show ``self.form`` in the widgets (without reacting to the changes)."""
        self.syncing = True
        try:
            f = self.form
            for key, w in self.values.items():
                w.value = f.values.get(key, "")
            drugs = list(f.arms[0])
            for a, name in enumerate(ARM_NAMES):
                widgets = {d: DrugWidgets(name, d, drugs, self._on_form) for d in drugs}
                self.drug_widgets[a] = widgets
                self.regimen_cols[a].children = ([w.layout for w in widgets.values()] or
                                                 [Div(text="this scenario declares no drugs")])
                regimen = f.arms[a] if a < len(f.arms) else f.arms[0]
                for d, w in widgets.items():
                    w.show(regimen[d])
            self.compare.active = len(f.arms) > 1
            self.regimen_tabs.tabs[1].disabled = len(f.arms) < 2
        finally:
            self.syncing = False

    def _read_form(self) -> form_mod.Form:
        f = self.form
        for key, w in self.values.items():
            f = f.with_value(key, w.value)
        f = f.with_arms(2 if self.compare.active else 1)
        for a in range(len(f.arms)):
            for name, w in self.drug_widgets[a].items():
                f = f.with_drug(a, name, **vars(w.read()))
        return f

    def _on_form(self):
        if self.syncing:
            return
        was_two = len(self.form.arms) > 1
        self.form = self._read_form()
        if (len(self.form.arms) > 1) and not was_two:   # B starts as a copy of A
            self.syncing = True
            for name, w in self.drug_widgets[1].items():
                w.show(self.form.arms[1][name])
            self.syncing = False
        self.regimen_tabs.tabs[1].disabled = len(self.form.arms) < 2
        self._form_changed()

    def _scenarios(self):
        """The form's scenarios, or None after showing the CLI's line for a bad value."""
        try:
            return self.form.scenarios()
        except ScenarioError as exc:
            self._say(form_mod.error_line(exc), error=True)
            self.command.text = ""
            return None

    def _form_changed(self):
        """Validate; a valid form is prepared (built) at once, so Run starts without delay."""
        if self._scenarios() is None:
            return
        commands = "<br>".join(f"<code>{_html(self.form.command_line(a))}</code>"
                               for a in range(len(self.form.arms)))
        self.command.text = f"<div style='font-size:12px;color:#444'>equivalent: " \
                            f"{commands}</div>"
        self._say("ok: press Run")
        self._prepare()

    def _prepare(self, play: bool = False):
        if self.player is not None:
            self.player.stop()
        self.player = None
        self.replay_day = None
        self.play_when_ready = play
        form, threads = self.form, self.threads

        def build():
            from simulator import engine as engine_mod
            engine_mod.set_threads(threads)
            return Exploration(form.scenarios())
        self.build = (form, self.jobs.submit(build))

    def _adopt(self, exploration: Exploration):
        self.exploration = exploration
        self.built_form = self.build[0]
        self.build = None
        self.player = Player(exploration, days_per_second=SPEEDS[self.speed.value],
                             field_name=None if self.field.value == "none" else self.field.value,
                             threads=self.threads)
        self.shown_version = -1
        self.sent = [0, 0]
        self.doses_sent = [0, 0]
        n = len(exploration.arms)
        for a in range(2):
            self.curves[a].data = self._empty_curves()
            self.doses[a].data = dict(day=[], lane=[])
            self.lattices[a].visible = a < n
        sim = exploration.scenarios[0].simulation
        nx, ny = sim.dimensions[0] * sim.spacing_um / 1000, sim.dimensions[1] * sim.spacing_um / 1000
        for fig in self.lattices:
            fig.x_range.start, fig.x_range.end = 0, nx
            fig.y_range.start, fig.y_range.end = 0, ny
        for a, fig in enumerate(self.lattices[:n]):
            fig.title.text = f"Arm {ARM_NAMES[a]}: {form_mod.summary(self.built_form.arms[a])}"
        self.burden.x_range.start, self.burden.x_range.end = 0, sim.duration_days
        for span in self.start_spans:
            span.location = sim.treatment_start_day
        self.day_slider.end = sim.duration_days
        self.day_slider.step = sim.dt_hours / 24.0
        lanes = [f"{ARM_NAMES[a]}: {d}" for a in range(n)
                 for d, dw in self.built_form.arms[a].items() if dw.given]
        self.dose_strip.y_range.factors = lanes or ["(no drug given)"]
        fields = exploration.field_names()
        self.syncing = True
        self.field.options = ["none"] + fields
        if self.field.value not in self.field.options:
            self.field.value = "none"
        self.syncing = False
        if self.play_when_ready:
            self.player.play()
            self.play_when_ready = False

    # ------------------------------------------------------------------ callbacks
    def _on_lesson(self, attr, old, key):
        if not key or self.syncing:
            self.lesson_text.text = ""
            return
        l = lesson(key)
        library = scenario_mod.library_dir()
        self.form = form_mod.Form.of_file(library / l.arm_a,
                                          library / l.arm_b if l.arm_b else None)
        self.syncing = True
        self.scenario.value = l.arm_a
        self.syncing = False
        if l.field:
            self.syncing = True
            self.field.options = ["none", l.field]
            self.field.value = l.field
            self.syncing = False
        self._sync_widgets()
        self._form_changed()
        # last: the browser receives the changes in order, so the lesson's text appears
        # once its arms are in the widgets
        self.lesson_text.text = (f"<div style='background:#f5f7fb;padding:6px;"
                                 f"border-left:3px solid #2f6db5'><b>{l.title}</b>{l.text}</div>")

    def _on_scenario(self, attr, old, name):
        if self.syncing:
            return
        path = self.upload_dir / name if (self.upload_dir / name).exists() else \
            scenario_mod.library_dir() / name
        self._open(path)

    def _open(self, path):
        try:
            self.form = form_mod.Form.of_file(path)
        except ScenarioError as exc:
            self._say(form_mod.error_line(exc), error=True)
            self.command.text = ""
            return
        self.syncing = True
        self.lesson.value = ""
        self.lesson_text.text = ""
        self.syncing = False
        self._sync_widgets()
        self._form_changed()

    def _on_upload(self, attr, old, new):
        try:    # unset (not empty) until the browser has sent both
            name, value = Path(self.upload.filename).name, self.upload.value
        except UnsetValueError:
            return
        if not value or not name or (name, value) == self._uploaded:
            return
        self._uploaded = (name, value)
        path = self.upload_dir / name
        path.write_bytes(base64.b64decode(value))
        self.syncing = True
        if name not in self.scenario.options:
            self.scenario.options = [*self.scenario.options, name]
        self.scenario.value = name
        self.syncing = False
        self._open(path)

    def _ready(self) -> bool:
        return (self.player is not None and self.built_form == self.form
                and not self.exploration.done)

    def _on_run(self):
        if self.player is not None and self.player.running:
            self.player.pause()
            return
        self.replay_day = None
        if self._ready():
            self.player.play()
        elif self.build is not None and self.build[0] == self.form:
            self.play_when_ready = True
        else:
            if self._scenarios() is not None:
                self._prepare(play=True)

    def _on_step(self):
        self.replay_day = None
        if self._ready():
            self.player.pause()
            self.player.step(max(1, round(1.0 / self.exploration.dt_days)))

    def _on_reset(self):
        self._prepare()

    def _on_replay(self):
        if self.exploration is None:
            return
        if self.player is not None:
            self.player.pause()
        self.replay_day = 0.0

    def _on_speed(self, attr, old, value):
        if self.player is not None:
            self.player.days_per_second = SPEEDS[value]

    def _on_field(self, attr, old, value):
        if self.player is not None and not self.syncing:
            self.player.set_field(None if value == "none" else value)

    def _on_slider(self, attr, old, value):
        if self.syncing or self.exploration is None:
            return
        if self.player is not None:
            self.player.pause()
        self.replay_day = None
        self._show_replay(float(value))

    def _on_save_scenario(self):
        scenarios = self._scenarios()
        if scenarios is None:
            return
        written = []
        for a, s in enumerate(scenarios):
            path = self._save_path(a, len(scenarios), ".toml")
            header = (f"# saved by tumorsim explore (arm {ARM_NAMES[a]}); equivalent to:\n"
                      f"#   {self.form.command_line(a)}\n")
            tmp = path.with_name(path.name + ".partial")
            tmp.write_text(header + s.to_toml())
            tmp.replace(path)
            written.append(str(path))
        self._say("saved scenario: " + ", ".join(written) + " (run it with tumorsim run "
                  + (f"or compare both with tumorsim compare {written[0]} {written[1]}"
                     if len(written) > 1 else "") + ")")

    def _on_save_run(self):
        from simulator.study import runner
        scenarios = self._scenarios()
        if scenarios is None:
            return
        threads = self.threads
        for a, s in enumerate(scenarios):
            path = self._save_path(a, len(scenarios), ".h5")
            # the whole run, from day 0: deterministic, so the numbers are those on screen
            self.save_jobs.append((path, self.saves.submit(
                runner.run_to_file, s, path, threads=threads, arm=ARM_NAMES[a])))
        self._say("saving run(s): " + ", ".join(str(p) for p, _ in self.save_jobs[-len(scenarios):]))

    def _save_path(self, arm: int, n: int, suffix: str) -> Path:
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.save_name.value) \
            or "explore"
        if n > 1:
            stem += f"_{ARM_NAMES[arm]}"
        self.save_dir.mkdir(parents=True, exist_ok=True)
        return self.save_dir / f"{stem}{suffix}"

    def _say(self, text: str, error: bool = False):
        colour = "#b00020" if error else "#225522"
        self.message.text = f"<div style='color:{colour};font-family:monospace'>{_html(text)}</div>"

    # ------------------------------------------------------------------ drawing
    def tick(self):
        if self.build is not None and self.build[1].done():
            future = self.build[1]
            if future.exception() is not None:
                exc = future.exception()
                self.build = None
                self._say(form_mod.error_line(exc) if isinstance(exc, ScenarioError)
                          else f"tumorsim: error: {exc}", error=True)
            elif self.build[0] == self.form:
                self._adopt(future.result())
            else:
                self.build = None
        self._check_saves()
        if self.exploration is None or self.player is None:
            return
        if self.replay_day is not None:
            self._replay_tick()
            return
        published = self.player.latest()
        if published is None or published.version == self.shown_version:
            return
        self.shown_version = published.version
        self._draw(published)

    def _draw(self, p):
        ex = self.exploration
        for a in range(len(p.frames)):
            self._show_image(a, render.rgba(p.frames[a], p.fields[a]))
        histories = [ex.history(a) for a in range(len(p.frames))]
        for a, h in enumerate(histories):
            r = h.rows(self.sent[a], p.records[a])
            if r["time_days"]:
                total = np.asarray(r["tumor_cells"], float)
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(total > 0, np.asarray(r["tumor_resistant"]) / total, np.nan)
                r["resistant_share"] = share.tolist()
                self.curves[a].stream(r)
                self.sent[a] = p.records[a]
            new = ex.arms[a].doses()[self.doses_sent[a]:p.doses[a]]
            if new:
                self.doses[a].stream(dict(day=[d for d, _ in new],
                                          lane=[f"{ARM_NAMES[a]}: {drug}" for _, drug in new]))
                self.doses_sent[a] = p.doses[a]
        for span in self.now:
            span.location = p.day
        self.syncing = True
        self.day_slider.value = p.day
        self.syncing = False
        self._status(p.day, histories, p)

    def _show_image(self, a: int, image: np.ndarray):
        sim = self.exploration.scenarios[0].simulation
        self.images[a].data = dict(image=[image], x=[0.0], y=[0.0],
                                   dw=[sim.dimensions[0] * sim.spacing_um / 1000],
                                   dh=[sim.dimensions[1] * sim.spacing_um / 1000])
        self.frames_drawn += 1

    def _status(self, day, histories, p=None):
        ex = self.exploration
        start = ex.scenarios[0].simulation.treatment_start_day
        parts = [f"<b>day {day:.2f}</b> ({day - start:+.2f} d from treatment start)"]
        i = None
        for a, h in enumerate(histories):
            n = p.records[a] if p is not None else len(h)
            if not n:
                continue
            i = min(n - 1, max(0, int(np.searchsorted(h.time_days[:n], day + 1e-9)) - 1))
            s = h.series
            total, res = int(s["tumor_cells"][i]), int(s["tumor_resistant"][i])
            share = f"{100 * res / total:.0f}% resistant" if total else "no tumour"
            parts.append(f"<span class='arm-{ARM_NAMES[a]}'>{ARM_NAMES[a]}: "
                         f"<span class='tumor-cells'>{total}</span> tumour cells ({share}), "
                         f"{int(s['t_cells'][i])} T cells, {int(s['suppressive_cells'][i])} "
                         f"suppressive</span>")
        state = ""
        if p is not None:
            state = "finished" if p.done else ("running" if p.running else "paused")
            if self.player is not None and self.player.error is not None:
                state = f"error: {self.player.error}"
        if self.field.value != "none" and p is not None and p.fields and p.fields[0] is not None:
            f = p.fields[0]
            parts.append(f"overlay {self.field.value}: {np.nanmin(f):.3g}–{np.nanmax(f):.3g} "
                         f"{FIELD_UNITS.get(self.field.value, '')} (viridis, on empty sites)")
        self.status.text = (" · ".join(parts) + f" · <span class='state'>{state}</span>")
        self.run_button.label = "❚❚ Pause" if p is not None and p.running else "▶ Run"

    def _show_replay(self, day: float):
        ex = self.exploration
        histories = [ex.history(a) for a in range(len(ex.arms))]
        frames = [h.frame_at(day, ex.dt_days) for h in histories]
        for a, fr in enumerate(frames):
            if fr is not None:
                self._show_image(a, render.rgba(fr[1]))
        for span in self.now:
            span.location = day
        self._status(day, histories)

    def _replay_tick(self):
        ex = self.exploration
        end = ex.day
        self.replay_day = min(end, self.replay_day + max(ex.dt_days, end / 200.0))
        self._show_replay(self.replay_day)
        self.syncing = True
        self.day_slider.value = self.replay_day
        self.syncing = False
        if self.replay_day >= end:
            self.replay_day = None

    def _check_saves(self):
        for path, future in list(self.save_jobs):
            if not future.done():
                continue
            self.save_jobs.remove((path, future))
            exc = future.exception()
            if exc is not None:
                self._say(f"tumorsim: error: {exc}", error=True)
            else:
                r = future.result()
                final = int(r.endpoints.final_tumor_cells)
                self._say(f"saved run: {path}" + (f" (final tumour cells {final})"
                                                  if final is not None else ""))

    def close(self):
        if self.player is not None:
            self.player.stop()
        self.jobs.shutdown(wait=False, cancel_futures=True)
        self.saves.shutdown(wait=False, cancel_futures=True)


def _html(text: str) -> str:
    import html
    return html.escape(text)


def make_document(doc, *, save_dir: Path, threads: int = 1) -> ExplorerView:
    return ExplorerView(doc, save_dir=save_dir, threads=threads)


__all__ = ["ExplorerView", "make_document"]
