"""Progression-free survival: Kaplan-Meier curves per arm and log-rank tests against the
reference (first) arm. The time axis is days since treatment start."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D

from simulator.output.plotting.data import StudyData
from simulator.output.plotting.style import _arm_colours, _new_axes, _styled


def logrank_pvalues(durations, observed, arm_of_row, arms) -> dict[str, float]:
    """Two-sample log-rank p-value of every arm against the first (reference) arm (lifelines
    when installed, else the same test in numpy/scipy). Rows with NaN durations are left
    out. Note: arms of a study share common random numbers, so replicates are paired and the
    (unpaired) log-rank p-value is conservative-to-approximate; it is a screening number."""
    durations = np.asarray(durations, float)
    observed = np.asarray(observed, bool)
    arm_of_row = np.asarray(arm_of_row, dtype=object)
    ref = arms[0]
    out = {}
    for arm in arms[1:]:
        a = (arm_of_row == ref) & np.isfinite(durations)
        b = (arm_of_row == arm) & np.isfinite(durations)
        if not a.any() or not b.any() or not (observed[a].any() or observed[b].any()):
            out[arm] = math.nan
            continue
        out[arm] = _logrank(durations[a], observed[a], durations[b], observed[b])
    return out


def _logrank(t1, e1, t2, e2) -> float:
    try:
        from lifelines.statistics import logrank_test
    except ImportError:
        return _logrank_numpy(t1, e1, t2, e2)
    return float(logrank_test(t1, t2, event_observed_A=e1, event_observed_B=e2).p_value)


def _logrank_numpy(t1, e1, t2, e2) -> float:
    """Mantel-Cox log-rank test (chi-square, 1 degree of freedom)."""
    from scipy.stats import chi2
    t = np.concatenate([t1, t2])
    e = np.concatenate([e1, e2]).astype(bool)
    g = np.concatenate([np.zeros(len(t1), bool), np.ones(len(t2), bool)])
    o_minus_e = var = 0.0
    for time in np.unique(t[e]):
        at_risk = t >= time
        n, n1 = at_risk.sum(), (at_risk & ~g).sum()
        d = (e & (t == time)).sum()
        d1 = (e & (t == time) & ~g).sum()
        o_minus_e += d1 - d * n1 / n
        if n > 1:
            var += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    if var <= 0:
        return math.nan
    return float(chi2.sf(o_minus_e ** 2 / var, 1))


def _km_curve(durations, observed):
    """Kaplan-Meier step function: times (starting at 0) and survival after each."""
    order = np.argsort(durations, kind="stable")
    d, e = durations[order], observed[order]
    times, surv, s = [0.0], [1.0], 1.0
    for time in np.unique(d[e]):
        n_at_risk = (d >= time).sum()
        s *= 1.0 - (e & (d == time)).sum() / n_at_risk
        times.append(float(time))
        surv.append(s)
    return np.array(times), np.array(surv)


@_styled
def plot_kaplan_meier(durations, observed, arm_of_row, arms, *, ax=None):
    """Progression-free Kaplan-Meier curves per arm, censored runs ticked, log-rank p-values
    against the first arm in the legend. The p-values are stored on the returned figure as
    ``fig.logrank_pvalues`` (arm -> p)."""
    fig, ax = _new_axes((7.6, 3.6), ax)
    durations = np.asarray(durations, float)
    observed = np.asarray(observed, bool)
    arm_of_row = np.asarray(arm_of_row, dtype=object)
    pvalues = logrank_pvalues(durations, observed, arm_of_row, arms)
    colours = _arm_colours(arms)
    t_max = float(np.nanmax(durations)) if np.isfinite(durations).any() else 1.0
    for arm in arms:
        keep = (arm_of_row == arm) & np.isfinite(durations)
        d, e = durations[keep], observed[keep]
        if arm == arms[0]:
            label = f"{arm} (n={keep.sum()}, reference)"
        else:
            p = pvalues.get(arm, math.nan)
            ptext = ("p = n/a" if not np.isfinite(p) else
                     f"p = {p:.2g}" if p >= 1e-4 else "p < 0.0001")
            label = f"{arm} (n={keep.sum()}, log-rank {ptext})"
        if not keep.any():
            continue
        times, surv = _km_curve(d, e)
        times = np.append(times, max(t_max, times[-1]))
        surv = np.append(surv, surv[-1])
        ax.step(times, surv, where="post", color=colours[arm], lw=1.5, label=label)
        cens = d[~e]
        if len(cens):
            s_at = surv[np.searchsorted(times, cens, side="right") - 1]
            ax.plot(cens, s_at, ls="none", marker="+", ms=6, mew=1.0, color=colours[arm])
    ax.set_ylim(-0.02, 1.04)
    ax.set_xlim(0, t_max * 1.02 if t_max > 0 else 1)
    ax.set_xlabel("days since treatment start")
    ax.set_ylabel("progression-free probability")
    censored = [Line2D([], [], ls="none", marker="+", color="0.3", label="censored")]
    ax.legend(handles=ax.get_legend_handles_labels()[0]
              + (censored if (np.isfinite(durations) & ~observed).any() else []),
              loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title=f"log-rank test vs {arms[0]}")
    ax.set_title("Progression-free survival (Kaplan-Meier)")
    fig.logrank_pvalues = pvalues
    return fig


def plot_study_kaplan_meier(study: StudyData, *, ax=None):
    ep = study.endpoints
    return plot_kaplan_meier(ep["progression_free_days"], ep["progression_observed"],
                             ep["arm"], study.arms, ax=ax)
