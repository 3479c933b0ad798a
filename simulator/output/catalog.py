"""Every output tumorsim writes, declared once: run-file datasets and attributes, study.h5
datasets and attributes, and the columns of summary.csv and arms.csv — with unit, meaning
and how each is computed.

This is to outputs what :func:`simulator.schema.param` is to scenario keys. The study
writer (``simulator.study.outputs``) takes units and long names from here,
``docs/outputs.md`` is generated from here (``python -m simulator.output.catalog``), the
report's column dictionary reads it, and ``tests/test_outputs.py`` fails, naming the item,
when a writer produces a dataset, attribute or column that is not declared here.

Adding an output is one line in the right table::

    item("pfs_rate_6_months", "1", "progression-free share at 6 months", how="...")

Names may hold placeholders in angle brackets (``drug/<name>``, ``vs_<reference>_pairs``,
``cohort:<key>``) that stand for any run of characters without ``/``. Units follow CF /
UDUNITS spelling (``day``, ``mg/L``, ``cells``, ``1`` for a dimensionless ratio); an empty
unit marks something that is not a quantity (text, a flag, an index).

The run file's time series are declared beside their writer (``SCALAR_SERIES``,
``FLOAT_SERIES``, ``CONCENTRATION_SERIES``, ``FIELD_UNITS`` in
:mod:`simulator.output.runfile`) and read from there, so they too are declared once.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from simulator.output.runfile import (CONCENTRATION_SERIES, FIELD_UNITS, FLOAT_SERIES,
                                      SCALAR_SERIES)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"
CONVENTIONS = "CF-1.8"


@dataclass(frozen=True)
class Item:
    """One declared output: a dataset path, an attribute or a CSV column."""
    name: str
    units: str
    meaning: str
    how: str = ""

    @property
    def pattern(self) -> re.Pattern:
        parts = re.split(r"(<[^>]+>)", self.name)
        body = "".join("[^/]+" if p.startswith("<") else re.escape(p) for p in parts)
        return re.compile(f"^{body}$")

    def matches(self, name: str) -> bool:
        return bool(self.pattern.match(name))


def item(name: str, units: str, meaning: str, how: str = "") -> Item:
    return Item(name, units, meaning, how)


@dataclass(frozen=True)
class Table:
    """A group of declared outputs that live in one place (a file part or a CSV)."""
    key: str
    title: str
    intro: str
    items: tuple[Item, ...]

    def find(self, name: str) -> Item | None:
        """The declaration of ``name``: an exact name, else the matching pattern with the
        most literal text (``pfs_<months>_months_low`` before ``pfs_<months>_months``)."""
        for it in self.items:
            if it.name == name:
                return it
        matches = [it for it in self.items if it.matches(name)]
        return max(matches, key=lambda it: len(re.sub(r"<[^>]+>", "", it.name)), default=None)

    def undeclared(self, names) -> list[str]:
        return [n for n in names if self.find(n) is None]


def _density_units() -> str:
    return "cells/mm^2 (2D) or cells/mm^3 (3D)"


# ---------------------------------------------------------------------------- endpoints
#: One per field of :class:`simulator.analysis.endpoints.Endpoints` (the per-scan sequences
#: are not columns). The same names are the run file's ``/summary`` attributes, summary.csv
#: columns and study.h5 ``/endpoints`` datasets.
ENDPOINTS = (
    item("treatment_start_day", "day", "treatment start on the simulation clock",
         "simulation.treatment_start_day"),
    item("baseline_day", "day", "time of the baseline record",
         "last record at or before the treatment start"),
    item("baseline_tumor_cells", "cells", "tumour cells at baseline"),
    item("baseline_diameter_mm", "mm", "equivalent diameter at baseline",
         "2D: 2a sqrt(M/pi), 3D: 2a (3M/4pi)^(1/3), a = site edge in mm "
         "(spacing_um x real_cells_per_site^(1/d)); M = live tumour cells N, or with "
         "endpoints.residual_half_life_days > 0 the lesion's extent with its clearing "
         "bed (simulator.treatment.lesion)"),
    item("final_tumor_cells", "cells", "tumour cells at the last record"),
    item("n_scans", "", "number of scans (treatment start + endpoints.first_scan_days + k x "
                        "endpoints.scan_interval_days while records exist)"),
    item("nadir_tumor_cells", "cells", "live tumour cells at the scan of the smallest "
                                       "measure (the smallest burden without a bed half-life)",
         "NaN without scans"),
    item("nadir_day", "day", "first scan reaching the nadir (simulation clock)"),
    item("best_response", "1", "best response percent / 100: smallest change of the "
                               "equivalent diameter from baseline",
         "min D / D0 - 1 over the scans up to and including the first PD (the waterfall "
         "plot's bar); -1 = complete response; NaN without scans or baseline"),
    item("best_tumor_cells_change", "1", "the same on the live cell count",
         "min N / N0 - 1 over the same scans"),
    item("first_scan_change", "1", "change of the equivalent diameter at the first scan "
                                   "(early tumour shrinkage)", "D / D0 - 1"),
    item("response_class", "", "best overall response: CR, PR, SD, PD or NE",
         "RECIST 1.1 on the equivalent diameter: PR <= -30% from baseline, PD >= +20% over "
         "the nadir (and + endpoints.progression_min_mm); PR/CR confirmed by a later scan "
         "(endpoints.confirmation_min_days), SD only after endpoints.stable_disease_min_days; "
         "see simulator/analysis/endpoints.py"),
    item("objective_response", "", "a confirmed response: response_class is CR or PR "
                                   "(true/false)"),
    item("time_to_response_days", "day", "first scan of the first confirmed response, from "
                                         "treatment start", "NaN if no response"),
    item("time_to_complete_response_days", "day",
         "first scan of a response confirmed as CR, from treatment start (a PR that deepens "
         "to CR counts from the CR)", "NaN if no complete response"),
    item("duration_of_response_days", "day", "first PR/CR scan to first PD scan (or to the "
                                             "last scan: censored)", "NaN if no response"),
    item("response_ongoing", "", "responder without progression by the last scan "
                                 "(duration censored)"),
    item("durable_response", "", "objective response lasting >= endpoints.durable_min_days",
         "censored durations count; a response observed for less is not durable"),
    item("progression_observed", "", "a PD scan occurred (Kaplan-Meier event flag)"),
    item("time_to_progression_days", "day", "first PD scan, from treatment start",
         "NaN if no progression by the last scan"),
    item("follow_up_days", "day", "treatment start to the last scan"),
    item("progression_free_days", "day", "Kaplan-Meier duration",
         "time_to_progression_days if progression_observed, else follow_up_days (censored)"),
    item("progression_scans_blocked_by_min_mm", "", "scans where only the absolute "
                                                    "progression_min_mm rule prevented PD"),
    item("resistant_fraction_baseline", "1", "resistant share of the tumour at baseline",
         "tumor_resistant / tumor_cells; NaN without tumour"),
    item("resistant_fraction_at_progression", "1", "resistant share at the first PD scan",
         "NaN without progression"),
    item("resistant_fraction_final", "1", "resistant share at the last record"),
    item("time_to_resistance_days", "day", "first record from baseline whose resistant share "
                                           ">= endpoints.resistance_share_threshold",
         "from treatment start; NaN if never"),
    item("infiltration_core_to_margin", "1", "mean core / mean margin T-cell density over "
                                             "treatment", "trapezoidal time averages; NaN "
                                                          "without the series"),
    item("cd8_to_suppressive_final", "1", "T cells / suppressive cells at the last record"),
    item("cd8_to_suppressive_mean", "1", "mean T cells / mean suppressive cells over "
                                         "treatment", "trapezoidal time averages"),
    item("edge_contact_day", "day", "first record with tumour cells on the lattice's outer "
                                    "faces (simulation clock)",
         "from timeseries/tumor_cells_on_edge; NaN if the tumour never reached the edge"),
    item("box_limited", "", "the tumour reached the lattice edge before the run's end, so "
                            "later burden and progression are limited by the box (true/false)",
         "edge_contact_day < the last record's day"),
)

# ----------------------------------------------------------------------------- run file
RUN_ATTRIBUTES = Table("run-attributes", "Run file: root attributes", (
    "One HDF5 file per run (`tumorsim run`, each run of `tumorsim compare`); netCDF-4 "
    "compatible, so `xarray.open_dataset(path, engine=\"h5netcdf\", group=...)` reads each "
    "group."), (
    item("software_version", "", "tumorsim version that wrote the file"),
    item("seed", "", "simulation.seed: key of every random decision"),
    item("replicate", "", "simulation.replicate: replicate index, part of the random key"),
    item("arm", "", "arm name (scenario file stem) in a study; empty for a single run"),
    item("scenario_sha256", "", "SHA-256 of the resolved scenario text "
                                "(/provenance/scenario_toml)"),
    item("created", "", "UTC time the file was started (ISO 8601)"),
    item("status", "", "running, incomplete (interrupted), pretreatment (a study's scratch "
                       "history) or complete"),
    item("steps_completed", "", "steps whose records are on disk"),
    item("git_commit", "", "commit of the tumorsim source tree (empty outside git)"),
    item("command_line", "", "command line of the writing process"),
    item("library_versions", "", "python, numpy, numba, scipy, h5py and HDF5 versions"),
    item("dimensions", "site", "lattice size per axis (simulation.dimensions)"),
    item("dt_hours", "hour", "step length (simulation.dt_hours)"),
    item("edge_contact_day", "day", "first record with tumour cells on the lattice's outer "
                                    "faces; NaN if the tumour never reached them",
         "from timeseries/tumor_cells_on_edge; burden and progression after it are limited "
         "by the box"),
    item("off_study_day", "day", "the run ended here, at the scan that called "
                                 "progression, before its horizon; NaN if it ran to the end",
         "endpoints.off_study_at_progression (simulator.analysis.follow_up)"),
    item("eradicated_day", "day", "the run ended here, before its horizon, with no live "
                                  "tumour cell left; NaN if it did not",
         "endpoints.end_at_eradication: endpoints scan on at zero cells to the horizon "
         "(simulator.analysis.follow_up)"),
    item("spacing_um", "um", "lattice spacing (simulation.spacing_um)"),
    item("treatment_start_day", "day", "simulation.treatment_start_day"),
    item("Conventions", "", f"metadata conventions ({CONVENTIONS})"),
    item("title", "", "\"tumorsim run\""),
    item("stage", "", "\"pretreatment\" or \"treatment\": which part of a study run the file "
                      "holds"),
    item("<extra>", "", "further attributes a caller passes to the recorder (extra_attrs)"),
))


def _run_series_items() -> tuple[Item, ...]:
    items = [item("timeseries/time_days", "day", "simulated time of each record (the time "
                                                 "dimension)",
                  "record 0 = initial state; record at the end of step s is stamped (s+1) dt"),
             item("timeseries/clone", "", "resistance bit mask of each clone (bit t: "
                                          "resistant to target t); attribute targets names "
                                          "them")]
    for name, (units, meaning) in SCALAR_SERIES.items():
        items.append(item(f"timeseries/{name}", units, meaning, "count at the end of the step"
                          if not name.endswith("_total") else "running total since day 0"))
    for name, (units, meaning) in FLOAT_SERIES.items():
        units = units.replace("{density}", _density_units())
        items.append(item(f"timeseries/{name}", units, meaning, "NaN where undefined"))
    items.append(item("timeseries/tumor_by_clone", "cells", "tumour cells per clone "
                                                           "(time x clone)"))
    for group, meaning in CONCENTRATION_SERIES.items():
        items.append(item(f"timeseries/{group}/<name>", "mg/L",
                          meaning.format(name="drug <name>"),
                          "plasma: one-compartment pharmacokinetics, mean over the step"
                          if group == "drug" else "only for drugs with penetration"))
    return tuple(items)


RUN_DATASETS = Table("run-datasets", "Run file: datasets and groups", (
    "Every series has CF `units` and `long_name` attributes and the time dimension "
    "`timeseries/time_days`; snapshots are chunked one frame per chunk and gzip-compressed."),
    (item("provenance/scenario_toml", "", "the resolved scenario as TOML text",
          "`tumorsim run` of this text reproduces the run"),)
    + _run_series_items() + (
    item("snapshots/time_days", "day", "time of each lattice snapshot (the snapshot "
                                      "dimension)",
         "day 0, every output.snapshot_every_days, the treatment start and the last step"),
    item("snapshots/x", "um", "x of the site centres"),
    item("snapshots/y", "um", "y of the site centres"),
    item("snapshots/z", "um", "z of the site centres (3D)"),
    item("snapshots/cell_type", "", "cell kind at each site (snapshot x lattice, uint8)",
         "attributes flag_values / flag_meanings name the kinds"),
    item("snapshots/clone", "", "resistance bit mask of the tumour cell at each site "
                                "(0 elsewhere)"),
    item("snapshots/fields/<name>", ", ".join(f"{k}: {v}" for k, v in FIELD_UNITS.items())
         + ", drug_<name>: mg/L", "a field at each site (quasi-steady state of the step "
                                  "that ended at the snapshot; float32)",
         "only the names in output.snapshot_fields"),
    item("doses/table", "", "doses actually given: step, day (day), drug, amount_mg (mg), "
                            "reason (schedule or the rule that caused it)"),
    item("cohort/<key>", "", "per-patient parameter drawn for this replicate ([[cohort]]), "
                             "as an attribute named by the scenario key"),
    item("summary/<endpoint>", "", "the run's endpoints as attributes: every name of the "
                                   "summary.csv endpoint columns below, same units"),
))

# ------------------------------------------------------------------------------- study
STUDY_ATTRIBUTES = Table("study-attributes", "study.h5: root attributes", (
    "`tumorsim compare DIR` rebuilds `DIR/study.h5` from the run files on disk. Every group "
    "opens with `xarray.open_dataset(\"DIR/study.h5\", engine=\"h5netcdf\", group=G)` for G "
    "= None, \"timeseries\", \"endpoints\"."), (
    item("title", "", "\"tumorsim study\""),
    item("Conventions", "", f"metadata conventions ({CONVENTIONS})"),
    item("arms", "", "arm names in order; the first is the reference arm"),
    item("reference_arm", "", "arm the paired differences are taken against"),
    item("replicates", "", "replicates requested per arm"),
    item("software_version", "", "tumorsim version that wrote study.h5"),
    item("git_commit", "", "commit of the tumorsim source tree (empty outside git)"),
    item("library_versions", "", "python, numpy, numba, scipy, h5py and HDF5 versions"),
    item("created", "", "UTC time study.h5 was written (ISO 8601)"),
    item("command_line", "", "command line of the writing process"),
    item("wall_seconds", "s", "wall time of the `compare` call that wrote it (runs skipped "
                              "because already complete cost nothing); NaN if unknown"),
))

STUDY_DATASETS = Table("study-datasets", "study.h5: datasets", (
    "Series are stacked arm x replicate x time on the longest run's time axis, NaN where a "
    "run is missing or shorter; units and long names are the run file's."), (
    item("arm", "", "arm names (dimension)"),
    item("replicate", "", "replicate indices (dimension)"),
    item("timeseries/time_days", "day", "simulated time (dimension)"),
    item("timeseries/arm", "", "arm names (dimension of the stacked series)"),
    item("timeseries/replicate", "", "replicate indices (dimension of the stacked series)"),
    item("timeseries/<series>", "(as the run file's series)", "run-file series "
         "timeseries/<series> stacked arm x replicate x time",
         "series: tumor_cells, tumor_sensitive, tumor_resistant, t_cells, suppressive_cells, "
         "necrotic_cells, divisions_total, resistance_mutations_total"),
    item("timeseries/drug_<name>", "mg/L", "plasma concentration of drug <name>, stacked "
                                          "arm x replicate x time", "0 where not given"),
    item("endpoints/run", "", "row index (dimension): one row per finished run, as in "
                              "summary.csv"),
    item("endpoints/<column>", "(as the summary.csv column)", "every summary.csv column but "
         "path, on the run dimension", "`:` in a column name becomes `_` "
                                       "(cohort:<key> -> cohort_<key>)"),
))

SUMMARY_COLUMNS = Table("summary-csv", "summary.csv: one row per run", (
    "`DIR/summary.csv`: one row per finished run (arm x replicate), endpoints computed from "
    "the run file's time series by `simulator.analysis.endpoints`. NaN = undefined for this "
    "run (see each column); true/false are written True/False."), (
    item("arm", "", "arm name (the scenario file's stem)"),
    item("replicate", "", "replicate index (the same pre-treatment tumour in every arm)"),
    item("seed", "", "simulation.seed of the run"),
    item("path", "", "run file, relative to the study directory"),
    item("cohort:<key>", "(the scenario key's unit)", "per-patient value of scenario key "
                                                      "<key> drawn for this replicate"),
) + ENDPOINTS)

ARMS_COLUMNS = Table("arms-csv", "arms.csv: one row per arm", (
    "`DIR/arms.csv`: per arm, summaries over its replicates with 95% intervals, and paired "
    "differences against the reference (first) arm over the replicates both finished "
    "(common random numbers: replicate r of every arm starts from the same tumour)."), (
    item("arm", "", "arm name"),
    item("replicates", "", "finished runs of the arm"),
    item("response_rate", "1", "share of runs with an objective response (CR or PR)"),
    item("response_rate_low", "1", "lower end of its 95% interval", "Wilson score interval"),
    item("response_rate_high", "1", "upper end of its 95% interval", "Wilson score interval"),
    item("complete_response_rate", "1", "share of runs whose best overall response is CR"),
    item("complete_response_rate_low", "1", "lower end of its 95% interval", "Wilson"),
    item("complete_response_rate_high", "1", "upper end of its 95% interval", "Wilson"),
    item("median_time_to_response_days", "day", "median time to response over responders",
         "NaN without responders"),
    item("median_ttp_days", "day", "Kaplan-Meier median progression-free time (PFS)",
         "from progression_free_days and progression_observed; inf when the curve stays "
         "above 0.5 (not reached), NaN when undefined"),
    item("median_ttp_low", "day", "lower end of its 95% interval",
         "Brookmeyer-Crowley (simulator.analysis.statistics.km_median); inf = not reached"),
    item("median_ttp_high", "day", "upper end of its 95% interval", "as median_ttp_low"),
    item("pfs_<months>_months", "1", "landmark progression-free probability at <months> "
                                     "months (endpoints.landmark_months)",
         "Kaplan-Meier S(t), 1 month = 30.4375 days; NaN when every run is censored before"),
    item("pfs_<months>_months_low", "1", "lower end of its 95% interval",
         "log-log interval (Wilson where S is 0 or 1)"),
    item("pfs_<months>_months_high", "1", "upper end of its 95% interval", "as above"),
    item("durable_fraction", "1", "share of runs with a durable response"),
    item("durable_fraction_low", "1", "lower end of its 95% interval", "Wilson"),
    item("durable_fraction_high", "1", "upper end of its 95% interval", "Wilson"),
    item("vs_<reference>_pairs", "", "replicates finished in both this arm and the reference"),
    *[line for name, what in (("objective_response", "response rates"),
                              ("durable_response", "durable-response rates"))
      for line in (
        item(f"vs_<reference>_{name}_difference", "1",
             f"paired difference of {what} (this arm - reference)",
             "(b - c) / n, b and c the discordant pairs"),
        item(f"vs_<reference>_{name}_difference_low", "1", "lower end of its 95% interval",
             "Newcombe's interval for paired proportions"),
        item(f"vs_<reference>_{name}_difference_high", "1", "upper end of its 95% interval",
             "Newcombe"),
        item(f"vs_<reference>_{name}_difference_p", "1", "two-sided p-value",
             "exact McNemar test on the discordant pairs"))],
    item("vs_<reference>_progression_free_net_benefit", "1",
         "paired net benefit on progression-free time: (pairs where this arm is certainly "
         "longer - pairs where the reference is) / pairs", "a pair counts only when the "
         "shorter time is an observed progression"),
    item("vs_<reference>_progression_free_net_benefit_low", "1", "lower end of its 95% "
         "interval", "Newcombe"),
    item("vs_<reference>_progression_free_net_benefit_high", "1", "upper end of its 95% "
         "interval", "Newcombe"),
    item("vs_<reference>_progression_free_net_benefit_p", "1", "two-sided p-value",
         "sign test (exact McNemar) on the decided pairs"),
    item("vs_<reference>_best_response_mean_difference", "1", "mean paired difference of "
         "best_response (this arm - reference)", "over pairs where both are defined"),
))

TABLES = (RUN_ATTRIBUTES, RUN_DATASETS, STUDY_ATTRIBUTES, STUDY_DATASETS, SUMMARY_COLUMNS,
          ARMS_COLUMNS)
_ENDPOINT_TABLE = Table("endpoints", "endpoints", "", ENDPOINTS)


def table(key: str) -> Table:
    return next(t for t in TABLES if t.key == key)


def endpoint(name: str) -> Item | None:
    return _ENDPOINT_TABLE.find(name)


def run_series(name: str) -> Item | None:
    """The declaration of run-file series ``timeseries/<name>``."""
    return RUN_DATASETS.find(f"timeseries/{name}")


def undeclared_message(table_: Table, names) -> str:
    """One line per undeclared name, saying where to declare it."""
    missing = table_.undeclared(names)
    return "\n".join(f"{table_.title}: {n!r} is not declared; add one line "
                     f"item({n!r}, units, meaning, how) to the {table_.key} table in "
                     f"simulator/output/catalog.py" for n in missing)


# ---------------------------------------------------------------------------- the docs
HEADER = """# Outputs

Generated from `simulator/output/catalog.py` by `python -m simulator.output.catalog`; do not
edit by hand (a test fails when this file is out of date, and another when a writer produces
anything the catalogue does not declare). Units are CF / UDUNITS spellings: `1` is a
dimensionless ratio, an empty unit marks text, flags and indices. `<name>` stands for a name
(a drug, a scenario key, the reference arm). NaN always means "undefined for this run or
arm", never a failed computation.
"""


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or " "


def outputs_markdown() -> str:
    lines = [HEADER]
    for t in TABLES:
        lines += [f"## {t.title}", "", t.intro, "", "| name | unit | meaning | how computed |",
                  "|---|---|---|---|"]
        lines += [f"| `{it.name}` | {_cell(it.units)} | {_cell(it.meaning)} | {_cell(it.how)} |"
                  for it in t.items]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    from simulator.output.docs import generated_doc_main
    return generated_doc_main(argv, prog="python -m simulator.output.catalog", path=DOCS,
                              text=outputs_markdown())


if __name__ == "__main__":
    sys.exit(main())
