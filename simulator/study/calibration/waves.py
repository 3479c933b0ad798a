"""History matching in waves (Vernon, Goldstein & Bower 2010 Bayesian Anal 5:619;
Andrianakis et al. 2015 PLoS Comput Biol 11:e1003968).

Wave 1 simulates a Latin hypercube over the whole box. After each wave, one Gaussian-
process emulator per fitted target is fitted to every simulated parameter set so far, and a
parameter set x is ruled out when, for some target i,

    I_i(x) = |z_i - E[f_i(x)]| / sqrt(V_obs,i + V_md,i + V_em,i(x)) > cut

with z_i the published value, V_obs,i its variance from the 95% interval, V_md,i the model
discrepancy (``discrepancy_fraction`` x |z_i|, squared) and V_em,i(x) the emulator's
variance. The next wave's points are a space-filling pick (maximin) among Latin-hypercube
candidates that no wave's emulators rule out. After the last wave every simulated set is
judged on its simulated values directly (the emulator's variance replaced by the sampling
variance of the simulated statistic): those with every I_i <= cut are the accepted sets,
and the one with the smallest largest I_i is the best fit.

Statistics that can be "not reached" within the follow-up (medians) enter the emulators
capped at the arm's follow-up: a censored value, "at least this long".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator.analysis import targets as targets_mod
from simulator.analysis.statistics import DAYS_PER_MONTH, Z95
from simulator.study.calibration import design, emulator as emulator_mod
from simulator.study.calibration.simulate import Task, execute
from simulator.study.calibration.spec import Calibration, with_values
from simulator.study.layout import Arm

BOOTSTRAP_RESAMPLES = 200
MAX_CANDIDATE_BATCHES = 10


@dataclass
class PointResult:
    """One simulated parameter set: its statistics for every fitted target."""
    wave: int
    point: int
    unit: np.ndarray
    values: dict
    complete: bool
    estimates: dict = field(default_factory=dict)    # target id -> Estimate
    value: dict = field(default_factory=dict)        # target id -> emulated value (capped)
    variance: dict = field(default_factory=dict)     # target id -> sampling variance
    implausibility: dict = field(default_factory=dict)

    @property
    def max_implausibility(self) -> float:
        return max(self.implausibility.values()) if self.complete else math.inf


def arms_at(calibration: Calibration, values, seed: int | None = None, *,
            check: bool = False) -> tuple[Arm, ...]:
    """The fitting arms (with ``check``: and the predict arms) with the fitted keys set to
    ``values`` (and the seed, if given)."""
    out = []
    for arm in calibration.check_arms if check else calibration.arms:
        scenario = with_values(arm.toml, calibration.parameters, values)
        if seed is not None:
            from simulator.scenario import replace
            scenario = replace(scenario, simulation={"seed": seed})
        out.append(Arm(arm.name, arm.source, scenario.to_toml()))
    return tuple(out)


def follow_up_months(arm: Arm) -> float:
    from simulator import scenario as scenario_mod
    sim = scenario_mod.from_toml(arm.toml).simulation
    return (sim.duration_days - sim.treatment_start_day) / DAYS_PER_MONTH


def discrepancy_variance(target, fraction: float) -> float:
    return (fraction * abs(target.value)) ** 2


def observed_variance(target) -> float:
    return target.sd ** 2


def sampling_variance(target, rows, est, cap: float, scan_months: float,
                      rng: np.random.Generator) -> float:
    """Variance of the simulated statistic over a cohort of ``len(rows)`` patients: from
    its own 95% interval for proportions (Wilson / Kaplan-Meier, never zero); for medians a
    bootstrap over patients (capped at the follow-up) plus the scan-quantisation variance
    (a time read at scans spaced ``scan_months`` apart: spacing^2 / 12)."""
    if target.statistic in targets_mod.PROPORTIONS:
        if math.isfinite(est.low) and math.isfinite(est.high):
            return ((est.high - est.low) / (2 * Z95)) ** 2
        return 0.25 / max(len(rows), 1)
    draws = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        sample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
        value = targets_mod.estimate(target, sample).value
        if not math.isnan(value):
            draws.append(min(value, cap))
    spread = float(np.var(draws)) if len(draws) > 1 else cap ** 2 / 4
    return spread + scan_months ** 2 / 12


def summarise(calibration: Calibration, records: list[dict], wave: int, point: int,
              unit: np.ndarray, values: dict) -> PointResult:
    """The fitted targets' statistics at one parameter set from its replicates' records."""
    result = PointResult(wave, point, unit, values,
                         all(r is not None and r["status"] == "complete" for r in records))
    if not result.complete:
        return result
    rng = design.generator(calibration.spec.seed, wave, 100 + point)
    follow = {a.name: follow_up_months(a) for a in calibration.arms}
    for target in calibration.fit:
        rows = [r["arms"][target.arm] for r in records]
        est = targets_mod.estimate(target, rows)
        cap = follow[target.arm]
        scan_months = _scan_months(calibration, target.arm)
        value = min(est.value, cap) if not math.isnan(est.value) else math.nan
        result.estimates[target.id] = est
        result.value[target.id] = value
        result.variance[target.id] = sampling_variance(target, rows, est, cap, scan_months,
                                                       rng)
        result.implausibility[target.id] = implausibility(
            target, value, result.variance[target.id], calibration.spec.discrepancy_fraction)
    return result


def _scan_months(calibration: Calibration, arm_name: str) -> float:
    from simulator import scenario as scenario_mod
    arm = next(a for a in calibration.arms if a.name == arm_name)
    return scenario_mod.from_toml(arm.toml).endpoints.scan_interval_days / DAYS_PER_MONTH


def implausibility(target, value, variance, fraction: float):
    """|z - value| / sqrt(V_obs + V_md + variance); inf where the statistic is undefined
    (e.g. a median time to response with no responder)."""
    if np.ndim(value) == 0 and math.isnan(value):
        return math.inf
    total = observed_variance(target) + discrepancy_variance(target, fraction) + variance
    return np.abs(target.value - value) / np.sqrt(total)


@dataclass
class WaveEmulators:
    wave: int
    emulators: dict          # target id -> Emulator
    loo_outside_2sd: dict    # target id -> fraction of |LOO error| > 2 (diagnostic)

    def max_implausibility(self, calibration: Calibration, unit: np.ndarray) -> np.ndarray:
        worst = np.zeros(len(unit))
        for target in calibration.fit:
            mean, var = self.emulators[target.id].predict(unit)
            worst = np.maximum(worst, implausibility(
                target, mean, var, calibration.spec.discrepancy_fraction))
        return worst


def fit_emulators(calibration: Calibration, results: list[PointResult], wave: int) -> WaveEmulators:
    done = [r for r in results if r.complete]
    emulators, loo = {}, {}
    for target in calibration.fit:
        usable = [r for r in done if not math.isnan(r.value[target.id])]
        if len(usable) < 2:
            raise_not_enough(target, len(usable))
        x = np.array([r.unit for r in usable])
        y = np.array([r.value[target.id] for r in usable])
        v = np.array([r.variance[target.id] for r in usable])
        emulators[target.id] = emulator_mod.fit(x, y, v, calibration.spec.seed + wave)
        errors = emulator_mod.leave_one_out(emulators[target.id], x, y, v)
        finite = errors[np.isfinite(errors)]
        loo[target.id] = float(np.mean(np.abs(finite) > 2)) if finite.size else math.nan
    return WaveEmulators(wave, emulators, loo)


def raise_not_enough(target, n):
    from simulator.schema import ScenarioError
    raise ScenarioError(f"target {target.id}: only {n} parameter set(s) gave a defined "
                        f"{target.what} (e.g. no responders); widen the ranges or drop it",
                        source="calibrate")


def next_design(calibration: Calibration, history: list[WaveEmulators], ran: np.ndarray,
                wave: int) -> tuple[np.ndarray, int, int]:
    """Unit points for ``wave`` not ruled out by any earlier wave's emulators, with the
    number of candidates drawn and kept (their ratio estimates the not-ruled-out volume)."""
    spec, d = calibration.spec, len(calibration.parameters)
    kept, drawn = [], 0
    for batch in range(MAX_CANDIDATE_BATCHES):
        rng = design.generator(spec.seed, wave, design.STREAM_CANDIDATES, batch)
        cand = design.latin_hypercube(spec.candidates, d, rng, optimise=False)
        drawn += len(cand)
        worst = np.zeros(len(cand))
        for emulators in history:
            worst = np.maximum(worst, emulators.max_implausibility(calibration, cand))
        ok = worst <= spec.implausibility_cut
        kept += [(w, c) for w, c in zip(worst[ok], cand[ok])]
        if len(kept) >= 5 * spec.points_per_wave:
            break
    if not kept:
        return np.empty((0, d)), drawn, 0
    worst = np.array([w for w, _ in kept])
    points = np.array([c for _, c in kept])
    chosen = design.maximin_subset(points, spec.points_per_wave, int(np.argmin(worst)), ran)
    return points[chosen], drawn, len(kept)


def run_waves(calibration: Calibration, store, directory, *, workers=1, scheduler=None,
              keep_runs=False, log=print) -> tuple[list[PointResult], list[dict]]:
    """Every wave: design, simulate (resuming from the store), summarise, emulate."""
    spec, params = calibration.spec, calibration.parameters
    results: list[PointResult] = []
    history: list[WaveEmulators] = []
    wave_rows = []
    for wave in range(1, spec.waves + 1):
        if wave == 1:
            unit = design.latin_hypercube(
                spec.points_per_wave, len(params),
                design.generator(spec.seed, wave, design.STREAM_WAVE_DESIGN))
            drawn, kept = spec.points_per_wave, spec.points_per_wave
        else:
            ran = np.array([r.unit for r in results])
            unit, drawn, kept = next_design(calibration, history, ran, wave)
            if len(unit) == 0:
                log(f"wave {wave}: every candidate is ruled out by the emulators; stopping")
                wave_rows.append(dict(wave=wave, points=0, candidates=drawn, not_ruled_out=0))
                break
        unit = design.snap(unit, params)
        values = design.to_values(unit, params)
        tasks, points = [], []
        for p, (u, v) in enumerate(zip(unit, values)):
            named = {param.label: param.typed(x) for param, x in zip(params, v)}
            arms = arms_at(calibration, v)
            points.append((p, u, named))
            tasks += [Task.make(wave, p, r, named, arms) for r in range(spec.replicates)]
        log(f"wave {wave}: {len(points)} parameter sets x {spec.replicates} replicates x "
            f"{len(calibration.arms)} arms ({sum(t.key not in store for t in tasks)} tasks to "
            "run)")
        records = execute(tasks, store, directory, workers=workers, scheduler=scheduler,
                          keep_runs=keep_runs, progress=f"wave {wave}", log=log)
        by_point = {}
        for task, record in zip(tasks, records):
            by_point.setdefault(task.point, []).append(record)
        for p, u, named in points:
            results.append(summarise(calibration, by_point[p], wave, p, u, named))
        failed = [r for r in records if r["status"] != "complete"]
        if failed:
            log(f"wave {wave}: {len(failed)} of {len(records)} tasks failed (their parameter "
                f"sets are left out); first: {failed[0]['error']}")
            if len(failed) == len(records):
                from simulator.schema import ScenarioError
                raise ScenarioError(f"every simulation of wave {wave} failed; first: "
                                    f"{failed[0]['error']}", source="calibrate")
        history.append(fit_emulators(calibration, results, wave))
        wave_rows.append(dict(wave=wave, points=len(points), candidates=drawn,
                              not_ruled_out=kept,
                              not_ruled_out_fraction=kept / drawn if drawn else math.nan,
                              **{f"loo_outside_2sd:{k}": v
                                 for k, v in history[-1].loo_outside_2sd.items()}))
    return results, wave_rows


def best_and_accepted(calibration: Calibration, results: list[PointResult]):
    """Accepted sets (every simulated I <= cut) and the best fit (smallest largest I; ties
    by the sum of squared I)."""
    cut = calibration.spec.implausibility_cut
    done = [r for r in results if r.complete]
    accepted = [r for r in done if r.max_implausibility <= cut]
    best = min(done, key=lambda r: (r.max_implausibility,
                                    sum(i * i for i in r.implausibility.values())),
               default=None)
    return best, accepted
