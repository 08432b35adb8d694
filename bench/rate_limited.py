"""Entry point: ``.venv/bin/python bench/rate_limited.py [--n N] [--rate R]``.

A backlog for one rate-limited endpoint; the scenario is ``bench/scenarios/rate_limited.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scenarios.rate_limited import main

if __name__ == "__main__":
    raise SystemExit(main())
