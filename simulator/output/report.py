"""``tumorsim report DIR``: one self-contained ``DIR/report.html`` of a study.

The page opens offline, from a file or an e-mail attachment: figures are inlined as PNG data
URIs, the style sheet is inline, and there is no script and no external link. It holds the
arms table (95% intervals and the paired differences against the reference arm), every
study figure, the endpoint definitions (the criteria in force and the meaning of every
column, from :mod:`simulator.output.catalog`), and provenance: study-level versions, commit
and wall time; per arm the resolved scenario, its hash, the seeds and the cohort values of
each replicate.

Everything is read from the study directory (``study.h5``, ``summary.csv``, ``arms.csv``,
``figures/``, one run file per arm), so a report can be rebuilt at any time; figures that
are missing are drawn first (:func:`simulator.output.plotting.study_figures`).
"""
from __future__ import annotations

import base64
import csv
import html
import math
import re
from pathlib import Path

import h5py

from simulator.output import catalog
from simulator.output.runfile import OutputError

REPORT_NAME = "report.html"

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1180px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #d4d4d4; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #e4e4e4; }
figcaption { color: #444; font-size: 13px; margin-top: 0.3em; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 12px; }
.muted { color: #666; } nav a { margin-right: 1em; } details { margin: 0.4em 0; }
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _pct(value) -> str:
    v = _num(value)
    return "–" if math.isnan(v) else f"{100 * v:.0f}%"


def _days(value) -> str:
    v = _num(value)
    if math.isnan(v):
        return "–"
    return "not reached" if math.isinf(v) else f"{v:.0f}"


def _interval(value, low, high, fmt) -> str:
    main = fmt(value)
    lo, hi = fmt(low), fmt(high)
    if main == "–" or (lo == "–" and hi == "–") or lo == hi == main:
        return main
    return f"{main} ({lo} to {hi})"


def _signed_pct(value) -> str:
    v = _num(value)
    return "–" if math.isnan(v) else f"{100 * v:+.0f} pts"


# ------------------------------------------------------------------------- sections
def _estimate(row: dict, name: str, fmt) -> str:
    """``name`` with its ``_low`` / ``_high`` interval, formatted."""
    return _interval(row.get(name), row.get(f"{name}_low"), row.get(f"{name}_high"), fmt)


def _arms_table(arms: list[dict], reference: str) -> str:
    """The main per-arm figures; every column of arms.csv is in the raw table below it."""
    pre = f"vs_{reference}_"
    landmarks = [c for c in (arms[0] if arms else {})
                 if re.fullmatch(r"pfs_[0-9.]+_months", c)]
    columns = [  # (header, cell of an arm row, cell of the reference row or None)
        ("runs", lambda r: _esc(r.get("replicates", ""))),
        ("response rate (95% CI)", lambda r: _estimate(r, "response_rate", _pct)),
        ("complete responses (95% CI)", lambda r: _estimate(r, "complete_response_rate", _pct)),
        ("median time to response (days)",
         lambda r: _days(r.get("median_time_to_response_days"))),
        ("median PFS, days (95% CI)", lambda r: _interval(
            r.get("median_ttp_days"), r.get("median_ttp_low"), r.get("median_ttp_high"), _days)),
        *[(f"PFS at {c[4:-7]} months (95% CI)", lambda r, c=c: _estimate(r, c, _pct))
          for c in landmarks],
        ("durable (95% CI)", lambda r: _estimate(r, "durable_fraction", _pct)),
        ("pairs", lambda r: _esc(r.get(pre + "pairs", ""))),
        ("response difference vs reference (95% CI)",
         lambda r: _estimate(r, pre + "objective_response_difference", _signed_pct)),
        ("durable difference vs reference (95% CI)",
         lambda r: _estimate(r, pre + "durable_response_difference", _signed_pct)),
        ("PFS net benefit vs reference (95% CI)",
         lambda r: _estimate(r, pre + "progression_free_net_benefit", _signed_pct)),
        ("mean best-response difference",
         lambda r: _signed_pct(r.get(pre + "best_response_mean_difference"))),
    ]
    paired = {"response difference vs reference (95% CI)",
              "durable difference vs reference (95% CI)",
              "PFS net benefit vs reference (95% CI)", "mean best-response difference"}
    head = "<tr><th>arm</th>" + "".join(f"<th>{_esc(h)}</th>" for h, _ in columns) + "</tr>"
    rows = []
    for r in arms:
        is_ref = r["arm"] == reference
        cells = "".join(f"<td>{'–' if is_ref and h in paired else cell(r)}</td>"
                        for h, cell in columns)
        rows.append(f"<tr><td>{_esc(r['arm'])}{' (reference)' if is_ref else ''}</td>"
                    f"{cells}</tr>")
    return f"<table id='arms-table'>{head}{''.join(rows)}</table>"


def _raw_table(rows: list[dict], table_key: str, table_id: str) -> str:
    """Every column of a CSV as written, each header explained by its declaration."""
    if not rows:
        return "<p class='muted'>(empty)</p>"
    declared = catalog.table(table_key)
    columns = list(rows[0])
    head = "".join(f"<th title='{_esc(d.meaning if (d := declared.find(c)) else '')}'>"
                   f"{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td class='text'>{_esc(r.get(c, ''))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f"<table id='{table_id}'><tr>{head}</tr>{body}</table>"


def _figures(directory: Path) -> tuple[str, int]:
    from simulator.output.plotting import STUDY_FIGURE_CAPTIONS, STUDY_FIGURES
    fig_dir = directory / "figures"
    stems = [s for s in STUDY_FIGURES if (fig_dir / f"{s}.png").exists()]
    stems += sorted(p.stem for p in fig_dir.glob("*.png") if p.stem not in stems) \
        if fig_dir.is_dir() else []
    parts = []
    for stem in stems:
        data = base64.b64encode((fig_dir / f"{stem}.png").read_bytes()).decode("ascii")
        caption = STUDY_FIGURE_CAPTIONS.get(stem, stem.replace("_", " "))
        parts.append(f"<figure id='figure-{_esc(stem)}'><img alt='{_esc(stem)}' "
                     f"src='data:image/png;base64,{data}'><figcaption><b>{_esc(stem)}</b>: "
                     f"{_esc(caption)}</figcaption></figure>")
    if not parts:
        return ("<p class='muted'>No figures in this study directory (it was run with "
                "--no-figures); <code>tumorsim plot DIR</code> then <code>tumorsim report "
                "DIR</code> adds them.</p>", 0)
    return "".join(parts), len(parts)


def _definitions(scenario_text: str) -> str:
    import tomllib
    try:
        table = tomllib.loads(scenario_text)
    except tomllib.TOMLDecodeError:
        table = {}
    e, sim = table.get("endpoints", {}), table.get("simulation", {})
    ndim = len(sim.get("dimensions", [0, 0]))
    pr = e.get("partial_response_drop", math.nan)
    pd = e.get("progression_rise", math.nan)
    items = [
        ("baseline", f"the last record at or before the treatment start (day "
                     f"{sim.get('treatment_start_day', math.nan):g})"),
        ("scans", f"every {e.get('scan_interval_days', math.nan):g} days from the treatment "
                  "start; each reads the last record at or before it"),
        ("measure", f"equivalent diameter of the tumour ({ndim}D lattice): D/D0 = "
                    f"(N/N0)^(1/{ndim})"),
        ("partial response (PR)", f"diameter at least {100 * pr:g}% below baseline"),
        ("complete response (CR)", "no tumour cell left at a scan"),
        ("progression (PD)", f"diameter at least {100 * pd:g}% above the nadir and at least "
                             f"{e.get('progression_min_mm', math.nan):g} mm larger"),
        ("objective response", "best overall response CR or PR before the first PD"),
        ("durable response", f"an objective response lasting at least "
                             f"{e.get('durable_min_days', math.nan):g} days"),
        ("time to progression", "first PD scan, from the treatment start; runs without PD "
                                "are censored at the last scan (Kaplan-Meier)"),
        ("time to resistance", f"resistant share of the tumour reaches "
                               f"{e.get('resistance_share_threshold', math.nan):g}"),
        ("paired differences", "replicate r of every arm grows from the same pre-treatment "
                               "tumour (common random numbers); differences are taken over "
                               "replicates finished in both arms, 95% intervals from the "
                               "paired (McNemar) standard error"),
    ]
    rows = "".join(f"<tr><td>{_esc(k)}</td><td class='text'>{_esc(v)}</td></tr>"
                   for k, v in items)
    return (f"<table id='definitions'>{rows}</table>"
            "<p class='muted'>Criteria of the reference arm's resolved scenario "
            "([endpoints]); RECIST 1.1 (Eisenhauer 2009) applied to one simulated lesion.</p>")


def _dictionary(table_key: str) -> str:
    t = catalog.table(table_key)
    rows = "".join(f"<tr><td><code>{_esc(i.name)}</code></td><td>{_esc(i.units)}</td>"
                   f"<td class='text'>{_esc(i.meaning)}</td><td class='text'>{_esc(i.how)}</td>"
                   "</tr>" for i in t.items)
    return (f"<details><summary>{_esc(t.title)}: every column</summary><table>"
            f"<tr><th>column</th><th>unit</th><th>meaning</th><th>how computed</th></tr>{rows}"
            "</table></details>")


def _arm_provenance(directory: Path, arm: str, runs: list[dict]) -> tuple[str, str]:
    """An arm's provenance block and its resolved scenario text."""
    path = next((directory / r["path"] for r in runs if r.get("path")
                 and (directory / r["path"]).exists()), None)
    seeds = ", ".join(f"{r['replicate']}: {r.get('seed', '')}" for r in runs)
    cohort_cols = [c for c in (runs[0] if runs else {}) if c.startswith("cohort:")]
    cohort = ""
    if cohort_cols:
        head = "".join(f"<th>{_esc(c[7:])}</th>" for c in cohort_cols)
        body = "".join("<tr><td>" + _esc(r["replicate"]) + "</td>" + "".join(
            f"<td>{_esc(r[c])}</td>" for c in cohort_cols) + "</tr>" for r in runs)
        cohort = (f"<details><summary>per-replicate cohort values</summary><table><tr>"
                  f"<th>replicate</th>{head}</tr>{body}</table></details>")
    if path is None:
        return (f"<h3>{_esc(arm)}</h3><p class='muted'>no finished run file</p>", "")
    with h5py.File(path, "r") as f:
        a = f.attrs
        text = _text(f["provenance/scenario_toml"][()])
        meta = [("run file shown", path.relative_to(directory)),
                ("scenario sha256", _text(a.get("scenario_sha256", ""))),
                ("seeds (replicate: seed)", seeds),
                ("software version", _text(a.get("software_version", ""))),
                ("git commit", _text(a.get("git_commit", "")) or "–"),
                ("library versions", _text(a.get("library_versions", ""))),
                ("created", _text(a.get("created", ""))),
                ("command line", _text(a.get("command_line", "")))]
    rows = "".join(f"<tr><td>{_esc(k)}</td><td class='text'>{_esc(v)}</td></tr>"
                   for k, v in meta)
    return (f"<h3 id='provenance-{_esc(arm)}'>{_esc(arm)}</h3><table>{rows}</table>{cohort}"
            f"<details><summary>resolved scenario (TOML; <code>tumorsim run</code> of it "
            f"reproduces replicate 0 of the arm without cohort draws)</summary>"
            f"<pre>{_esc(text)}</pre></details>", text)


def _study_attrs(directory: Path) -> dict:
    path = directory / "study.h5"
    if not path.exists():
        raise OutputError(f"{path}: no such file (not a finished tumorsim study; run "
                          "`tumorsim compare` first)")
    try:
        with h5py.File(path, "r") as f:
            return {k: (_text(v) if isinstance(v, (bytes, str)) else v)
                    for k, v in f.attrs.items()}
    except OSError as exc:
        raise OutputError(f"{path}: not a readable HDF5 file ({exc})") from None


def _wall(seconds) -> str:
    v = _num(seconds)
    if math.isnan(v):
        return "unknown"
    return f"{v:.0f} s" if v < 120 else f"{v / 60:.1f} min"


def report_html(directory) -> str:
    directory = Path(directory)
    attrs = _study_attrs(directory)
    arms_rows = _read_csv(directory / "arms.csv")
    summary = _read_csv(directory / "summary.csv")
    arm_names = [_text(a) for a in attrs.get("arms", [])] or [r["arm"] for r in arms_rows]
    reference = _text(attrs.get("reference_arm", arm_names[0] if arm_names else ""))
    figures, n_figures = _figures(directory)
    provenance, reference_text = [], ""
    for arm in arm_names:
        runs = sorted((r for r in summary if r["arm"] == arm),
                      key=lambda r: int(_num(r["replicate"])))
        block, text = _arm_provenance(directory, arm, runs)
        provenance.append(block)
        if arm == reference:
            reference_text = text
    study_meta = [("arms", ", ".join(arm_names)), ("reference arm", reference),
                  ("replicates per arm", attrs.get("replicates", "")),
                  ("finished runs", len(summary)),
                  ("wall time of the compare call", _wall(attrs.get("wall_seconds"))),
                  ("software version", attrs.get("software_version", "")),
                  ("git commit", attrs.get("git_commit", "") or "–"),
                  ("library versions", attrs.get("library_versions", "")),
                  ("study.h5 written", attrs.get("created", "")),
                  ("command line", attrs.get("command_line", ""))]
    meta_rows = "".join(f"<tr><td>{_esc(k)}</td><td class='text'>{_esc(v)}</td></tr>"
                        for k, v in study_meta)
    title = f"tumorsim study report: {directory.resolve().name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p class="muted">{len(arm_names)} arms x {_esc(attrs.get('replicates', ''))} replicates,
common random numbers; {n_figures} figures. Self-contained: no script, no external link.</p>
<nav><a href="#arms">Arms</a><a href="#figures">Figures</a><a href="#definitions-section">Endpoint
definitions</a><a href="#provenance">Provenance</a></nav>
<h2 id="arms">Arms</h2>
{_arms_table(arms_rows, reference)}
<p class="muted">Rates with 95% Wilson intervals; median and landmark progression-free
survival (PFS) from the Kaplan-Meier curve with 95% intervals; differences are this arm minus
the reference arm ({_esc(reference)}) over paired replicates, in percentage points (Newcombe
intervals); the PFS net benefit is the share of pairs where this arm is certainly longer
progression-free minus the share where the reference is.</p>
<details><summary>arms.csv as written (every column)</summary>{_raw_table(arms_rows, 'arms-csv', 'arms-csv')}</details>
<details><summary>summary.csv as written (one row per run)</summary>{_raw_table(summary, 'summary-csv', 'summary-csv')}</details>
<h2 id="figures">Figures</h2>
{figures}
<h2 id="definitions-section">Endpoint definitions</h2>
{_definitions(reference_text)}
{_dictionary('summary-csv')}
{_dictionary('arms-csv')}
<h2 id="provenance">Provenance</h2>
<table id="study-provenance">{meta_rows}</table>
{''.join(provenance)}
</body></html>
"""


def write_report(directory, *, draw_missing_figures: bool = False) -> Path:
    """Write ``DIR/report.html`` (atomically) and return its path. With
    ``draw_missing_figures``, a study without figures gets them drawn first."""
    directory = Path(directory)
    if draw_missing_figures and not any((directory / "figures").glob("*.png")):
        from simulator.output import plotting
        plotting.study_figures(directory, ("png",))
    text = report_html(directory)
    out = directory / REPORT_NAME
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
