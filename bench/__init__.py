"""The benchmark suite: ``.venv/bin/python bench/run.py [--quick] [--only NAME]`` (see bench/README.md)."""
