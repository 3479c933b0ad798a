"""Rates in physical units become per-step probabilities here, and only here.

A process of rate k acting for dt gives at least one event with probability
``1 - exp(-k dt)`` (HAL's ``ProbScale``); ``expm1`` keeps tiny rates exact.
"""
import numpy as np


def step_hazard(rate_per_day, dt_hours):
    """Expected events per step, rate x dt (vectorised): per_step_probability = 1 - exp(-it)."""
    rate = np.asarray(rate_per_day, dtype=np.float64)
    if np.any(rate < 0):
        raise ValueError("rates must be non-negative")
    return rate * (dt_hours / 24.0)


def per_step_probability(rate_per_day, dt_hours):
    """P(event within one step) for a Poisson process of the given rate (vectorised)."""
    return -np.expm1(-step_hazard(rate_per_day, dt_hours))


def per_step_probability_hours(rate_per_hour, dt_hours):
    return per_step_probability(np.asarray(rate_per_hour, dtype=np.float64) * 24.0, dt_hours)
