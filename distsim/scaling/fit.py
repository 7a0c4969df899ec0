"""Fitting the scaling laws' constants to measured points.

Every law is fitted in log space (residuals ``ln y - ln f(x)``), the space in
which the laws are straight lines or nearly so and in which measurement
errors of losses and step counts are roughly proportional.  Power laws are
ordinary least squares on ``(ln x, ln y)``; laws with an additive term use
:func:`scipy.optimize.curve_fit` started from a linear fit.  Confidence
intervals are Student-t intervals from the fit's covariance (for ``alpha``
and ``sigma``, the exponential of the interval of their logarithm, so they
stay positive).

==================  =======================================  ===========  ==========
law                 form                                     default x    default y
==================  =======================================  ===========  ==========
``learning-curve``  ``loss = alpha * data**beta_g``          ``data``     ``loss``
``model-size``      ``params = sigma * data**beta_p``        ``data``     ``params``
``steps``           ``steps = a * params**(-k_model) + b``   ``params``   ``steps``
``critical-batch``  ``steps = s_min * (1 + b_noise / batch)``  ``batch``  ``steps``
==================  =======================================  ===========  ==========
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..registry import Registry


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """Constants of a fitted law with their goodness of fit.

    Attributes
    ----------
    law : str
        Law name (see the module table).
    constants : dict
        Fitted constant name -> value.
    intervals : dict
        Constant name -> (low, high), the ``confidence`` interval.
    r2_log : float
        Coefficient of determination of ``ln y``; 1 is a perfect fit.
    n_points : int
        Points used.
    confidence : float
        Level of the intervals (0.95).
    """

    law: str
    constants: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)
    r2_log: float = 1.0
    n_points: int = 0
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return {
            "law": self.law,
            "n_points": self.n_points,
            "constants": dict(self.constants),
            "confidence": self.confidence,
            "intervals": {k: [lo, hi] for k, (lo, hi) in self.intervals.items()},
            "r2_log": self.r2_log,
        }


@dataclass(frozen=True)
class _LawSpec:
    fit: Callable[[np.ndarray, np.ndarray, float], FitResult]
    n_constants: int
    x: str
    y: str
    summary: str


LAWS: Registry[_LawSpec] = Registry("law")


def _check_points(law: str, x, y, n_constants: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate measured points: finite, positive, enough and not all at one x."""
    try:
        xs = np.asarray(x, dtype=float).ravel()
        ys = np.asarray(y, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ConfigError(f"{law}: points must be numbers") from None
    if xs.size != ys.size:
        raise ConfigError(f"{law}: x has {xs.size} points but y has {ys.size}")
    for name, arr in (("x", xs), ("y", ys)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ConfigError(f"{law}: {name} has {int(bad.sum())} missing or non-finite value(s) (first at row {int(np.argmax(bad))})")
        if (arr <= 0).any():
            i = int(np.argmax(arr <= 0))
            raise ConfigError(f"{law}: {name} must be positive (fits are in log space), got {arr[i]!r} at row {i}")
    need = n_constants + 1
    if xs.size < need:
        raise ConfigError(f"{law}: needs at least {need} points to fit {n_constants} constants with an error estimate, got {xs.size}")
    distinct = np.unique(xs).size
    if distinct < n_constants:
        what = f"all x are equal ({float(xs[0])!r})" if distinct == 1 else f"only {distinct} distinct x values"
        raise ConfigError(f"{law}: {what}; needs at least {n_constants} distinct x values")
    return xs, ys


def _r2(log_y: np.ndarray, log_fit: np.ndarray) -> float:
    ss_res = float(np.sum((log_y - log_fit) ** 2))
    ss_tot = float(np.sum((log_y - log_y.mean()) ** 2))
    if ss_tot == 0.0:  # all y equal: a flat law fits perfectly or not at all
        return 1.0 if ss_res <= 1e-24 else 0.0
    return 1.0 - ss_res / ss_tot


def _t(confidence: float, dof: int) -> float:
    from scipy import stats  # here, not at import: scipy.stats takes ~0.8 s to import

    return float(stats.t.ppf(0.5 + confidence / 2.0, dof))


def _fit_power(law: str, names: tuple[str, str], x, y, confidence: float) -> FitResult:
    """OLS of ``ln y = ln c + k ln x``; constants ``names = (c, k)``."""
    xs, ys = _check_points(law, x, y, 2)
    lx, ly = np.log(xs), np.log(ys)
    design = np.column_stack([np.ones_like(lx), lx])
    coef, *_ = np.linalg.lstsq(design, ly, rcond=None)
    resid = ly - design @ coef
    dof = xs.size - 2
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv(design.T @ design)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    t = _t(confidence, dof)
    c_name, k_name = names
    return FitResult(
        law=law,
        constants={c_name: float(math.exp(coef[0])), k_name: float(coef[1])},
        intervals={
            c_name: (float(math.exp(coef[0] - t * se[0])), float(math.exp(coef[0] + t * se[0]))),
            k_name: (float(coef[1] - t * se[1]), float(coef[1] + t * se[1])),
        },
        r2_log=_r2(ly, design @ coef),
        n_points=int(xs.size),
        confidence=confidence,
    )


def fit_learning_curve(data, loss, *, confidence: float = 0.95) -> FitResult:
    """Fit ``loss = alpha * data**beta_g`` (power-law region points only).

    Examples
    --------
    >>> m = [1e6, 1e7, 1e8]
    >>> r = fit_learning_curve(m, [13.0 * v**-0.066 for v in m])
    >>> round(r.constants["alpha"], 6), round(r.constants["beta_g"], 6)
    (13.0, -0.066)
    """
    return _fit_power("learning-curve", ("alpha", "beta_g"), data, loss, confidence)


def fit_model_size(data, params, *, confidence: float = 0.95) -> FitResult:
    """Fit ``params = sigma * data**beta_p``."""
    return _fit_power("model-size", ("sigma", "beta_p"), data, params, confidence)


def _fit_curve(law, func, xs, ys, p0, bounds, names, log_names, confidence) -> FitResult:
    """Nonlinear least squares of ``ln y`` against ``ln func(x, *theta)``."""
    from scipy import optimize  # here, not at import (slow to import)

    ly = np.log(ys)

    def log_model(xv, *theta):
        val = func(xv, *theta)
        return np.log(np.maximum(val, 1e-300))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theta, cov = optimize.curve_fit(log_model, xs, ly, p0=p0, bounds=bounds, maxfev=20000)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"{law}: the points do not determine the fit ({exc})") from None
    if not np.all(np.isfinite(theta)):
        raise ConfigError(f"{law}: the points do not determine the fit (non-finite constants)")
    dof = xs.size - len(theta)
    # curve_fit returns inf covariance when the Jacobian is rank-deficient.
    if not np.all(np.isfinite(cov)):
        raise ConfigError(f"{law}: the points do not determine every constant ({', '.join(names)})")
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    t = _t(confidence, dof)
    intervals = {}
    for i, name in enumerate(names):
        if name in log_names:  # positive scale constants: interval of the log
            rel = t * se[i] / theta[i]
            intervals[name] = (float(theta[i] * math.exp(-rel)), float(theta[i] * math.exp(rel)))
        else:
            intervals[name] = (float(theta[i] - t * se[i]), float(theta[i] + t * se[i]))
    return FitResult(
        law=law,
        constants={n: float(v) for n, v in zip(names, theta)},
        intervals=intervals,
        r2_log=_r2(ly, log_model(xs, *theta)),
        n_points=int(xs.size),
        confidence=confidence,
    )


def fit_steps(params, steps, *, confidence: float = 0.95) -> FitResult:
    """Fit seed 000's ``steps = a * params**(-k_model) + b`` at fixed data size.

    ``a > 0``, ``k_model >= 0`` and the floor ``b >= 0``.  At a fixed data
    size ``D`` the fitted ``a`` is :class:`~distsim.scaling.steps.StepsLaw`'s
    ``a_steps * D**k_data``.  Needs points on
    both sides of the bend to pin ``b``; on a straight log-log line ``b``
    comes out near zero.
    """
    xs, ys = _check_points("steps", params, steps, 3)
    if np.ptp(ys) == 0:
        raise ConfigError("steps: all steps are equal; a decline a * params**-k_model cannot be determined")
    # Start from the pure power law through the points.
    k0 = max(-float(np.polyfit(np.log(xs), np.log(ys), 1)[0]), 1e-3)
    a0 = float(np.exp(np.mean(np.log(ys) + k0 * np.log(xs))))
    b0 = 0.1 * float(ys.min())
    scale = a0  # fit a / a0 so the problem is well conditioned

    def func(xv, a_rel, k, b_rel):
        return scale * a_rel * xv ** (-k) + b_rel * ys.min()

    res = _fit_curve(
        "steps", func, xs, ys, p0=[1.0, k0, b0 / ys.min()],
        bounds=([1e-12, 0.0, 0.0], [np.inf, 10.0, np.inf]),
        names=("a_steps", "k_model", "b_steps"), log_names=("a_steps",), confidence=confidence,
    )
    c, iv = dict(res.constants), dict(res.intervals)
    c["a_steps"] *= scale
    c["b_steps"] *= float(ys.min())
    iv["a_steps"] = tuple(v * scale for v in iv["a_steps"])
    iv["b_steps"] = tuple(v * float(ys.min()) for v in iv["b_steps"])
    return FitResult(law="steps", constants=c, intervals=iv, r2_log=res.r2_log,
                     n_points=res.n_points, confidence=confidence)


def fit_critical_batch(batch, steps, *, confidence: float = 0.95) -> FitResult:
    """Fit ``steps = s_min_steps * (1 + b_noise / batch)`` (McCandlish et al. 2018).

    Raises ConfigError when the points do not level off the way the form
    requires (a linear fit of steps against 1/batch with a non-positive
    intercept or slope).
    """
    xs, ys = _check_points("critical-batch", batch, steps, 2)
    slope, intercept = np.polyfit(1.0 / xs, ys, 1)
    # A flat series gives a slope of rounding noise: treat it as not falling.
    if intercept <= 0 or slope * float(np.mean(1.0 / xs)) <= 1e-9 * abs(intercept):
        raise ConfigError(
            "critical-batch: steps must fall with batch and level off "
            f"(linear fit in 1/batch gives s_min={intercept:.4g}, s_min*b_noise={slope:.4g})"
        )
    s0, n0 = float(intercept), float(slope / intercept)

    def func(xv, s_rel, n_rel):
        return s0 * s_rel * (1.0 + n0 * n_rel / xv)

    res = _fit_curve(
        "critical-batch", func, xs, ys, p0=[1.0, 1.0], bounds=([1e-12, 1e-12], [np.inf, np.inf]),
        names=("s_min_steps", "b_noise"), log_names=("s_min_steps", "b_noise"), confidence=confidence,
    )
    factors = {"s_min_steps": s0, "b_noise": n0}
    return FitResult(
        law="critical-batch",
        constants={k: v * factors[k] for k, v in res.constants.items()},
        intervals={k: (lo * factors[k], hi * factors[k]) for k, (lo, hi) in res.intervals.items()},
        r2_log=res.r2_log, n_points=res.n_points, confidence=confidence,
    )


LAWS.register("learning-curve")(_LawSpec(fit_learning_curve, 2, "data", "loss", "loss = alpha * data**beta_g"))
LAWS.register("model-size")(_LawSpec(fit_model_size, 2, "data", "params", "params = sigma * data**beta_p"))
LAWS.register("steps")(_LawSpec(fit_steps, 3, "params", "steps", "steps = a * params**(-k_model) + b"))
LAWS.register("critical-batch")(_LawSpec(fit_critical_batch, 2, "batch", "steps", "steps = s_min * (1 + b_noise / batch)"))


def fit_law(law: str, x, y, *, confidence: float = 0.95) -> FitResult:
    """Fit the law named ``law`` (see the module table) to points ``(x, y)``."""
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    spec = LAWS.get(law)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = spec.fit(x, y, confidence=confidence)
    except (np.linalg.LinAlgError, OverflowError, FloatingPointError, ZeroDivisionError) as exc:
        raise ConfigError(f"{law}: the points do not determine the fit ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'degenerate points'})") from None
    values = [*result.constants.values(), *(v for pair in result.intervals.values() for v in pair), result.r2_log]
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{law}: the points do not determine the fit (a constant or its interval is not finite)")
    return result


def read_points(path: str | Path, x_col: str, y_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Read columns ``x_col`` and ``y_col`` of a CSV file as floats.

    Raises ConfigError for a missing or unreadable file, a missing column or
    a non-numeric value; empty cells become NaN and are refused by the fit.
    """
    import pandas as pd

    import io

    from ..files import read_text

    p = Path(path)
    text = read_text(p, "points file")  # bytes, size cap, UTF-8 with a one-line error
    if x_col == y_col:
        raise ConfigError(f"x and y are the same column {x_col!r}; give two different columns")
    try:
        df = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, OverflowError) as exc:
        raise ConfigError(f"cannot read {str(p)!r} as CSV: {str(exc).splitlines()[0]}") from None
    for col in (x_col, y_col):
        if col not in df.columns:
            raise ConfigError(f"column {col!r} not in {p.name}; columns: {', '.join(map(str, df.columns)) or 'none'}")
    out = []
    for col in (x_col, y_col):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise ConfigError(f"column {col!r} of {p.name} has a non-numeric value {df[col].iloc[i]!r} at row {i}")
        out.append(values.to_numpy(dtype=float))
    return out[0], out[1]
