"""Figures and animations from small synthetic run files and a synthetic study directory.

The files are written here with h5py following the run-file layout (simulator/io.py) and the
study layout (simulator/study_outputs.py), with invented but plausible dynamics: a control
arm, a fast targeted arm that relapses through a resistant clone, a slow immune arm and a
combination. Optional content (drug series, dose tables, core/margin T cells, clone and
field snapshots, 3D lattices) is switched on and off per file.
"""
from __future__ import annotations

import csv
import math
import time

import h5py
import numpy as np
import pytest

from kernels.lattice import KIND_NAMES
from simulator.analysis import endpoints as ep
from simulator.output import plotting
from simulator.output.animate import animate
from simulator.output.runfile import OutputError

START = 20.0
ARMS = ("control", "targeted", "immune", "combination")
#: per arm: (sensitive kill rate /day, resistant kill rate /day, drugs given)
DYNAMICS = {"control": (0.0, 0.0, ()), "targeted": (0.16, 0.0, ("tki",)),
            "immune": (0.035, 0.035, ("anti_pd1",)),
            "combination": (0.18, 0.03, ("tki", "anti_pd1"))}
STACKED = ("tumor_cells", "tumor_sensitive", "tumor_resistant", "t_cells",
           "suppressive_cells", "necrotic_cells")


# ------------------------------------------------------------------ synthetic files
def _dose_days(drug, replicate, end):
    if drug == "tki":
        days = np.arange(START, end, 1.0)
        if replicate % 3 == 1:          # an adaptive-like schedule: some replicates pause
            days = days[(days < 40) | (days > 55)]
        return days
    return np.arange(START, end, 14.0)


def _concentration(t, days, half_life_days=0.5, per_dose=2.0):
    c = np.zeros_like(t)
    for d in days:
        after = t >= d
        c[after] += per_dose * np.exp(-np.log(2) * (t[after] - d) / half_life_days)
    return c


def synthetic_series(arm, replicate, t):
    rng = np.random.default_rng(replicate)      # common across arms, as in a study
    vary = rng.lognormal(0.0, 0.35, size=3)
    kill_s, kill_r, drugs = DYNAMICS[arm]
    growth = 0.07 * vary[0]
    pre = np.minimum(t, START)
    post = np.maximum(t - START, 0.0)
    sens = 300 * np.exp(growth * pre) * np.exp((growth * 0.6 - kill_s * vary[1]) * post)
    res = 3 * np.exp(growth * pre) * np.exp((0.05 * vary[2] - kill_r) * post)
    sens, res = np.floor(np.minimum(sens, 2e4)), np.floor(np.minimum(res, 2e4))
    immune_on = "anti_pd1" in drugs
    influx = (200 if immune_on else 20) * (1 - np.exp(-post / 15))
    t_cells = np.floor(np.where(t > START, 40 + influx, 40))
    series = dict(tumor_cells=sens + res, tumor_sensitive=sens, tumor_resistant=res,
                  t_cells=t_cells, suppressive_cells=np.floor(30 + 0.01 * (sens + res)),
                  necrotic_cells=np.floor(0.02 * (sens + res)))
    doses = {d: _dose_days(d, replicate, t[-1]) for d in drugs}
    return series, doses


def _frame(n_tumor, n_res, n_t, shape, rng, scale):
    """A disc of tumour (resistant cells in a sector), T cells around it, two vessels."""
    grid = np.zeros(shape, np.uint8)
    clone = np.zeros(shape, np.uint8)
    centre = np.array(shape) / 2
    coords = np.indices(shape).reshape(len(shape), -1).T + 0.5
    dist = np.linalg.norm(coords - centre, axis=1).reshape(shape)
    radius = math.sqrt(n_tumor / math.pi) * scale
    tumour = dist <= radius
    grid[tumour] = KIND_NAMES.index("tumor")
    angle = np.arctan2(*(coords - centre).T[:2]).reshape(shape)
    res_share = n_res / max(n_tumor, 1)
    clone[tumour & (angle < -np.pi + 2 * np.pi * res_share)] = 1
    grid[tumour & (rng.random(shape) < 0.03)] = KIND_NAMES.index("dead")
    ring = (dist > radius) & (dist <= radius + 3) & (rng.random(shape) < min(1.0, n_t / 400))
    grid[ring] = KIND_NAMES.index("t_cell")
    grid[(dist > radius + 3) & (rng.random(shape) < 0.01)] = KIND_NAMES.index("suppressive")
    grid.flat[[5, grid.size - 7]] = KIND_NAMES.index("vessel")
    clone[grid != KIND_NAMES.index("tumor")] = 0
    return grid, clone


def write_run(path, arm="control", replicate=0, *, days=120.0, dt_days=0.25, shape=(40, 40),
              snapshot_every=7.0, drugs=True, doses=True, clone=True, fields=False,
              core_margin=False, snapshots=True):
    t = np.round(np.arange(0.0, days + 1e-9, dt_days), 6)
    series, dose_days = synthetic_series(arm, replicate, t)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(software_version="0+test", seed=1, replicate=replicate, arm=arm,
                       scenario_sha256="0" * 64, created="2024-01-01T00:00:00+00:00",
                       status="complete", dimensions=np.array(shape), dt_hours=dt_days * 24,
                       spacing_um=20.0, treatment_start_day=START, title="tumorsim run")
        f.create_group("provenance").create_dataset("scenario_toml", data="# synthetic",
                                                    dtype=h5py.string_dtype())
        ts = f.create_group("timeseries")
        ts["time_days"] = t
        for name, values in series.items():
            ts[name] = values.astype(np.int64)
        if core_margin:
            ts["t_cells_core"] = (series["t_cells"] * 0.3).astype(np.int64)
            ts["t_cells_margin"] = (series["t_cells"] * 0.7).astype(np.int64)
        if drugs and dose_days:
            g = ts.create_group("drug")
            for name, d in dose_days.items():
                g[name] = _concentration(t, d)
        if doses and dose_days:
            dtype = np.dtype([("step", "i8"), ("day", "f8"), ("drug", h5py.string_dtype()),
                              ("amount_mg", "f8"), ("reason", h5py.string_dtype())])
            rows = [(int(round(d / dt_days)), d, name, 100.0, "schedule")
                    for name, ds in dose_days.items() for d in ds]
            f.create_group("doses").create_dataset("table", data=np.array(rows, dtype=dtype))
        snap = f.create_group("snapshots")
        snap_days = np.unique(np.append(np.arange(0.0, days, snapshot_every), days))
        if not snapshots:
            snap_days = snap_days[:0]
        snap["time_days"] = snap_days
        rng = np.random.default_rng(replicate)
        scale = min(shape[:2]) / 2.2 / math.sqrt(max(series["tumor_cells"].max(), 1) / math.pi)
        frames = [_frame(*(series[k][np.searchsorted(t, d)] for k in
                           ("tumor_cells", "tumor_resistant", "t_cells")), shape, rng, scale)
                  for d in snap_days]
        cell_type = np.array([g for g, _ in frames], np.uint8).reshape(len(frames), *shape)
        ct = snap.create_dataset("cell_type", data=cell_type, compression="gzip",
                                 chunks=(1, *shape) if frames else None)
        ct.attrs.update(flag_values=np.arange(len(KIND_NAMES), dtype=np.uint8),
                        flag_meanings=" ".join(KIND_NAMES))
        if clone:
            snap["clone"] = np.array([c for _, c in frames], np.uint8).reshape(len(frames), *shape)
        if fields:
            oxygen = np.stack([1.0 - 0.8 * (g == KIND_NAMES.index("tumor")) for g, _ in frames])
            ds = snap.create_group("fields").create_dataset("oxygen", data=oxygen)
            ds.attrs["units"] = "mmHg"
        crit = ep.ResponseCriteria(dimensions=len(shape), spacing_um=20.0, progression_min_mm=0.0,
                                   scan_interval_days=14.0)
        e = ep.assess(t, series["tumor_cells"], series["tumor_resistant"], START, crit)
        f.create_group("summary").attrs.update(
            {k: v for k, v in e.to_dict().items() if not isinstance(v, str) or v})
    return e


def write_study(directory, arms=ARMS, replicates=4, **run_kwargs):
    """A study directory in the layout of simulator/study_outputs.py."""
    rows, series, t = [], {}, None
    for a, arm in enumerate(arms):
        for r in range(replicates):
            path = directory / "runs" / arm / f"replicate-{r:03d}.h5"
            e = write_run(path, arm, r, **run_kwargs)
            with h5py.File(path, "r") as f:
                ts = f["timeseries"]
                t = ts["time_days"][()]
                series[(a, r)] = {n: ts[n][()] for n in STACKED}
                series[(a, r)].update({f"drug_{d}": ts["drug"][d][()] for d in ts.get("drug", {})})
            rows.append(dict(arm=arm, replicate=r, seed=1,
                             path=str(path.relative_to(directory)), **e.to_dict()))
    with open(directory / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with h5py.File(directory / "study.h5", "w") as f:
        f.attrs.update(title="tumorsim study", arms=list(arms), reference_arm=arms[0],
                       replicates=replicates)
        ts = f.create_group("timeseries")
        ts["time_days"] = t
        names = sorted({n for s in series.values() for n in s})
        for name in names:
            data = np.full((len(arms), replicates, len(t)), np.nan)
            for (a, r), s in series.items():
                if name in s:
                    data[a, r] = s[name]
            ts[name] = data
        g = f.create_group("endpoints")
        for column in rows[0]:
            if column == "path":
                continue
            values = [row[column] for row in rows]
            if isinstance(values[0], str):
                g.create_dataset(column, data=np.array(values, dtype=object),
                                 dtype=h5py.string_dtype())
            elif isinstance(values[0], (bool, np.bool_)):
                g[column] = np.array(values, dtype=bool)
            else:
                g[column] = np.array(values, dtype=float)
    return directory


@pytest.fixture(scope="module")
def big_study(tmp_path_factory):
    """4 arms x 20 replicates (the size the 30 s budget is stated for)."""
    return write_study(tmp_path_factory.mktemp("study"), replicates=20)


# ------------------------------------------------------------------------ tests
def _check_written(paths, stems, formats=("png", "svg")):
    names = {p.name for p in paths}
    for stem in stems:
        for fmt in formats:
            assert f"{stem}.{fmt}" in names
    for p in paths:
        assert p.stat().st_size > 1000, p
        head = p.read_bytes()[:200]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else b"<svg" in p.read_bytes()


def test_study_figures_every_figure_png_and_svg_within_budget(big_study):
    # CPU time of this process, not wall time: on a shared machine the wall clock measures
    # the other jobs (the figures are drawn on one thread)
    t0 = time.process_time()
    paths = plotting.study_figures(big_study)
    elapsed = time.process_time() - t0
    print(f"\nstudy_figures, 4 arms x 20 replicates: {elapsed:.1f} s CPU")
    assert all(p.parent == big_study / "figures" for p in paths)
    _check_written(paths, plotting.STUDY_FIGURES)
    assert elapsed <= 30.0


def test_plot_dispatches_on_directory_and_study_file(tmp_path):
    study = write_study(tmp_path / "small", arms=ARMS[:2], replicates=3, shape=(16, 16),
                        dt_days=1.0)
    paths = plotting.plot(study / "study.h5", out_dir=tmp_path / "figs", formats=("png",))
    assert {p.name for p in paths} == {f"{s}.png" for s in plotting.STUDY_FIGURES}


def test_kaplan_meier_log_rank_against_reference(big_study):
    study = plotting.load_study(big_study)
    fig = plotting.plot_study_kaplan_meier(study)
    p = fig.logrank_pvalues
    assert set(p) == set(ARMS[1:])
    assert all(0.0 < v <= 1.0 for v in p.values())
    assert p["combination"] < 0.05          # the combination clearly delays progression
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sum("log-rank p " in text for text in legend) == len(ARMS) - 1
    e = study.endpoints
    lifelines_p = plotting.logrank_pvalues(e["progression_free_days"], e["progression_observed"],
                                           e["arm"], study.arms)
    for arm in ARMS[1:]:     # the numpy fallback is the same test
        ref, other = e["arm"] == ARMS[0], e["arm"] == arm
        numpy_p = plotting._logrank_numpy(
            e["progression_free_days"][ref], e["progression_observed"][ref],
            e["progression_free_days"][other], e["progression_observed"][other])
        assert numpy_p == pytest.approx(lifelines_p[arm], rel=1e-6)


def test_kaplan_meier_curve_matches_hand_computation():
    times, surv = plotting._km_curve(np.array([2.0, 3, 3, 5, 8]),
                                     np.array([True, True, False, True, False]))
    assert times.tolist() == [0, 2, 3, 5]
    assert surv == pytest.approx([1, 4 / 5, 4 / 5 * 3 / 4, 4 / 5 * 3 / 4 * 1 / 2])


def test_waterfall_bars_sorted_and_coloured_by_class():
    values = np.array([0.3, -0.5, np.nan, -1.0, 0.05, -0.35])
    classes = np.array(["PD", "PR", "NE", "CR", "SD", "PR"], dtype=object)
    fig = plotting.plot_waterfall(values, classes)
    ax = fig.axes[0]
    bars = list(ax.patches)
    assert len(bars) == 5
    heights = [b.get_height() for b in bars]
    assert heights == sorted(heights, reverse=True)
    assert heights == pytest.approx([30, 5, -35, -50, -100])
    expected = [plotting.RESPONSE_COLOURS[c] for c in ("PD", "SD", "PR", "PR", "CR")]
    import matplotlib.colors as mc
    assert [mc.to_hex(b.get_facecolor()) for b in bars] == expected
    refs = sorted(line.get_ydata()[0] for line in ax.lines if line.get_gid() == "recist-reference")
    assert refs == [-30, 20]
    assert "1 not evaluable" in ax.get_title()


def _dose_marker_points(ax):
    return sum(len(c.get_offsets()) for c in ax.collections if c.get_gid() == "dose-markers")


def _panels(fig):
    """(main axes, dose strip) per arm of the burden figure, in arm order."""
    axes = [a for a in fig.axes if a.get_visible()]
    return list(zip(axes[0::2], axes[1::2]))


def test_burden_marks_treatment_start_and_every_dose_day_on_a_strip(big_study):
    study = plotting.load_study(big_study)
    fig = plotting.plot_burden(study)
    panels = _panels(fig)
    assert len(panels) == len(ARMS)
    for arm, (main, strip) in zip(ARMS, panels):
        expected = sum(len(np.unique(np.concatenate([_dose_days(drug, r, 120.0)
                                                     for r in range(20)])))
                       for drug in DYNAMICS[arm][2])
        assert _dose_marker_points(strip) == expected, arm
        assert _dose_marker_points(main) == 0          # never on the cell axis
        starts = [line.get_xdata()[0] for line in main.lines
                  if line.get_gid() == "treatment-start"]
        assert starts == [START]
        lanes = [t.get_text() for t in strip.get_yticklabels()]
        assert lanes == [f"{d} dose" for d in sorted(DYNAMICS[arm][2])]
    # adaptive replicates skip days 40-55: those markers are drawn fainter
    tki = panels[1][1].collections[0]
    alpha = dict(zip(tki.get_offsets()[:, 0], tki.get_facecolors()[:, 3]))
    assert alpha[45.0] < alpha[30.0] == pytest.approx(1.0)


def test_burden_draws_every_replicate_and_medians_only_within_outcome_groups(big_study):
    study = plotting.load_study(big_study)
    fig = plotting.plot_burden(study)
    data = study.series["tumor_cells"]
    for a, (arm, (main, _)) in enumerate(zip(ARMS, _panels(fig))):
        lines = [line for line in main.lines if line.get_gid() == "replicate-trajectory"]
        assert len(lines) == 20
        groups = plotting.outcome_groups(study, arm)
        medians = [line for line in main.lines if line.get_gid() == "group-median"]
        big = [g for g in plotting.OUTCOME_COLOURS
               if sum(v == g for v in groups.values()) >= 3]
        assert len(medians) == len(big), arm
        for g, line in zip(big, medians):
            members = [r for r, v in groups.items() if v == g]
            assert np.allclose(line.get_ydata(), np.median(data[a, members], axis=0))
            import matplotlib.colors as mc
            assert mc.to_hex(line.get_color()) == plotting.OUTCOME_COLOURS[g].lower()


def test_composition_is_the_median_of_per_replicate_shares(big_study):
    study = plotting.load_study(big_study)
    fig = plotting.plot_composition(study)
    visible = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in visible] == [f"{arm} (n=20)" for arm in ARMS]
    total, res = study.series["tumor_cells"], study.series["tumor_resistant"]
    for a, axis in enumerate(visible):
        assert _dose_marker_points(axis) == 0
        median = next(line for line in axis.lines if line.get_gid() == "median-share")
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total[a] > 0, res[a] / total[a], np.nan)
        alive = np.isfinite(share).sum(axis=0) >= 10
        expected = np.full(share.shape[1], np.nan)
        expected[alive] = np.nanmedian(share[:, alive], axis=0)
        assert np.allclose(median.get_ydata(), expected, equal_nan=True)
        assert np.nanmax(median.get_ydata()) <= 1.0
    fig = plotting.plot_spider(study)
    assert sum(len(a.lines) for a in fig.axes) >= 4 * 20


def test_snapshots_show_a_progressing_and_a_responding_replicate(big_study):
    study = plotting.load_study(big_study)
    e = study.endpoints
    for arm in ARMS:
        picks = plotting.representatives(study, arm)
        rows = {int(e["replicate"][i]): i for i in study.rows(arm)}
        assert 1 <= len(picks) <= 2
        for r, why in picks:
            i = rows[r]
            if why == "progresses":
                assert e["progression_observed"][i]
            elif why == "responds":
                assert e["objective_response"][i] and not e["progression_observed"][i]
    fig = plotting.plot_study_snapshots(study)
    labels = [a.get_ylabel() for a in fig.axes if a.get_visible() and a.get_ylabel()]
    assert any("progresses" in text for text in labels)
    # columns start at the treatment start (or the last snapshot before it)
    titles = [a.get_title() for a in fig.axes if a.get_visible()]
    assert titles[0].startswith("day 14 ")      # snapshots every 7 days; start is day 20


def _swimmer_lines(fig, gid):
    return [line for axis in fig.axes for line in axis.lines if line.get_gid() == gid]


@pytest.mark.parametrize("panels", [False, True], ids=["one axes", "a panel per arm"])
def test_swimmer_markers_follow_endpoints(big_study, panels):
    """80 replicates: a panel per arm by default (over SWIMMER_ONE_PANEL_ROWS), or grouped
    in the one Axes a caller gives; either way one bar per replicate and every marker."""
    study = plotting.load_study(big_study)
    assert len(study.endpoints["follow_up_days"]) > plotting.response.SWIMMER_ONE_PANEL_ROWS
    if panels:
        fig = plotting.plot_swimmer(study)
        assert [a.get_title() for a in fig.axes if a.get_visible()] == [
            f"{arm} (n={len(study.rows(arm))})" for arm in study.arms]
    else:
        from matplotlib.figure import Figure
        fig = plotting.plot_swimmer(study, ax=Figure().add_subplot())
        assert len(fig.axes) == 1
    e = study.endpoints
    n_prog = int(np.isfinite(e["time_to_progression_days"]).sum())
    n_resp = int(np.isfinite(e["time_to_response_days"]).sum())
    prog = np.concatenate([l.get_xdata() for l in _swimmer_lines(fig, "swimmer-progression")])
    resp = np.concatenate([l.get_xdata() for l in _swimmer_lines(fig, "swimmer-response")])
    ongoing = np.concatenate([l.get_xdata() for l in _swimmer_lines(fig, "swimmer-ongoing")])
    assert np.isfinite(prog).sum() == n_prog
    assert np.isfinite(resp).sum() == n_resp
    assert len(ongoing) == int(e["response_ongoing"].sum())
    assert sum(len(a.patches) for a in fig.axes) == 80


def test_swimmer_sorts_each_arm_by_follow_up(big_study):
    study = plotting.load_study(big_study)
    fig = plotting.plot_swimmer(study)
    for axis, arm in zip(fig.axes, study.arms):
        bars = sorted(axis.patches, key=lambda b: -b.get_y())     # top to bottom
        widths = [b.get_width() for b in bars]
        follow = np.nan_to_num(study.endpoints["follow_up_days"][study.rows(arm)], nan=0.0)
        assert widths == sorted(follow, reverse=True)


def test_small_study_swimmer_is_one_panel(tmp_path):
    study = plotting.load_study(write_study(tmp_path / "small", replicates=4))
    fig = plotting.plot_swimmer(study)
    assert len([a for a in fig.axes if a.get_visible()]) == 1
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(study.arms)


def test_run_figures_with_every_optional_part(tmp_path):
    path = tmp_path / "full.h5"
    write_run(path, "combination", 1, fields=True, core_margin=True)
    paths = plotting.run_figures(path, formats=("png", "svg"))
    _check_written(paths, ("full-timecourse", "full-snapshots"))
    run = plotting.load_run(path)
    fig = plotting.plot_run_timecourse(run)
    top, immune, conc, strip = fig.axes
    assert _dose_marker_points(top) == 0 and _dose_marker_points(strip) == len(run.doses)
    assert conc.get_ylabel() == "plasma (mg/L)"
    assert sorted(line.get_label() for line in conc.lines
                  if not line.get_label().startswith("_")) == ["anti_pd1", "tki"]
    labels = [line.get_label() for line in immune.lines]
    assert "T cells (core)" in labels and "T cells (margin)" in labels
    fig = plotting.plot_run_snapshots(run)
    assert any("oxygen" in a.get_ylabel() for a in fig.axes)


def test_run_timecourse_draws_only_drugs_given_as_daily_mean_and_range(tmp_path):
    path = tmp_path / "targeted.h5"
    write_run(path, "targeted", 0)
    with h5py.File(path, "a") as f:     # a declared drug this arm never gives: all zeros
        f["timeseries/drug/never_given"] = np.zeros(f["timeseries/time_days"].shape)
    run = plotting.load_run(path)
    assert plotting.given_drugs(run) == ["tki"]
    fig = plotting.plot_run_timecourse(run)
    conc = fig.axes[2]
    names = [t.get_text() for t in conc.get_legend().get_texts()]
    assert names == ["tki"]
    mean = conc.lines[0].get_ydata()
    t, c = run.time_days, run.drugs["tki"]
    day = np.floor(t + 1e-9)
    assert mean[30] == pytest.approx(c[day == 30].mean())


def test_run_figures_without_optional_parts(tmp_path):
    path = tmp_path / "bare.h5"
    write_run(path, "control", 0, drugs=False, doses=False, clone=False)
    paths = plotting.plot(path, out_dir=tmp_path / "figs")
    _check_written(paths, ("bare-timecourse", "bare-snapshots"))
    run = plotting.load_run(path)
    assert len(run.doses) == 0 and run.drugs == {}
    fig = plotting.plot_run_timecourse(run)
    assert _dose_marker_points(fig.axes[0]) == 0
    path = tmp_path / "nosnap.h5"
    write_run(path, "control", 0, snapshots=False)
    _check_written(plotting.run_figures(path), ("nosnap-timecourse", "nosnap-snapshots"))


def test_lattice_colours_are_keyed_by_meaning_not_value():
    grid = np.array([[0, 1], [2, 6]], np.uint8)
    rgb, present = plotting.lattice_rgb(grid, np.array([[0, 1], [0, 0]]))
    import matplotlib.colors as mc
    assert mc.to_hex(rgb[0, 1]) == plotting.KIND_COLOURS["tumor_resistant"]
    assert set(present) == {"empty", "tumor_resistant", "t_cell", "vessel"}
    # the same kinds stored under other values (a foreign file) keep their colours
    meanings = "vessel t_cell tumor empty"
    recoded = np.array([[3, 2], [1, 0]], np.uint8)
    rgb2, _ = plotting.lattice_rgb(recoded, None, np.array([0, 1, 2, 3]), meanings)
    assert mc.to_hex(rgb2[0, 1]) == plotting.KIND_COLOURS["tumor"]
    assert mc.to_hex(rgb2[1, 1]) == plotting.KIND_COLOURS["vessel"]


def test_escape_variants_have_their_own_colour():
    """Clone bit 2 marks escape (one target, bit 0): clone 2 is drawn as escape, clones 1
    and 3 (resistant, with or without escape) as resistant; without the escape bit every
    clone above 0 is resistant, as before."""
    import matplotlib.colors as mc
    grid = np.array([[1, 1, 1, 1]], np.uint8)
    clone = np.array([[0, 1, 2, 3]])
    rgb, present = plotting.lattice_rgb(grid, clone, escape_bit=2)
    assert [mc.to_hex(c) for c in rgb[0]] == [
        plotting.KIND_COLOURS[k] for k in ("tumor", "tumor_resistant", "tumor_escape",
                                           "tumor_resistant")]
    assert set(present) == {"tumor", "tumor_resistant", "tumor_escape"}
    rgb, present = plotting.lattice_rgb(grid, clone)
    assert set(present) == {"tumor", "tumor_resistant"}


def test_bad_targets_raise_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(OutputError, match="missing.h5"):
        plotting.plot(missing)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(OutputError, match="corrupt.h5") as info:
        plotting.plot(corrupt)
    assert "\n" not in str(info.value)
    empty_dir = tmp_path / "notastudy"
    empty_dir.mkdir()
    with pytest.raises(OutputError, match="study.h5"):
        plotting.plot(empty_dir)
    bad_study = tmp_path / "badstudy"
    bad_study.mkdir()
    (bad_study / "study.h5").write_bytes(b"garbage")
    with pytest.raises(OutputError, match="study.h5"):
        plotting.plot(bad_study)
    with pytest.raises(OutputError, match="corrupt.h5"):
        animate(corrupt, tmp_path / "x.gif")


def test_animation_gif_one_frame_per_snapshot(tmp_path):
    import imageio.v3 as iio
    path = tmp_path / "run.h5"
    write_run(path, "targeted", 2, days=60.0, dt_days=0.5, shape=(24, 24), snapshot_every=10.0)
    n = len(plotting.load_run(path).snapshot_days)
    out = animate(path, tmp_path / "run.gif", fps=5)
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == n
    out = animate(path, tmp_path / "every2.gif", every=2)
    assert iio.imread(out, index=None).shape[0] == math.ceil(n / 2)


def test_animation_of_a_3d_run_uses_the_middle_slice(tmp_path):
    import imageio.v3 as iio
    path = tmp_path / "run3d.h5"
    write_run(path, "immune", 0, days=30.0, dt_days=1.0, shape=(12, 12, 8), snapshot_every=10.0)
    assert plotting.read_snapshot(path, 0)["cell_type"].shape == (12, 12)
    out = animate(path, tmp_path / "run3d.gif")
    assert iio.imread(out, index=None).shape[0] == 4
    _check_written(plotting.run_figures(path, formats=("png",)), ("run3d-snapshots",), ("png",))


def test_mp4_without_ffmpeg_is_a_clear_error(tmp_path):
    import importlib.util
    if importlib.util.find_spec("imageio_ffmpeg") or importlib.util.find_spec("av"):
        pytest.skip("an MP4 writer is installed")
    path = tmp_path / "run.h5"
    write_run(path, days=20.0, dt_days=1.0, shape=(12, 12))
    with pytest.raises(OutputError, match=r"run\.mp4: .*ffmpeg"):
        animate(path, tmp_path / "run.mp4")
    assert not (tmp_path / "run.mp4").exists()
