"""SDST, the side-tuner over frozen multi-layer InternVideo2 features (thesis Ch. 4): params schema
(``params``), datasets (``data``), the stages ``train`` → ``predict`` → ``evaluate`` and the ``efficiency``
benchmark stage. The model is ``models/sdst.py`` (config ``models/sdst_config.py``)."""
