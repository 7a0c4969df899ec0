"""Time to accuracy: steps to the target times the time of one step.

``time_to_accuracy`` composes the laws of this package:

1. the learning curve gives the data size ``D`` that reaches the target error;
2. the model-size law gives the smallest model ``p(D)`` that fits that data
   (a smaller model is refused);
3. the steps law (seed 000) and the critical-batch law (seed 002) give the
   steps to convergence at the model size and batch;
4. a step-time provider ``step_time_s(params, batch) -> seconds`` prices one
   step on some hardware.

The provider is a plain callable so that any cost model can be plugged in.
:func:`table2_step_time_s` is a first-order one: the graph-level roofline of
PPoPP 2019 section 5 over Table 2's asymptotic FLOPs and bytes per step, on
the Table 4 accelerator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError, require_positive, require_positive_int
from .curves import LearningCurve, ModelSizeLaw
from .steps import CriticalBatchLaw, StepsLaw, steps_at_batch

#: ``step_time_s(params, batch) -> seconds``
StepTimeProvider = Callable[[float, int], float]


@dataclass(frozen=True, kw_only=True)
class RooflineAccelerator:
    """Compute and memory rates of an accelerator for a graph-level roofline.

    Defaults: PPoPP 2019 Table 4 (the paper's V100-like target, ``paper-v100``):
    15.67e12 FLOP/s at 80% achievable, 898e9 B/s at 70% achievable.
    """

    peak_flop_per_s: float = 15.67e12
    flop_efficiency: float = 0.8
    mem_bandwidth_bytes_per_s: float = 898e9
    mem_efficiency: float = 0.7

    def __post_init__(self) -> None:
        require_positive("peak_flop_per_s", self.peak_flop_per_s)
        require_positive("mem_bandwidth_bytes_per_s", self.mem_bandwidth_bytes_per_s)
        for field in ("flop_efficiency", "mem_efficiency"):
            value = require_positive(field, getattr(self, field))
            if value > 1:
                raise ConfigError(f"{field} must be in (0, 1], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Table2Asymptotics:
    """PPoPP 2019 Table 2: per-step FLOPs and bytes as functions of ``p`` and ``b``.

    ``flop = flop_per_param_sample * b * p`` and
    ``bytes = (bytes_per_param + bytes_per_sqrt_param_sample * b / sqrt(p)) * p``.
    Defaults are the word LM's row: 481 b, 1755 + 30784 b / sqrt(p).
    """

    flop_per_param_sample: float = 481.0
    bytes_per_param: float = 1755.0
    bytes_per_sqrt_param_sample: float = 30784.0

    def __post_init__(self) -> None:
        for field in ("flop_per_param_sample", "bytes_per_param", "bytes_per_sqrt_param_sample"):
            require_positive(field, getattr(self, field))

    def flop(self, params: float, batch: float) -> float:
        return self.flop_per_param_sample * batch * params

    def nbytes(self, params: float, batch: float) -> float:
        return (self.bytes_per_param + self.bytes_per_sqrt_param_sample * batch / math.sqrt(params)) * params


PAPER_V100 = RooflineAccelerator()
WORDLM_TABLE2 = Table2Asymptotics()


def table2_step_time_s(
    params: float,
    batch: float,
    *,
    workload: Table2Asymptotics = WORDLM_TABLE2,
    accelerator: RooflineAccelerator = PAPER_V100,
) -> float:
    """First-order roofline step time, ``max(c / (0.8 x_c), a / (0.7 x_a))``.

    Table 2 asymptotics (word LM by default) on the Table 4 accelerator.
    Table 3's word LM (23.8B parameters, subbatch 128) comes out at 116.9 s
    against the paper's 115 s.

    Examples
    --------
    >>> round(table2_step_time_s(23.8e9, 128), 1)
    116.9
    """
    p = require_positive("params", params)
    b = require_positive("batch", batch)
    compute_s = workload.flop(p, b) / (accelerator.peak_flop_per_s * accelerator.flop_efficiency)
    memory_s = workload.nbytes(p, b) / (accelerator.mem_bandwidth_bytes_per_s * accelerator.mem_efficiency)
    return max(compute_s, memory_s)


def wordlm_params(hidden: int, vocab: int = 10004) -> int:
    """Parameters of the 2-layer LSTM word LM: ``16h^2 + 2hv + 8h + v + 2``.

    The formula of Catamount's word-LM graph (shared/reference facts):
    ``wordlm_params(2004, 10004) == 104_378_326``.
    """
    h = require_positive_int("hidden", hidden)
    v = require_positive_int("vocab", vocab)
    return 16 * h * h + 2 * h * v + 8 * h + v + 2


def wordlm_hidden_for_params(params: float, vocab: int = 10004) -> int:
    """The hidden size whose word LM is closest to ``params`` parameters (>= 1)."""
    p = require_positive("params", params)
    v = require_positive_int("vocab", vocab)
    # 16 h^2 + (2v + 8) h + (v + 2 - p) = 0
    lin, const = 2 * v + 8, v + 2 - p
    root = (-lin + math.sqrt(lin * lin - 64 * const)) / 32 if lin * lin - 64 * const > 0 else 1.0
    best = max(1, int(round(root)))
    return min((max(1, best - 1), best, best + 1), key=lambda h: abs(wordlm_params(h, v) - p))


@dataclass(frozen=True, kw_only=True)
class TimeToAccuracy:
    """One time-to-accuracy estimate; every field is finite."""

    target_error: float
    data_samples: float
    min_params: float
    params: float
    batch: int
    steps: float
    step_time_s: float
    time_s: float


def time_to_accuracy(
    *,
    target_error: float,
    params: float,
    batch: int,
    step_time_s: StepTimeProvider,
    curve: LearningCurve,
    size_law: ModelSizeLaw,
    steps_law: StepsLaw,
    batch_law: CriticalBatchLaw | None = None,
) -> TimeToAccuracy:
    """Wall-clock time to train a ``params`` model to ``target_error``.

    ``time_s = steps(D, params, batch) * step_time_s(params, batch)`` with
    ``D = curve.data_for_error(target_error)``; see the module docstring.

    Raises
    ------
    ConfigError
        Target below the irreducible or above the best-guess error, a model
        smaller than ``size_law.params(D)``, or a provider that returns a
        non-positive or non-finite time.
    """
    data = curve.data_for_error(target_error)
    need = float(size_law.params(data))
    p = require_positive("params", params)
    b = require_positive_int("batch", batch)
    if p < need * (1 - 1e-9):
        raise ConfigError(
            f"params={p:.4g} is below the {need:.4g} parameters needed to fit the "
            f"{data:.4g} samples that reach target_error={target_error!r}"
        )
    steps = float(steps_at_batch(steps_law, batch_law, data=data, params=p, batch=b))
    raw = step_time_s(p, b)
    try:
        t = float(raw)
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(raw, bool) or not math.isfinite(t) or t <= 0:
        raise ConfigError(f"step_time_s({p:.4g}, {b}) must return a positive finite time, got {raw!r}")
    return TimeToAccuracy(
        target_error=float(target_error), data_samples=data, min_params=need, params=p,
        batch=b, steps=steps, step_time_s=float(t), time_s=steps * float(t),
    )
