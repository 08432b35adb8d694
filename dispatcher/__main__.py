"""``python -m dispatcher``: the same as the ``dispatcher`` command."""

from .cli import main

main()
