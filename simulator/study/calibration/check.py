"""Predictive check of the best fit: every arm simulated with ``check_replicates`` fresh
virtual patients (``check_seed``), each target's published interval beside the simulated
value and its 95% interval; fitted and predicted (held-out) targets marked. Writes
``check.csv``, ``check.md`` and ``check.png``.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from simulator.analysis import targets as targets_mod
from simulator.analysis.statistics import format_estimate
from simulator.study.calibration.simulate import Task, execute
from simulator.study.calibration.spec import Calibration

COLUMNS = ("role", "id", "arm", "trial", "statistic", "target", "target_low", "target_high",
           "simulated", "simulated_low", "simulated_high", "patients", "inside_target_interval",
           "intervals_overlap", "confirmed", "interval_confirmed")
ROLE_COLOURS = {"fit": "#1f77b4", "predict": "#d62728", "reference": "#7f7f7f"}


def predictive_check(calibration: Calibration, values, store, directory, *, workers=1,
                     scheduler=None, keep_runs=False, log=print) -> list[dict]:
    from simulator.study.calibration.waves import arms_at
    spec = calibration.spec
    arms = arms_at(calibration, [values[p.label] for p in calibration.parameters],
                   seed=spec.check_seed, check=True)
    tasks = [Task.make("check", 0, r, values, arms) for r in range(spec.check_replicates)]
    records = [r for r in execute(tasks, store, directory, workers=workers,
                                  scheduler=scheduler, keep_runs=keep_runs,
                                  progress="predictive check", log=log)
               if r["status"] == "complete"]
    rows = []
    for target in calibration.fit + calibration.predict:
        arm_rows = [r["arms"][target.arm] for r in records]
        est = targets_mod.estimate(target, arm_rows)
        rows.append(dict(role=target.role, id=target.id, arm=target.arm, trial=target.trial,
                         statistic=target.what, target=target.value, target_low=target.low,
                         target_high=target.high, simulated=est.value, simulated_low=est.low,
                         simulated_high=est.high, patients=est.n,
                         inside_target_interval=target.low <= est.value <= target.high,
                         intervals_overlap=est.low <= target.high and target.low <= est.high,
                         confirmed=target.confirmed,
                         interval_confirmed=target.interval_confirmed))
    directory = Path(directory)
    _write_csv(directory / "check.csv", rows)
    (directory / "check.md").write_text(markdown(rows, calibration))
    figure(rows, directory / "check.png")
    return rows


def _write_csv(path: Path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(row, prefix):
    percent = "rate" in row["statistic"] or row["statistic"].startswith("PFS at")
    return format_estimate(row[prefix], row[f"{prefix}_low"], row[f"{prefix}_high"],
                           percent=percent, unit="" if percent else " mo")


def markdown(rows, calibration: Calibration) -> str:
    lines = ["| role | arm | statistic | trial | target (95% CI) | simulated (95% CI) | "
             "inside | confirmed |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        confirmed = ("yes" if r["confirmed"] and r["interval_confirmed"] else
                     "value only" if r["confirmed"] else "**no**")
        lines.append(f"| {r['role']} | {r['arm']} | {r['statistic']} | {r['trial']} | "
                     f"{_fmt(r, 'target')} | {_fmt(r, 'simulated')} | "
                     f"{'yes' if r['inside_target_interval'] else '**no**'} | {confirmed} |")
    missing = [f"{t.id} ({t.arm})" for t in calibration.not_simulated]
    if missing:
        lines += ["", "Not compared (arm not in this calibration, or its follow-up ends before "
                  "the landmark): " + ", ".join(missing)]
    return "\n".join(lines) + "\n"


def figure(rows, path):
    """Two panels (proportions; times in months): per target its published interval (black)
    and the simulated value with its interval (coloured by role); an interval open to the
    right ("not reached") ends in an arrow at the panel's edge."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    groups = {"proportion": [], "months": []}
    for r in rows:
        percent = "rate" in r["statistic"] or r["statistic"].startswith("PFS at")
        groups["proportion" if percent else "months"].append(r)
    heights = [max(len(g), 1) for g in groups.values()]
    fig, axes = plt.subplots(2, 1, figsize=(8, 1.8 + 0.42 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    for ax, (kind, group) in zip(axes, groups.items()):
        finite = [v for r in group for v in (r["target_high"], r["simulated"],
                                             r["simulated_high"]) if math.isfinite(v)]
        right = 1.0 if kind == "proportion" else 1.1 * max(finite, default=1.0)
        for y, r in enumerate(group):
            ax.plot([r["target_low"], r["target_high"]], [y + 0.15] * 2, color="k", lw=2)
            ax.plot(r["target"], y + 0.15, "ko", ms=4)
            if math.isnan(r["simulated"]):
                continue
            colour = ROLE_COLOURS[r["role"]]
            low, value, high = (min(v, right) for v in (r["simulated_low"], r["simulated"],
                                                        r["simulated_high"]))
            ax.plot([low, high], [y - 0.15] * 2, color=colour, lw=2)
            ax.plot(value, y - 0.15, ">" if math.isinf(r["simulated"]) else "o",
                    color=colour, ms=4)
            if math.isinf(r["simulated_high"]):
                ax.plot(right, y - 0.15, ">", color=colour, ms=5)
        # two lines (arm; statistic and trial): a sequence arm's name alone is ~35 characters
        ax.set_yticks(range(len(group)), [f"{r['arm']}\n{r['statistic']}"
                                          + (f" ({r['trial']})" if r["trial"] else "")
                                          for r in group], fontsize=7)
        ax.set_xlim(0.0, right * 1.02)
        ax.invert_yaxis()
        ax.set_xlabel("fraction of patients" if kind == "proportion" else "months")
        ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color="k", lw=2, label="trial (95% CI)")] + [
        Line2D([], [], color=c, lw=2, label=f"simulated, {role}")
        for role, c in ROLE_COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle("Predictive check of the best fit", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))  # room for the title above the top panel
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
