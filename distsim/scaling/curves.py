"""Learning curves and model-size growth with training-data size.

Two laws from Hestness et al. 2017 ("Deep Learning Scaling is Predictable,
Empirically", seed 004) as used by the PPoPP 2019 paper (seed 001, section 3,
equations 1 and 2):

- generalization error ``eps(m) = alpha * m**beta_g`` in the power-law region,
  bounded above by the best-guess error (small-data region) and below by the
  irreducible error (irreducible region);
- model size ``p(m) = sigma * m**beta_p``.

``m`` is the training-set size in samples of the domain (words, characters,
images, ...); ``eps`` is in the unit of the domain's metric (nat/word, a
fraction for error rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import ConfigError, require_positive


class CurveRegion(str, Enum):
    """The three regions of a learning curve (seed 004; PPoPP 2019 Figure 6)."""

    SMALL_DATA = "small-data"
    POWER_LAW = "power-law"
    IRREDUCIBLE = "irreducible"


def _as_data_size(field: str, m):
    """Validate a data size (scalar or array): finite and positive."""
    arr = np.asarray(m, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ConfigError(f"{field} must be finite and positive, got {m!r}")
    return arr


def _scalar_or_array(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


@dataclass(frozen=True, kw_only=True)
class LearningCurve:
    """Generalization error as a function of training-set size.

    ``error(m) = min(best_guess_error, max(irreducible_error, alpha * m**beta_g))``

    The three regions of seed 004's sketch: the *small-data* region, where the
    model does no better than best guessing; the *power-law* region, where
    ``eps = alpha * m**beta_g`` exactly; the *irreducible* region, a floor no
    amount of data lowers.  The corners between regions are sharp by
    construction (the seeds give no transition shape).  With the defaults
    (``irreducible_error=0``, ``best_guess_error=inf``) the curve is the pure
    power law of PPoPP 2019 equation (1).

    Parameters
    ----------
    alpha : float
        Power-law coefficient, in the error unit times samples**(-beta_g).
    beta_g : float
        Power-law exponent, negative (PPoPP 2019: in [-0.5, 0]; measured
        -0.07 to -0.35 in seed 004).
    irreducible_error : float, default 0
        Floor of the curve, in the error unit; non-negative.
    best_guess_error : float, default inf
        Ceiling of the curve (error of best guessing); above the floor.

    Examples
    --------
    >>> c = LearningCurve(alpha=13.0, beta_g=-0.066)   # word LM, Table 1
    >>> round(c.error(768e6), 2)
    3.37
    """

    alpha: float
    beta_g: float
    irreducible_error: float = 0.0
    best_guess_error: float = math.inf

    def __post_init__(self) -> None:
        require_positive("alpha", self.alpha)
        beta = _finite("beta_g", self.beta_g)
        if beta >= 0:
            raise ConfigError(f"beta_g must be negative (error falls with data), got {self.beta_g!r}")
        floor = require_positive("irreducible_error", self.irreducible_error, allow_zero=True)
        ceiling = self.best_guess_error
        if isinstance(ceiling, bool) or not isinstance(ceiling, (int, float)) or ceiling != ceiling:
            raise ConfigError(f"best_guess_error must be a number, got {ceiling!r}")
        if ceiling <= floor:
            raise ConfigError(
                f"best_guess_error must exceed irreducible_error={floor!r}, got {ceiling!r}"
            )

    def power_law(self, m):
        """``alpha * m**beta_g`` without the floor or the ceiling."""
        arr = _as_data_size("data size m", m)
        return _scalar_or_array(self.alpha * arr**self.beta_g)

    def error(self, m):
        """Error at training-set size ``m`` (samples); scalar or array."""
        raw = np.asarray(self.power_law(m), dtype=float)
        out = np.minimum(self.best_guess_error, np.maximum(self.irreducible_error, raw))
        return _scalar_or_array(out)

    def region(self, m) -> CurveRegion:
        """Which region of the curve the data size ``m`` falls in."""
        raw = float(self.power_law(float(m)))
        if raw >= self.best_guess_error:
            return CurveRegion.SMALL_DATA
        if raw <= self.irreducible_error:
            return CurveRegion.IRREDUCIBLE
        return CurveRegion.POWER_LAW

    def data_for_error(self, target_error: float) -> float:
        """Smallest training-set size (samples) whose error is ``target_error``.

        Solves ``alpha * m**beta_g = target_error``, i.e.
        ``m = (target_error / alpha) ** (1 / beta_g)``.

        Raises
        ------
        ConfigError
            If the target is below the irreducible error (no data reaches it)
            or above the best-guess error (the curve never reads that high).
        """
        target = require_positive("target_error", target_error)
        if target < self.irreducible_error:
            raise ConfigError(
                f"target_error={target!r} is below the irreducible error "
                f"{self.irreducible_error!r}: no amount of data reaches it"
            )
        if target > self.best_guess_error:
            raise ConfigError(
                f"target_error={target!r} is above the best-guess error "
                f"{self.best_guess_error!r}: best guessing already does better"
            )
        return (target / self.alpha) ** (1.0 / self.beta_g)


@dataclass(frozen=True, kw_only=True)
class ModelSizeLaw:
    """Parameters needed to fit a training set: ``p(m) = sigma * m**beta_p``.

    PPoPP 2019 equation (2).  ``params_per_unit`` converts the law's output to
    a parameter count: Table 1's sigmas give millions of parameters (the
    word-LM law at 768M words gives 1040, the paper's "roughly 1B parameters";
    see :mod:`distsim.scaling.table1`), so those use ``params_per_unit=1e6``.

    Parameters
    ----------
    sigma : float
        Coefficient, positive.
    beta_p : float
        Exponent, positive (PPoPP 2019: in [0.5, 1)).
    params_per_unit : float, default 1
        Parameters per unit of ``sigma * m**beta_p``.

    Examples
    --------
    >>> law = ModelSizeLaw(sigma=9.4e-4, beta_p=0.68, params_per_unit=1e6)
    >>> round(law.params(768e6) / 1e9, 2)
    1.04
    """

    sigma: float
    beta_p: float
    params_per_unit: float = 1.0

    def __post_init__(self) -> None:
        require_positive("sigma", self.sigma)
        require_positive("beta_p", self.beta_p)
        require_positive("params_per_unit", self.params_per_unit)

    def params(self, m):
        """Parameter count for a training set of ``m`` samples."""
        arr = _as_data_size("data size m", m)
        return _scalar_or_array(self.params_per_unit * self.sigma * arr**self.beta_p)

    def data_for_params(self, params: float) -> float:
        """Training-set size (samples) that a model of ``params`` fits."""
        p = require_positive("params", params)
        return (p / (self.params_per_unit * self.sigma)) ** (1.0 / self.beta_p)


def _finite(field: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{field} must be a finite number, got {value!r}")
    return float(value)
