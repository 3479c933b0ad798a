"""Drug effects at the current concentrations: one :class:`Effects` value per step.

Each channel of each drug gives E(C) = Emax C^h / (EC50^h + C^h) (:func:`hill`) at that
drug's step-average plasma concentration (:mod:`simulator.treatment.pharmacokinetics`). When several
drugs act on one channel they combine by the channel's kind:

- **rates add** (independent hazards): ``kill_rate_per_day`` (per target),
  ``t_cell_toxicity_rate_per_day``, ``treg_depletion_rate_per_day``;
- **inhibitory fractions combine by Bliss independence**, 1 - prod(1 - E_i) (two drugs each
  blocking half leave a quarter): ``arrest`` (per target), ``checkpoint_blockade``,
  ``exhaustion_relief``; the microenvironment channel gives the multipliers
  ``suppressive_recruitment_factor = suppressive_cytokine_factor = prod(1 - E_i)`` (<= 1);
- **boosts add** (fractional increases): ``antigenicity_boost`` (per target),
  ``infiltration_boost``, ``priming_boost``.

Per-target channels act only on cells sensitive to the drug's target. :func:`clone_modifiers`
turns them into arrays over all clones (clone id = resistance bit mask; bit t set = resistant
to target t): a clone's extra death rate is the sum of ``kill_rate_per_day[t]`` over the
targets it is sensitive to, its division-rate factor the product of ``1 - arrest[t]`` over
them, its antigenicity factor ``1 +`` the sum of ``antigenicity_boost[t]`` over them. Over
the targets a clone resists it takes ``resistant_kill_rate_per_day[t]`` and
``1 - resistant_arrest[t]`` instead: the shares of kill and arrest that a drug's
``resistant_response`` (partial cross-resistance) passes to resistant clones, combined as
above (kill rates add, arrests by Bliss); zero unless some drug sets it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.treatment.drugs import PER_TARGET_CHANNELS

#: Channels a drug with spatial penetration applies per site instead of clone-wide.
LOCAL_CHANNELS = ("kill", "arrest")


def hill(c, emax, ec50, h):
    """E(C) = emax C^h / (ec50^h + C^h), vectorised; 0 at C <= 0 and wherever emax = 0.

    Written as emax / (1 + (ec50 / C)^h) so that large C or h cannot overflow.
    """
    c = np.asarray(c, dtype=np.float64)
    emax = np.asarray(emax, dtype=np.float64)
    ec50 = np.asarray(ec50, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    positive = c > 0
    safe_c = np.where(positive, c, 1.0)
    with np.errstate(over="ignore"):
        ratio = (ec50 / safe_c) ** h
    out = np.where(positive, emax / (1.0 + ratio), 0.0)
    return out if out.ndim else float(out)


@dataclass(frozen=True, eq=False)
class Effects:
    """Combined drug effects during one step (see the module docstring for the rules).

    Per target (arrays of length n_targets, in ``tumor.resistance_targets`` order):
    ``kill_rate_per_day``, ``arrest`` (0..1), ``antigenicity_boost``, and what reaches clones
    resistant to the target, ``resistant_kill_rate_per_day`` and ``resistant_arrest`` (zero
    arrays unless a drug has a ``resistant_response``; None stands for zeros). Global scalars:
    ``infiltration_boost``, ``suppressive_recruitment_factor`` (<= 1),
    ``suppressive_cytokine_factor`` (<= 1), ``t_cell_toxicity_rate_per_day``,
    ``checkpoint_blockade`` (0..1), ``exhaustion_relief`` (0..1), ``priming_boost``,
    ``treg_depletion_rate_per_day``.
    """
    kill_rate_per_day: np.ndarray
    arrest: np.ndarray
    antigenicity_boost: np.ndarray
    infiltration_boost: float = 0.0
    suppressive_recruitment_factor: float = 1.0
    suppressive_cytokine_factor: float = 1.0
    t_cell_toxicity_rate_per_day: float = 0.0
    checkpoint_blockade: float = 0.0
    exhaustion_relief: float = 0.0
    priming_boost: float = 0.0
    treg_depletion_rate_per_day: float = 0.0
    resistant_kill_rate_per_day: np.ndarray | None = None
    resistant_arrest: np.ndarray | None = None

    def __post_init__(self):
        for name in ("resistant_kill_rate_per_day", "resistant_arrest"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(len(self.kill_rate_per_day)))

    @classmethod
    def none(cls, n_targets: int) -> "Effects":
        """No drug: zero rates and boosts, factors 1."""
        return cls(np.zeros(n_targets), np.zeros(n_targets), np.zeros(n_targets))

    @property
    def n_targets(self) -> int:
        return len(self.kill_rate_per_day)

    def is_none(self) -> bool:
        """True when these effects change nothing."""
        return (not self.kill_rate_per_day.any() and not self.arrest.any()
                and not self.antigenicity_boost.any()
                and not self.resistant_kill_rate_per_day.any()
                and not self.resistant_arrest.any() and self.infiltration_boost == 0
                and self.suppressive_recruitment_factor == 1
                and self.suppressive_cytokine_factor == 1
                and self.t_cell_toxicity_rate_per_day == 0 and self.checkpoint_blockade == 0
                and self.exhaustion_relief == 0 and self.priming_boost == 0
                and self.treg_depletion_rate_per_day == 0)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _bliss(fractions) -> float:
    """1 - prod(1 - E_i): the combined effect of independent inhibitors."""
    return float(1.0 - np.prod(1.0 - np.asarray(fractions, dtype=np.float64)))


class EffectModel:
    """The effect channels of a scenario's drugs, ready to evaluate each step.

    ``drugs``: name -> :class:`simulator.treatment.drugs.Drug` in the order of the concentration vector
    (the order of :class:`simulator.treatment.pharmacokinetics.Pharmacokinetics`); ``targets``: the
    tumour's resistance targets, in clone-bit order; ``local``: drugs whose ``kill`` and
    ``arrest`` act per site at their tissue concentration (:mod:`simulator.model.penetration`),
    left out of these clone-wide effects.
    """

    def __init__(self, drugs: Mapping[str, object], targets: Sequence[str],
                 local: Sequence[str] = ()):
        self.names = tuple(drugs)
        self.targets = tuple(targets)
        target_index = {t: i for i, t in enumerate(self.targets)}
        #: channel -> list of (drug index, target index or -1, emax, ec50, hill)
        self.terms: dict[str, list[tuple[int, int, float, float, float]]] = {}
        #: drug index -> the share of its kill and arrest reaching resistant clones
        self.resistant_response = [d.resistant_response for d in drugs.values()]
        for i, drug in enumerate(drugs.values()):
            for channel, e in drug.active_channels().items():
                if channel in LOCAL_CHANNELS and self.names[i] in local:
                    continue
                t = -1
                if channel in PER_TARGET_CHANNELS:
                    if drug.target not in target_index:
                        raise ValueError(f"drug {self.names[i]!r}: target {drug.target!r} "
                                         f"is not one of {self.targets}")
                    t = target_index[drug.target]
                self.terms.setdefault(channel, []).append(
                    (i, t, e.emax, e.ec50_mg_per_l, e.hill))
        # every term in one array, so each step evaluates all Hill functions in one call
        # (per term, numpy's overhead was ~10 us: half the doses phase of a small lattice;
        # the vectorised call gives the same bits as term by term, tested)
        flat = [(channel, term) for channel, terms in self.terms.items() for term in terms]
        self._position = {}
        for k, (channel, term) in enumerate(flat):
            self._position.setdefault(channel, []).append((k, term[1]))
        columns = list(zip(*[term for _, term in flat])) or [(), (), (), (), ()]
        self._drug = np.array(columns[0], dtype=np.int64)
        self._emax, self._ec50, self._hill = (np.array(c, dtype=np.float64)
                                              for c in columns[2:])

    def _values(self, channel: str, values: list):
        """(target index, E) of every active term of a channel, from all terms' E."""
        return [(t, values[k]) for k, t in self._position.get(channel, ())]

    def _resistant_values(self, channel: str, values: list):
        """(target index, E x the drug's resistant_response) of a channel's terms."""
        return [(t, values[k] * self.resistant_response[self._drug[k]])
                for k, t in self._position.get(channel, ())]

    def at(self, concentrations) -> Effects:
        """Combined effects at the drugs' concentrations (mg/L, one per drug)."""
        conc = np.asarray(concentrations, dtype=np.float64)
        if conc.shape != (len(self.names),):
            raise ValueError(f"expected {len(self.names)} concentrations, got shape "
                             f"{conc.shape}")
        values = hill(conc[self._drug], self._emax, self._ec50, self._hill).tolist()
        n = len(self.targets)
        kill, boost = np.zeros(n), np.zeros(n)
        survive = np.ones(n)               # prod(1 - arrest) per target
        for t, e in self._values("kill", values):
            kill[t] += e
        for t, e in self._values("arrest", values):
            survive[t] *= 1.0 - e
        for t, e in self._values("antigenicity", values):
            boost[t] += e
        resistant_kill = resistant_arrest = None          # Effects' zeros: no share given
        if any(self.resistant_response):
            resistant_kill, resistant_survive = np.zeros(n), np.ones(n)
            for t, e in self._resistant_values("kill", values):
                resistant_kill[t] += e
            for t, e in self._resistant_values("arrest", values):
                resistant_survive[t] *= 1.0 - e
            resistant_arrest = 1.0 - resistant_survive

        def total(channel):
            return float(sum(e for _, e in self._values(channel, values)))

        def bliss(channel):
            return _bliss([e for _, e in self._values(channel, values)])

        suppressive = 1.0 - bliss("microenvironment")
        return Effects(
            kill_rate_per_day=kill,
            arrest=1.0 - survive,
            antigenicity_boost=boost,
            infiltration_boost=total("infiltration"),
            suppressive_recruitment_factor=suppressive,
            suppressive_cytokine_factor=suppressive,
            t_cell_toxicity_rate_per_day=total("t_cell_toxicity"),
            checkpoint_blockade=bliss("checkpoint_blockade"),
            exhaustion_relief=bliss("exhaustion_relief"),
            priming_boost=total("priming"),
            treg_depletion_rate_per_day=total("treg_depletion"),
            resistant_kill_rate_per_day=resistant_kill,
            resistant_arrest=resistant_arrest,
        )


def combine_effects(drugs: Mapping[str, object], concentrations, targets: Sequence[str]) -> Effects:
    """One-off :meth:`EffectModel.at` (the engine keeps an :class:`EffectModel`)."""
    return EffectModel(drugs, targets).at(concentrations)


def clone_modifiers(effects: Effects, n_targets: int, n_clones: int | None = None):
    """Per-clone arrays over the ``n_clones`` clones (default 2**n_targets; index = clone
    bit mask, bits above the targets - the escape bit - untouched by drugs):

    ``(extra_death_rate_per_day, division_rate_factor, antigenicity_factor)``, float64. A
    clone resistant to target t (bit t set) gets only the resistant share of target t's kill
    and arrest (none, unless a drug has a ``resistant_response``) and none of its antigenicity.
    """
    if effects.n_targets != n_targets:
        raise ValueError(f"effects are for {effects.n_targets} targets, not {n_targets}")
    masks = np.arange(n_clones or 1 << n_targets)
    # sensitive[m, t] is True when clone m is sensitive to target t
    sensitive = ((masks[:, None] >> np.arange(n_targets)[None, :]) & 1) == 0
    death = np.where(sensitive, effects.kill_rate_per_day[None, :],
                     effects.resistant_kill_rate_per_day[None, :]).sum(axis=1)
    division = np.where(sensitive, 1.0 - effects.arrest[None, :],
                        1.0 - effects.resistant_arrest[None, :]).prod(axis=1)
    antigenicity = 1.0 + (sensitive * effects.antigenicity_boost[None, :]).sum(axis=1)
    return (death.astype(np.float64), division.astype(np.float64),
            antigenicity.astype(np.float64))


__all__ = ["EffectModel", "Effects", "clone_modifiers", "combine_effects", "hill"]
