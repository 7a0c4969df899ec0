"""Scaling laws: learning curves, model growth, steps to convergence, batch
regimes, fits to measured points and time to accuracy.  See docs/scaling.md.

Modules: :mod:`.curves` (learning curve, model size), :mod:`.table1` (PPoPP
2019 Table 1 constants and projections), :mod:`.steps` (steps to convergence,
critical batch), :mod:`.fit` (fitting), :mod:`.tta` (time to accuracy).
"""

from .curves import CurveRegion, LearningCurve, ModelSizeLaw
from .fit import FitResult, fit_critical_batch, fit_law, fit_learning_curve, fit_model_size, fit_steps
from .steps import (
    WORDLM_CRITICAL_BATCH,
    WORDLM_STEPS,
    BatchRegime,
    CriticalBatchLaw,
    StepsLaw,
    classify_batch,
    steps_at_batch,
)
from .table1 import DOMAINS, PAPER_PROJECTIONS, TABLE1, DomainScaling, Projection, project
from .tta import (
    PAPER_V100,
    WORDLM_TABLE2,
    RooflineAccelerator,
    Table2Asymptotics,
    TimeToAccuracy,
    table2_step_time_s,
    time_to_accuracy,
)

__all__ = [
    "CurveRegion", "LearningCurve", "ModelSizeLaw",
    "FitResult", "fit_critical_batch", "fit_law", "fit_learning_curve", "fit_model_size", "fit_steps",
    "WORDLM_CRITICAL_BATCH", "WORDLM_STEPS", "BatchRegime", "CriticalBatchLaw", "StepsLaw",
    "classify_batch", "steps_at_batch",
    "DOMAINS", "PAPER_PROJECTIONS", "TABLE1", "DomainScaling", "Projection", "project",
    "PAPER_V100", "WORDLM_TABLE2", "RooflineAccelerator", "Table2Asymptotics", "TimeToAccuracy",
    "table2_step_time_s", "time_to_accuracy",
]
