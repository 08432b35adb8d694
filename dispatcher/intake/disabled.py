"""The one rule for a disabled endpoint, whatever the way in.

Nothing new is sent to an endpoint that is disabled (``dispatcher endpoints disable``, or a
failure :mod:`dispatcher.policy.health` judges enough):

- **A new delivery** -- from ``dispatch()``, ``dispatch_many()``, the outbox, ``dispatcher
  send``, ``dispatcher replay`` or the console's replay -- is stored ``failed`` with reason
  ``endpoint_disabled`` and never queued: the caller still gets its request id, so nothing
  silently vanishes, and ``dispatcher endpoints enable NAME`` offers to re-send it. Every one of
  them builds its deliveries with :func:`dispatcher.intake.prepare.prepare_request`, which takes
  the disabled endpoints (:func:`disabled_endpoints`) and applies :func:`held_back`.
- **An existing failed delivery** is not re-opened -- ``dispatcher retry ID``, ``retry
  --failed`` and the console's retries (:mod:`dispatcher.ops.resend`) -- while its endpoint is
  disabled: one is refused, naming the endpoint; in bulk it is skipped and counted. Enabling the
  endpoint re-sends what it held back.

A worker still checks before each POST (a delivery queued before its endpoint was disabled).
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from sqlalchemy.exc import SQLAlchemyError

from .. import store
from ..errors import StoreUnavailable
from ..runtime import Runtime


def disabled_endpoints(runtime: Runtime, *, fresh: bool = False) -> Mapping[str, str | None]:
    """The disabled endpoints (name: why), read through the process's cache of a few seconds;
    ``fresh`` reads the database now (an operator's action, which may follow a change at once).

    Raises:
        StoreUnavailable: the database refused; nothing was done.
    """
    try:
        if fresh:
            runtime.disabled.invalidate()
        return runtime.disabled.get()
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            f"could not read endpoint state from {store.safe_url(runtime.settings.database_url)}: "
            f"{store.describe_error(exc)}; nothing was done"
        ) from exc


def held_back(endpoint: str, disabled: Container[str]) -> bool:
    """Whether a delivery to ``endpoint`` is held back: not queued now, nor re-opened."""
    return endpoint in disabled
