"""``from dispatcher.outbox import dispatch_in_transaction`` keeps working (the README's import path)."""

from .intake.outbox import dispatch_in_transaction

__all__ = ["dispatch_in_transaction"]
