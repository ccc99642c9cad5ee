"""SADA (thesis Ch. 2): a TriDet-style temporal action detector with semantic adversarial domain adaptation.

Modules: ``config`` (torch-free configs, also read by the params schema), ``backbone`` (SGP pyramid, neck,
heads), ``targets`` (points, label assignment, task losses), ``adaptation`` (pseudo-labels, per-level
discriminators, local/bkg/global terms), ``detector`` (the model). Import from the submodules: this package
imports nothing, so reading ``models.sada.config`` does not load torch or the detector (and a stage that only
needs the configs does not depend on the model's code).
"""
