"""SADA (thesis Ch. 2): a TriDet-style temporal action detector with semantic adversarial domain adaptation.

Modules: ``backbone`` (SGP pyramid, neck, heads), ``targets`` (points, label assignment, task losses),
``adaptation`` (pseudo-labels, per-level discriminators, local/bkg/global terms), ``detector`` (the model).
"""
from models.sada.adaptation import (
    ALIGN_TERMS,
    DomainAlignment,
    grouped_bce,
    pseudo_labels,
)
from models.sada.backbone import SGPBlock, SGPPyramid, sgp_kernel
from models.sada.detector import SadaDetector, grid_to_seconds, seconds_to_grid
from models.sada.targets import (
    LossNormalizer,
    anchor_points,
    assign_labels,
    diou_1d,
    task_losses,
)

__all__ = [
    "ALIGN_TERMS",
    "DomainAlignment",
    "LossNormalizer",
    "SGPBlock",
    "SGPPyramid",
    "SadaDetector",
    "anchor_points",
    "assign_labels",
    "diou_1d",
    "grid_to_seconds",
    "grouped_bce",
    "pseudo_labels",
    "seconds_to_grid",
    "sgp_kernel",
    "task_losses",
]
