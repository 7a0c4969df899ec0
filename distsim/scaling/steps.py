"""Training steps to convergence: model and data size (seed 000) and batch
size (seed 002, with the critical-batch form of McCandlish et al. 2018).

Both forms come from the seeds; the seeds give no constants for them, so the
word-LM defaults shipped here (:data:`WORDLM_STEPS`,
:data:`WORDLM_CRITICAL_BATCH`) are *illustrative* magnitudes chosen to make
the experiments readable, not measurements.  Fit your own with
:mod:`distsim.scaling.fit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import ConfigError, require_positive, require_positive_int
from .curves import _as_data_size, _scalar_or_array


@dataclass(frozen=True, kw_only=True)
class StepsLaw:
    """Steps to minimum validation loss versus data and model size.

    ``steps(D, M) = a_steps * D**k_data / min(M, plateau_params)**k_model + b_steps``

    Seed 000 (section 3.1): the number of steps to convergence "can be
    approximated by D^k1 / M^k2" and the relation "eventually plateaus, i.e.
    there exists a model size beyond which improving model size does not
    improve training time"; its introduction gives the special case
    ``a * D / M + b`` (``k_data = k_model = 1``; the seed text is garbled
    there, see shared/reference/ppopp2019-facts.md).  The floor ``b_steps``
    makes steps level off smoothly; ``plateau_params`` is an optional hard
    plateau.  Steps never increase with model size and never decrease with
    data size.

    Parameters
    ----------
    a_steps : float
        Coefficient, steps per unit of ``D**k_data / M**k_model``; positive.
    k_data, k_model : float, default 1
        Exponents on data size ``D`` (samples) and model size ``M``
        (parameters); non-negative.
    b_steps : float, default 0
        Floor: steps that remain however large the model; non-negative.
    plateau_params : float, default inf
        Model size past which more parameters stop reducing steps.
    reference_batch : int, default 128
        Batch size at which the law holds (seed 000 trains at batch 128);
        :func:`steps_at_batch` rescales from it.
    """

    a_steps: float
    k_data: float = 1.0
    k_model: float = 1.0
    b_steps: float = 0.0
    plateau_params: float = math.inf
    reference_batch: int = 128

    def __post_init__(self) -> None:
        require_positive("a_steps", self.a_steps)
        require_positive("k_data", self.k_data, allow_zero=True)
        require_positive("k_model", self.k_model, allow_zero=True)
        require_positive("b_steps", self.b_steps, allow_zero=True)
        plateau = self.plateau_params
        if isinstance(plateau, bool) or not isinstance(plateau, (int, float)) or not plateau > 0:
            raise ConfigError(f"plateau_params must be positive (inf for none), got {plateau!r}")
        require_positive_int("reference_batch", self.reference_batch)

    def steps(self, data, params):
        """Steps to convergence on ``data`` samples with ``params`` parameters."""
        d = _as_data_size("data size D", data)
        m = np.minimum(_as_data_size("model size M", params), self.plateau_params)
        return _scalar_or_array(self.a_steps * d**self.k_data / m**self.k_model + self.b_steps)


class BatchRegime(str, Enum):
    """Seed 002's three regimes of steps versus batch size."""

    PERFECT = "perfect scaling"
    DIMINISHING = "diminishing returns"
    MAXIMAL = "maximal data parallelism"


@dataclass(frozen=True, kw_only=True)
class CriticalBatchLaw:
    """Steps to a target versus batch size: ``S(B) = s_min_steps * (1 + b_noise / B)``.

    The critical-batch form of McCandlish et al. 2018 ("An Empirical Model of
    Large-Batch Training"), which reproduces seed 002's three regimes (Shallue
    et al. 2018): for ``B << b_noise`` doubling the batch halves the steps
    (perfect scaling); near ``B = b_noise`` (the critical batch, where steps
    are twice the minimum) returns diminish; for ``B >> b_noise`` steps
    approach ``s_min_steps`` (maximal data parallelism).

    Parameters
    ----------
    s_min_steps : float
        Steps needed with an infinite batch; positive.
    b_noise : float
        Noise scale, in samples per batch; positive.
    """

    s_min_steps: float
    b_noise: float

    def __post_init__(self) -> None:
        require_positive("s_min_steps", self.s_min_steps)
        require_positive("b_noise", self.b_noise)

    def steps(self, batch):
        """Steps at batch size ``batch``; non-increasing in ``batch``."""
        b = _as_data_size("batch", batch)
        return _scalar_or_array(self.s_min_steps * (1.0 + self.b_noise / b))

    def scaling_efficiency(self, batch):
        """``-d ln S / d ln B = b_noise / (B + b_noise)``, in (0, 1).

        1 is perfect scaling (steps halve when the batch doubles), 0 is no
        gain at all.
        """
        b = _as_data_size("batch", batch)
        return _scalar_or_array(self.b_noise / (b + self.b_noise))

    def classify(self, batch: float, *, tolerance: float = 0.1) -> BatchRegime:
        """Regime of ``batch``; see :func:`classify_batch`."""
        return classify_batch(batch, self, tolerance=tolerance)


def classify_batch(batch: float, law: CriticalBatchLaw, *, tolerance: float = 0.1) -> BatchRegime:
    """Classify a batch size into seed 002's regimes.

    Perfect scaling while the scaling efficiency ``b_noise / (B + b_noise)`` is
    at least ``1 - tolerance`` (``B <= b_noise * tolerance / (1 - tolerance)``,
    b_noise/9 at the default); maximal data parallelism once it is at most
    ``tolerance`` (``B >= 9 b_noise`` at the default); diminishing returns in
    between.  The thresholds are a convention, not from the seeds.

    Examples
    --------
    >>> law = CriticalBatchLaw(s_min_steps=1000, b_noise=900)
    >>> classify_batch(100, law).value, classify_batch(900, law).value
    ('perfect scaling', 'diminishing returns')
    >>> classify_batch(8100, law).value
    'maximal data parallelism'
    """
    tol = require_positive("tolerance", tolerance)
    if not tol < 0.5:
        raise ConfigError(f"tolerance must be in (0, 0.5), got {tolerance!r}")
    eff = float(law.scaling_efficiency(float(batch)))
    # Compare with a relative slack so the documented boundaries (b_noise/9,
    # 9 b_noise) land in the stricter regime despite rounding.
    if eff >= (1.0 - tol) * (1 - 1e-12):
        return BatchRegime.PERFECT
    if eff <= tol * (1 + 1e-12):
        return BatchRegime.MAXIMAL
    return BatchRegime.DIMINISHING


def steps_at_batch(steps_law: StepsLaw, batch_law: CriticalBatchLaw | None, *, data, params, batch):
    """Steps to convergence at ``batch``, composing seed 000 and seed 002.

    ``steps_law`` holds at its ``reference_batch``; the critical-batch law
    rescales it: ``steps(D, M) * (1 + b_noise / B) / (1 + b_noise / B_ref)``.
    This assumes ``b_noise`` does not depend on model or data size (McCandlish
    et al. find it grows as the loss falls), a first-order simplification.
    Without ``batch_law`` the steps are those at the reference batch.
    """
    base = np.asarray(steps_law.steps(data, params), dtype=float)
    if batch_law is None:
        _as_data_size("batch", batch)
        return _scalar_or_array(base)
    ratio = np.asarray(batch_law.steps(batch), dtype=float) / float(batch_law.steps(steps_law.reference_batch))
    return _scalar_or_array(base * ratio)


#: Illustrative word-LM steps law (seed 000's ``a * D / M + b`` form): data in
#: words, model in parameters, at batch 128.  a = 1e5 steps, b = 2e3 steps give
#: ~2e4 steps (about 20 epochs at 128 x 80 words/step) for 10M words on a 53M
#: parameter model and approach 2e3 steps for models well past 1B
#: parameters.  Not measured: seed 000 shows the form, not its constants.
WORDLM_STEPS = StepsLaw(a_steps=1.0e5, k_data=1.0, k_model=1.0, b_steps=2.0e3, reference_batch=128)

#: Illustrative word-LM critical batch: b_noise = 256 sequences.  Seed 002
#: gives no number for LSTMs on LM1B (only that they stop benefiting from
#: larger batches earlier than a Transformer); 256 is a placeholder, as is
#: s_min_steps (only the ratio S(B) / S(128) is used by :func:`steps_at_batch`).
WORDLM_CRITICAL_BATCH = CriticalBatchLaw(s_min_steps=1.0e3, b_noise=256.0)
