"""Report sections: one module per area, each with ``render(reports_dir: Path) -> str`` (markdown).

A section reads only metrics/plot files that stages wrote under ``reports/``; it never computes results.
"""
