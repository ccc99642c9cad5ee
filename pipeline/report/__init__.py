"""Results: the ``claims`` stage (the thesis' three claims over seeds), the ``build`` stage that writes
``reports/report.md`` from metrics files, its ``sections`` (one per area) and the ``report``/``claims``
params schema (``params``)."""
