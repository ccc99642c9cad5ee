"""SADA, domain-adaptive temporal action localization (thesis Ch. 2): params schema (``params``), feature
datasets of a scenario (``data``) and the stages ``train`` → ``predict`` → ``evaluate``. The detector itself
is ``models/sada``."""
