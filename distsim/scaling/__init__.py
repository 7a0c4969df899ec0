"""Scaling laws: learning curves, model growth, steps to convergence, batch
regimes, fits to measured points and time to accuracy.  See docs/scaling.md.
"""

from .curves import CurveRegion, LearningCurve, ModelSizeLaw
from .table1 import DOMAINS, PAPER_PROJECTIONS, TABLE1, DomainScaling, Projection, project

__all__ = [
    "CurveRegion", "LearningCurve", "ModelSizeLaw",
    "DOMAINS", "PAPER_PROJECTIONS", "TABLE1", "DomainScaling", "Projection", "project",
]
