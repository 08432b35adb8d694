"""The benchmark suite: ``.venv/bin/python bench/run.py [--quick] [--only NAME]`` (see bench/README.md).

``run.py`` is the entry point, ``harness/`` the shared machinery, ``scenarios/`` one module per
scenario, ``report.py`` the markdown, targets, chart and README table.
"""
