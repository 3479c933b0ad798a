"""Publication figures of a run file or a study directory (matplotlib, Agg, PNG and SVG).

Entry points::

    plot(target, out_dir=None, formats=("png", "svg"))    a study directory or a run file
    study_figures(directory, formats=...)                 DIR/figures/*.png|svg
    run_figures(path, out_dir=None, formats=...)          beside OUT.h5 (or in out_dir)

Every figure function draws into ``ax`` (a new figure when None) and returns the figure;
functions that draw one panel per arm take ``ax`` as a sequence of Axes, one per arm. Figures
are built on :class:`matplotlib.figure.Figure` directly (no pyplot, so no global figure state
and no interactive backend). Time axes mark the treatment start (dashed line) and dose days
(one row of markers per arm and drug along the top of the axes; for a study, a marker's
opacity is the share of replicates dosed that day, since adaptive regimens dose replicates
differently).

What is read: a study is drawn from ``study.h5`` (series stacked arm x replicate x time and
the endpoint columns) and ``summary.csv`` (the run file of each row); the per-run files are
opened only for the dose tables and for the lattice snapshots. Optional content of a run
file is drawn when present and skipped when absent: ``/timeseries/drug/<name>``,
``/doses/table``, ``t_cells_core`` / ``t_cells_margin``, ``/snapshots/clone`` (resistant
tumour cells get their own colour), ``/snapshots/fields/<name>``.

Response conventions follow :mod:`simulator.analysis.endpoints`: the waterfall and spider plots show
the change of the equivalent diameter from baseline (RECIST's measure; D/D0 = (N/N0)^(1/d)
on a d-dimensional lattice), with the partial-response (-30%) and progression (+20%) lines.
The time axis of the spider, swimmer and Kaplan-Meier plots is days since treatment start.

Modules::

    data        StudyData / RunData and their loaders, dose tables, snapshot frames
    style       house style, axes helpers, saving figures
    markers     treatment start and dose-day markers on time axes
    lattice     cell-kind colours, lattice_rgb, plot_lattice
    response    spider, waterfall and swimmer plots (RECIST response)
    survival    Kaplan-Meier curves and log-rank tests
    study       burden, composition, snapshots per arm; study_figures
    run         one run's time course and snapshots; run_figures
"""
from __future__ import annotations

from pathlib import Path

from simulator.output import partial
from simulator.output.runfile import OutputError
from simulator.output.plotting.data import (RunData, StudyData, _is_study_file,
                                     default_snapshot_days, load_run, load_study, read_doses,
                                     read_snapshot)
from simulator.output.plotting.lattice import KIND_COLOURS, KIND_LABELS, lattice_rgb, plot_lattice
from simulator.output.plotting.markers import mark_doses, mark_treatment_start
from simulator.output.plotting.response import (PARTIAL_RESPONSE_DROP, PROGRESSION_RISE,
                                         RESPONSE_COLOURS, RESPONSE_LABELS, plot_spider,
                                         plot_study_waterfall, plot_swimmer, plot_waterfall)
from simulator.output.plotting.run import (given_drugs, plot_run_snapshots, plot_run_timecourse,
                                           run_drug_colours, run_figures)
from simulator.output.plotting.study import (OUTCOME_COLOURS, STUDY_FIGURE_CAPTIONS, STUDY_FIGURES,
                                             outcome_groups, plot_burden, plot_composition,
                                             plot_study_snapshots, representatives,
                                             study_figures)
from simulator.output.plotting.style import DPI, FORMATS
from simulator.output.plotting.survival import (logrank_pvalues, plot_kaplan_meier,
                                         plot_study_kaplan_meier)
# Private helpers other modules reach through ``plotting.``: simulator/animate.py draws its
# frames with the house style and lattice helpers; tests/test_plotting.py checks the
# Kaplan-Meier estimate and the numpy log-rank fallback.
from simulator.output.plotting.lattice import _kind_legend_handles, _show_rgb  # noqa: F401
from simulator.output.plotting.markers import _headroom  # noqa: F401
from simulator.output.plotting.style import _STYLE  # noqa: F401
from simulator.output.plotting.survival import _km_curve, _logrank_numpy  # noqa: F401

__all__ = [
    "KIND_COLOURS", "RESPONSE_COLOURS", "StudyData", "RunData",
    "plot", "study_figures", "run_figures",
    "load_study", "load_run", "read_doses", "read_snapshot", "lattice_rgb", "logrank_pvalues",
    "default_snapshot_days", "STUDY_FIGURES", "STUDY_FIGURE_CAPTIONS", "OUTCOME_COLOURS",
    "outcome_groups", "representatives",
    "mark_doses", "mark_treatment_start",
    "plot_burden", "plot_spider", "plot_waterfall", "plot_swimmer", "plot_kaplan_meier",
    "plot_composition", "plot_lattice", "plot_study_snapshots", "plot_run_timecourse",
    "plot_run_snapshots", "given_drugs",
]


def plot(target, out_dir=None, formats=FORMATS) -> list[Path]:
    """``tumorsim plot``: a study directory (or its study.h5), a run file, or a run that
    has not finished (its partial directory, ``OUT.h5.partial-<pid>-<n>``)."""
    target = Path(target)
    if partial.is_partial(target):
        return run_figures(target, out_dir, formats)
    if target.is_dir():
        return study_figures(target, formats, out_dir=out_dir)
    if not target.exists():
        raise OutputError(f"{target}: no such file or directory")
    if target.name == "study.h5" or _is_study_file(target):
        return study_figures(target.parent, formats, out_dir=out_dir)
    return run_figures(target, out_dir, formats)
