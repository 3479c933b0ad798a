"""Treatment marks on time axes: the treatment start (dashed line) and dose days (one row of
markers per arm and drug along the top of the axes; for a study, a marker's opacity is the
share of replicates dosed that day, since adaptive regimens dose replicates differently)."""
from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.transforms import blended_transform_factory

_DRUG_MARKERS = ("v", "D", "s", "^", "o", "P", "X", "*")
#: Height of one row of dose markers, as a fraction of the axes height.
_DOSE_ROW_HEIGHT = 0.045
#: The treatment-start line (also used for its proxy in legends).
_TREATMENT_START_STYLE = dict(color="0.35", ls="--", lw=0.9)


def mark_treatment_start(ax, day, *, label: str | None = "treatment start"):
    """A dashed vertical line at the treatment start (skipped when day is None)."""
    if day is None or not np.isfinite(day):
        return None
    return ax.axvline(day, **_TREATMENT_START_STYLE, zorder=1, label=label,
                      gid="treatment-start")


def _drugs_in(dose_tables) -> list[str]:
    """The drugs named in any of ``dose_tables``, sorted."""
    return sorted({d for t in dose_tables for d in t["drug"]})


def _dose_rows(dose_tables, arm=None, colour="k"):
    """Rows of dose markers from a list of dose tables (one per replicate): per drug, the
    days dosed in any replicate and the share of replicates dosed on each."""
    tables = [t for t in dose_tables if t is not None]
    rows = []
    for drug in _drugs_in(tables):
        per_run = [np.unique(np.round(t["day"][t["drug"] == drug], 6)) for t in tables]
        days, counts = np.unique(np.concatenate(per_run), return_counts=True)
        rows.append(dict(arm=arm, drug=drug, days=days, share=counts / max(len(tables), 1),
                         colour=colour))
    return rows


def mark_doses(ax, dose_tables, *, arm: str | None = None, colour="k", drugs=None,
               drug_colours: dict | None = None, first_row: int = 0,
               row_height: float = _DOSE_ROW_HEIGHT):
    """Dose markers along the top of ``ax``: one row per drug (marker shape per drug, colour
    ``colour`` or ``drug_colours[drug]``), at the dose days, opacity = share of
    ``dose_tables`` (one per replicate) dosed that day. ``drugs`` fixes the drug -> marker
    order across calls. Returns the number of rows drawn. The markers are scatter
    collections with ``gid="dose-markers"``."""
    if isinstance(dose_tables, np.ndarray):
        dose_tables = [dose_tables]
    rows = _dose_rows(dose_tables, arm, colour)
    all_drugs = list(drugs) if drugs is not None else [r["drug"] for r in rows]
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    for k, row in enumerate(rows):
        y = 1.0 - row_height * (first_row + k + 0.6)
        c = (drug_colours or {}).get(row["drug"], row["colour"])
        rgba = np.tile(matplotlib.colors.to_rgba(c), (len(row["days"]), 1))
        rgba[:, 3] = 0.25 + 0.75 * row["share"]
        marker = _DRUG_MARKERS[all_drugs.index(row["drug"]) % len(_DRUG_MARKERS)]
        label = f"{row['drug']} dose" if arm is None else f"{arm}: {row['drug']} dose"
        ax.scatter(row["days"], np.full(len(row["days"]), y), s=14, marker=marker, c=rgba,
                   edgecolors="none", transform=transform, clip_on=False, zorder=4,
                   gid="dose-markers", label=label)
    return len(rows)


def _headroom_fraction(n_rows: int, row_height: float = _DOSE_ROW_HEIGHT) -> float:
    """Share of the axes height that ``n_rows`` rows of dose markers take (at most 0.6)."""
    return min(0.6, row_height * (n_rows + 0.3))


def _headroom(ax, n_rows: int, row_height: float = _DOSE_ROW_HEIGHT):
    """Raise the y limit so ``n_rows`` marker rows at the top do not cover data."""
    if n_rows == 0:
        return
    lo, hi = ax.get_ylim()
    frac = _headroom_fraction(n_rows, row_height)
    ax.set_ylim(lo, lo + (hi - lo) / (1.0 - frac))
