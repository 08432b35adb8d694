"""The cli room: the ``dispatcher`` command, one module per command or group.

Owns: the root group, which imports a command's module only when that command runs
(:mod:`.app`); output -- tables, JSON documents, one-line errors, confirmations, progress bars
(:mod:`.output`); the command line's value types (:mod:`.params`); and the commands themselves
(``send``, ``log``, ``info``, ``retry``/``replay``, ``prune``, ``worker``/``reconcile``,
``endpoints``, ``config``, ``keys``, ``simulate``, ``receiver``, ``demo``).

May import every other room. Invariants: a user mistake or an unreachable service is one line on
stderr and a non-zero exit, never a traceback; ``--json`` documents and table columns are
stable (the README lists them); a command imports the database, Redis, RQ or HTTP libraries
only when it runs.
"""

from .app import cli, main

__all__ = ["cli", "main"]
