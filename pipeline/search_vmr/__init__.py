"""Search-query video moment retrieval (thesis Ch. 3): params schema (``params``), query/feature datasets
(``data``) and the stages ``train`` → ``predict`` → ``evaluate``. The DETR retriever is
``models/search_detr.py``; the search benchmarks come from ``pipeline/querygen``."""
