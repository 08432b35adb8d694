"""Operator commands beyond the core CLI, one module per concern.

Each module here defines ``register(cli)`` and adds its commands to the ``dispatcher`` group
(or to its ``log`` subgroup); :func:`register_all` finds them, so adding a command never means
editing a shared file.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register_all(cli: click.Group) -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{module.name}").register(cli)
