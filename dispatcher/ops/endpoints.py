"""Endpoint health for operators: the endpoints in force with their state, and the two doors
on one (``dispatcher endpoints``, the console's endpoint actions; no click here):
:class:`Disable` and :class:`Enable` (re-sending what was held back while it was disabled, if
asked). An unknown name is :class:`~dispatcher.errors.UnknownEndpoint` from the plan, before
anything is written.

Besides, what the doors that change the endpoints themselves share (:mod:`.endpoint_admin`,
:mod:`.endpoint_rotation`, :mod:`.endpoint_import`): the stored endpoint of a name, a mapping
checked as the file's endpoints are, the settings two mappings differ in, and taking a change
in the process that made it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .. import store
from ..config import Endpoint, Settings
from ..errors import ConfigError, UnknownEndpoint
from ..runtime import Runtime
from ..store import endpoint_catalog
from ..vocabulary import AuditAction
from .bulk import Progress
from .door import Door, Plan
from .resend import reopen_and_queue

if TYPE_CHECKING:
    from ..store.endpoint_catalog import StoredEndpoint

_UNSET = object()

DEFAULT_REASON = "disabled by an operator"
"""The reason recorded when the operator gives none."""


def endpoint_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Every endpoint in force (the database's, once imported) with its state and how many
    deliveries it holds back."""
    runtime.refresh_endpoints(force=True)
    states = store.endpoint_states(runtime.engine)
    breakers = breaker_words(runtime, runtime.settings.endpoints)
    rows = []
    for endpoint in runtime.settings.endpoints:
        state = states.get(endpoint.name, {})
        disabled = bool(state.get("disabled"))
        rows.append(
            {
                "name": endpoint.name,
                "url": endpoint.url,
                "events": list(endpoint.events),
                "disabled": disabled,
                "reason": state.get("reason"),
                "disabled_at": state.get("disabled_at"),
                "held_back": len(store.held_back(runtime.engine, endpoint.name)) if disabled else 0,
                "paused": bool(state.get("paused")),
                "paused_at": state.get("paused_at"),
                "breaker": breakers[endpoint.name],
            }
        )
    return rows


UNKNOWN_BREAKER = "unknown (Redis did not answer)"


def breaker_words(runtime: Runtime, endpoints: Sequence[Endpoint]) -> dict[str, str]:
    """Each endpoint's circuit breaker in words: ``closed``, ``open until …``, ``half-open``,
    ``off`` (``breaker: off``), or unknown when Redis does not answer (one read for them all)."""
    from redis import RedisError

    from ..sending import breaker

    try:
        views = breaker.states(runtime.redis, [e.name for e in endpoints])
    except RedisError:
        views = {}
    words = {}
    for endpoint in endpoints:
        view = views.get(endpoint.name)
        if runtime.settings.delivery_for(endpoint).breaker is None:
            words[endpoint.name] = "off"
        else:
            words[endpoint.name] = view.text() if view is not None else UNKNOWN_BREAKER
    return words


def known_endpoint(runtime: Runtime, name: str) -> Endpoint:
    """The endpoint in force named ``name`` (the database's, once imported: a process that has
    not looked yet looks now).

    Raises:
        UnknownEndpoint: no endpoint has that name.
    """
    runtime.refresh_endpoints(force=True)
    return runtime.settings.require_endpoint(name)


def stored_endpoint(runtime: Runtime, name: str) -> StoredEndpoint:
    """The stored endpoint named ``name``, the file's endpoints imported first on a fresh install
    (so the first change made by an operator is made to them).

    Raises:
        UnknownEndpoint: no endpoint has that name.
    """
    runtime.adopt_file_endpoints()
    row = endpoint_catalog.stored(runtime.engine, name)
    if row is None:
        raise UnknownEndpoint(name, [e.name for e in runtime.settings.endpoints])
    return row


def plain(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an endpoint's mapping as the database gives it back (JSON's types)."""
    return dict(json.loads(json.dumps(dict(definition))))


def checked(runtime: Runtime, definition: Mapping[str, Any], retiring: Sequence[str] = ()) -> Endpoint:
    """The endpoint ``definition`` stands for, checked as one in the file is.

    Raises:
        ConfigError: naming the first bad setting by its file name.
    """
    from ..config.endpoint_records import endpoint_from_definition

    endpoint = endpoint_from_definition(definition, runtime.settings, retiring)
    if runtime.settings.environment == "production" and not endpoint.key_configured:
        raise ConfigError(
            "key", "required in production: the seed's default xxx is public; give the endpoint its own key"
        )
    return endpoint


def canonical(definition: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """An endpoint's mapping written one way (what the file's import writes: only what differs
    from the defaults and from ``delivery``, durations in seconds), so two spellings of the same
    endpoint compare equal; a mapping that does not check here is compared as it is written."""
    from ..config.endpoint_records import endpoint_definition, endpoint_from_definition

    try:
        endpoint = endpoint_from_definition(definition, settings)
    except ConfigError:
        return plain(definition)
    return plain(endpoint_definition(endpoint, settings.delivery))


def differing(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the settings two mappings of an endpoint differ in (set, changed or
    unset), in the order written (compare :func:`canonical` mappings to leave out a setting
    written with its default)."""
    names = list(after) + [k for k in before if k not in after]
    return tuple(k for k in names if before.get(k, _UNSET) != after.get(k, _UNSET))


def edited(
    definition: Mapping[str, Any], changes: Mapping[str, Any], unset: tuple[str, ...]
) -> dict[str, Any]:
    """``definition`` with ``changes`` set and ``unset`` removed, each named by its file name or
    a dotted path into one (``auth.oauth2.scope``, ``headers.X-Partner-Account``).

    Raises:
        ConfigError: renaming the endpoint, or unsetting a setting it does not have.
    """
    result = copy.deepcopy(dict(definition))
    for path, value in changes.items():
        if path.split(".")[0] == "name" and value != result.get("name"):
            raise ConfigError(
                "name", "cannot be changed; add the endpoint under the new name, then remove this one"
            )
        _put(result, path.split("."), value)
    for path in unset:
        if path == "name":
            raise ConfigError("name", "cannot be unset")
        if not _drop(result, path.split(".")):
            raise ConfigError(path, "is not set on this endpoint; nothing to unset")
    return result


def nested(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A new endpoint's mapping with its dotted names (``headers.X-Partner-Account``) made the
    nested mappings they name."""
    result: dict[str, Any] = {}
    for path, value in definition.items():
        _put(result, path.split("."), value)
    return result


def _put(mapping: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        inner = mapping.get(key)
        if not isinstance(inner, dict):
            inner = mapping[key] = {}
        mapping = inner
    mapping[keys[-1]] = copy.deepcopy(value)


def _drop(mapping: dict[str, Any], keys: list[str]) -> bool:
    for key in keys[:-1]:
        inner = mapping.get(key)
        if not isinstance(inner, dict):
            return False
        mapping = inner
    return mapping.pop(keys[-1], _UNSET) is not _UNSET


def taken(runtime: Runtime) -> None:
    """After a write: this process takes the change at once (a worker takes it within seconds)."""
    runtime.refresh_endpoints(force=True)
    runtime.disabled.invalidate()


def resend_held_back(runtime: Runtime, name: str, progress: Progress | None = None) -> int:
    """Re-queues the deliveries failed ``endpoint_disabled`` for endpoint ``name`` (a fresh
    attempt budget each, same request ids); returns how many were re-queued."""
    held = store.held_back(runtime.engine, name)
    requeued = 0
    for request_id in held:
        if reopen_and_queue(runtime, request_id):
            requeued += 1
        if progress:
            progress(1)
    return requeued


@dataclass(frozen=True)
class Disabled:
    """What :class:`Disable` did: whether the endpoint was enabled until then."""

    changed: bool

    def counts(self) -> Mapping[str, Any]:
        return {"changed": int(self.changed)}


@dataclass(frozen=True)
class Enabled:
    """What :class:`Enable` did: whether the endpoint was disabled until then, how many
    deliveries it held back, and how many of them were re-queued."""

    changed: bool
    held_back: int
    requeued: int
    resent: bool
    """Whether re-sending was asked for and there was something to re-send."""

    def counts(self) -> Mapping[str, Any]:
        return {"changed": int(self.changed), "held_back": self.held_back, "requeued": self.requeued}


@dataclass(frozen=True)
class Disable(Door[Disabled]):
    """Stop sending to endpoint ``name``: new deliveries to it are stored failed
    (``endpoint_disabled``) and not sent, until it is enabled."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_DISABLE
    name: str
    reason: str = DEFAULT_REASON

    def plan(self, runtime: Runtime) -> Plan:
        endpoint = known_endpoint(runtime, self.name)
        return Plan(
            self.action,
            None,
            "New deliveries to it are recorded failed (endpoint_disabled) and not sent, until it is enabled.",
            {"endpoint": endpoint.name, "reason": self.reason},
        )

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Disabled:
        return Disabled(store.disable(runtime.engine, plan.selection["endpoint"], self.reason))


@dataclass(frozen=True)
class Enable(Door[Enabled]):
    """Send to endpoint ``name`` again, and with ``resend`` re-queue the deliveries it held back
    while disabled (the plan's count); without, they stay failed (``dispatcher retry`` re-sends
    any of them)."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_ENABLE
    name: str
    resend: bool = False

    def plan(self, runtime: Runtime) -> Plan:
        endpoint = known_endpoint(runtime, self.name)
        held = len(store.held_back(runtime.engine, endpoint.name))
        resent = {"resend": True} if self.resend and held else {}
        return Plan(
            self.action,
            held,
            f"Send to it again. {held:,} deliveries were held back while it was disabled.",
            {"endpoint": endpoint.name, **resent},
            details={"held_back": held},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        """Never: the count is what it held back, enabling is the action."""
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Enabled:
        name, held = plan.selection["endpoint"], plan.count or 0
        changed = store.enable(runtime.engine, name)
        resent = bool(plan.selection.get("resend"))
        requeued = resend_held_back(runtime, name, progress) if resent else 0
        return Enabled(changed, held, requeued, resent)
