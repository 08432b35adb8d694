"""Run a webhook worker: ``python worker.py [--burst] [--name NAME] [--concurrency N] [--threads N]``
(same as ``dispatcher worker``)."""

import sys

from dispatcher.cli import main

if __name__ == "__main__":
    main(["worker", *sys.argv[1:]])
