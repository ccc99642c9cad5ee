"""The networks the SDST stages train and evaluate, chosen by ``sdst.model.architecture``: the SDST side-tuner
(:class:`models.sdst.SDST`) or the R2-Tuning baseline (:class:`models.r2tuning.R2Tuning`). Both take the same
:class:`models.sdst_config.SDSTConfig`, the same batches and return the same losses / prediction rows."""
from __future__ import annotations

from torch import nn

from models.r2tuning import R2Tuning
from models.sdst import SDST
from models.sdst_config import SDSTConfig

SIDE_TUNERS = {"sdst": SDST, "r2tuning": R2Tuning}  # sdst.model.architecture → class
MODEL_CLASSES = tuple(SIDE_TUNERS.values())  # what the SDST stages load from a checkpoint


def build_side_tuner(config: SDSTConfig) -> nn.Module:
    """The network ``config.model.architecture`` names, built from ``config``."""
    return SIDE_TUNERS[config.model.architecture](config)
