"""Run a webhook worker: ``.venv/bin/python worker.py [--burst] [--name NAME] [--concurrency N]
[--threads N] [--verbose]`` (same as ``dispatcher worker``; the virtualenv's python, where the
package is installed)."""

import sys

from dispatcher.cli import main

if __name__ == "__main__":
    main(["worker", *sys.argv[1:]])
