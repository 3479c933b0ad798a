"""Gaussian-process emulators: one per fitted target, over the unit cube of the parameters.

Each simulated parameter set gives a noisy estimate of the target's statistic (a finite
cohort of virtual patients) with a known sampling variance; the emulator is a GP regression
of those estimates with that variance on the diagonal (heteroscedastic nugget, scikit-
learn's ``alpha``), so it predicts the statistic of an infinite cohort with its own
uncertainty (Andrianakis et al. 2015 PLoS Comput Biol 11:e1003968, section "Emulation").
Kernel: constant x anisotropic squared exponential + a small white-noise term for what the
sampling variance misses; hyperparameters by maximum likelihood with seeded restarts.
Outputs are standardised before fitting (mean 0, sd 1) and mapped back on prediction.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class Emulator:
    """A fitted emulator of one target statistic."""
    model: object
    mean: float
    scale: float

    def predict(self, unit_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the statistic at each point of the unit cube."""
        mu, sd = self.model.predict(np.atleast_2d(unit_points), return_std=True)
        return self.mean + self.scale * mu, (self.scale * sd) ** 2


def fit(unit_points: np.ndarray, values: np.ndarray, variances: np.ndarray,
        seed: int) -> Emulator:
    """Fit a GP to ``values`` (one per point) observed with ``variances``."""
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    except ImportError:
        from simulator.schema import ScenarioError
        raise ScenarioError("needs scikit-learn: pip install 'tumorsim[calibration]'",
                            source="calibrate") from None
    x = np.atleast_2d(np.asarray(unit_points, float))
    y = np.asarray(values, float)
    mean = float(y.mean())
    scale = float(y.std()) or 1.0
    d = x.shape[1]
    kernel = (ConstantKernel(1.0, (1e-2, 1e2))
              * RBF(length_scale=np.full(d, 0.5), length_scale_bounds=(0.05, 20.0))
              + WhiteKernel(1e-3, (1e-8, 1e-1)))
    model = GaussianProcessRegressor(kernel=kernel,
                                     alpha=np.maximum(np.asarray(variances, float), 0.0)
                                     / scale ** 2 + 1e-10,
                                     n_restarts_optimizer=2, random_state=seed)
    with warnings.catch_warnings():
        # few points make the optimiser stop at a bound; the fit is still usable
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, (y - mean) / scale)
    return Emulator(model, mean, scale)


def leave_one_out(emulator: Emulator, unit_points, values, variances) -> np.ndarray:
    """Standardised leave-one-out errors (value - prediction) / sd with the fitted
    hyperparameters held fixed: the emulator diagnostic of Bastos & O'Hagan 2009
    (Technometrics 51:425); about 95% should lie within +-2."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    x = np.atleast_2d(np.asarray(unit_points, float))
    y, v = np.asarray(values, float), np.asarray(variances, float)
    errors = np.full(len(y), np.nan)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        if keep.sum() < 2:
            break
        model = GaussianProcessRegressor(kernel=emulator.model.kernel_, optimizer=None,
                                         alpha=v[keep] / emulator.scale ** 2 + 1e-10)
        model.fit(x[keep], (y[keep] - emulator.mean) / emulator.scale)
        mu, sd = model.predict(x[i:i + 1], return_std=True)
        prediction = emulator.mean + emulator.scale * mu[0]
        errors[i] = (y[i] - prediction) / np.sqrt((emulator.scale * sd[0]) ** 2 + v[i])
    return errors
