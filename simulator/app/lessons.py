"""Guided lessons: each opens the explorer with two arms from the scenario library and a
short text saying what to watch. Arm B takes its regimen from its own library file; both
arms share arm A's file otherwise (biology, lattice, seed), so they grow from one
pre-treatment tumour and differ only in what is given and when."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    arm_a: str            # library file: the scenario, and arm A's regimen
    arm_b: str | None     # library file whose regimen arm B takes (None: one arm)
    text: str             # HTML, a few sentences
    field: str | None = None


LESSONS = (
    Lesson(
        "targeted-relapse", "Why targeted therapy relapses",
        "targeted_continuous.toml", "untreated.toml",
        "<p>Arm A gives a BRAF inhibitor twice daily from day 60; arm B is the same tumour "
        "left untreated. A few cells in a thousand (<b style='color:#f28e1c'>orange</b>, at "
        "least 23) are resistant before any drug is given.</p><p>Watch A: the sensitive "
        "cells (<b style='color:#2f6db5'>blue</b>) shrink away over the first months, "
        "faster than anti-PD-1 could act. But the drug has <i>selected</i> for the orange "
        "clone, which now has "
        "the space to itself and regrows the tumour: a relapse. The composition plot shows "
        "the resistant share climbing to almost 100%.</p><p>Try: raise the resistant fraction "
        "to 0.05 (the relapse comes sooner), or switch A to 28 days on / 28 off (adaptive: "
        "pause below 0.5).</p>"),
    Lesson(
        "combination-lasts", "Why the combination lasts",
        "targeted_continuous.toml", "combination_concurrent.toml",
        "<p>Arm A: the BRAF inhibitor alone. Arm B: the same drug plus anti-PD-1 every 3 "
        "weeks, on the very same tumour.</p><p>Both shrink fast: the drug kills sensitive "
        "cells. In A the resistant clone regrows. In B the drug also makes tumour cells more "
        "visible (antigenicity), lets more T cells in (<b style='color:#2ca02c'>green</b>) "
        "and thins out suppressive cells (<b style='color:#9b59b6'>purple</b>), while "
        "anti-PD-1 releases the T cells' brake. T cells kill resistant cells too, so the "
        "orange clone is cleared before it can take over.</p><p>Try: set the T-cell "
        "recruitment to 0, or start anti-PD-1 in B only at day 28.</p>"),
    Lesson(
        "immunotherapy-slow", "Immunotherapy: slower but durable",
        "anti_pd1.toml", "targeted_continuous.toml",
        "<p>Arm A: anti-PD-1 alone. Arm B: the BRAF inhibitor alone.</p><p>A responds "
        "later, if at all: T cells first have to be recruited and released from PD-L1. "
        "When it responds, it does not select a resistant clone, so the response can last. "
        "B is fast and short. Try raising the antigenicity (both arms): A gains most.</p>", "ifn_gamma"),
    Lesson(
        "adaptive", "Adaptive dosing keeps the competitors",
        "targeted_continuous.toml", "targeted_adaptive.toml",
        "<p>Arm A: continuous BRAF inhibitor. Arm B: adaptive dosing, paused when the "
        "tumour falls below half its size at the start and resumed when it is back "
        "(Gatenby 2009).</p><p>In B sensitive cells are kept alive to compete with the "
        "resistant clone for space; resistance costs fitness, so the competition slows "
        "the takeover.</p>"),
)


def lesson(key: str) -> Lesson:
    return next(lesson_ for lesson_ in LESSONS if lesson_.key == key)
