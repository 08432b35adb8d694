"""Dispatching requests of any events at once, all or nothing, with each mistake named by the
request's place and the field's path -- what the HTTP API's ``POST /v1/events`` and
``/v1/events/batch`` need (``dispatch_many()`` takes one event, and one error for the call).

Every request passes the same gates as ``dispatch()`` (:mod:`.prepare`); each is checked apart,
so every bad request is named, and only when all pass are they stored in one transaction and
queued in one pipeline (:func:`.dispatch.store_then_queue`). Each request's answer is its
deliveries -- request id and endpoint -- and whether they are an earlier dispatch's, its
idempotency key repeated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .. import store, telemetry
from ..errors import (
    DispatcherError,
    IdempotencyConflict,
    InvalidDispatchArgument,
    InvalidEventData,
    PayloadTooLarge,
    StoreUnavailable,
    UnknownEndpoint,
    UnknownEvent,
)
from ..runtime import Runtime
from ..store.idempotency import IdempotencyKey
from . import keys
from .disabled import disabled_endpoints
from .dispatch import store_then_queue, with_current_endpoints
from .prepare import Admitted, admit, build
from .request import DispatchRequest

TOP_LEVEL = ("data", "dispatched_by")
"""A validation problem about these is named as is; any other is a field of the data."""


@dataclass(frozen=True)
class ItemProblem:
    """One mistake: the request's place in the call, the field's path in the request
    (``data.order_number``, ``endpoints``, ``ordering_key``), and what is wrong."""

    index: int
    field: str
    detail: str


class InvalidRequests(DispatcherError, ValueError):
    """One or more requests were refused; nothing was stored or queued."""

    def __init__(self, problems: Sequence[ItemProblem], too_large: bool = False) -> None:
        self.problems = list(problems)
        self.too_large = too_large
        first = self.problems[0]
        super().__init__(f"request {first.index}: {first.field}: {first.detail}")


@dataclass(frozen=True)
class Dispatched:
    """One request's deliveries, as (request_id, endpoint) pairs in endpoint order, and whether
    they are an earlier dispatch's (its idempotency key repeated: nothing was stored for it)."""

    deliveries: list[tuple[str, str]]
    repeated: bool


def _problems(index: int, exc: DispatcherError) -> list[ItemProblem]:
    """``exc``, raised by one request's gates, as its problems."""
    if isinstance(exc, InvalidEventData):
        found = []
        for problem in exc.problems:
            path, _, detail = problem.partition(": ")
            field = path if path.split(".")[0].split("[")[0] in TOP_LEVEL else f"data.{path}"
            found.append(ItemProblem(index, field, detail))
        return found
    if isinstance(exc, UnknownEvent):
        return [ItemProblem(index, "event", str(exc))]
    if isinstance(exc, UnknownEndpoint):
        return [ItemProblem(index, "endpoints", str(exc))]
    if isinstance(exc, InvalidDispatchArgument):
        return [ItemProblem(index, exc.name, str(exc).removeprefix(f"{exc.name}: "))]
    raise exc


def _admit_each(runtime: Runtime, requests: Sequence[DispatchRequest]) -> list[Admitted]:
    """Each request past the gates that need no endpoint state, or every problem found."""
    admitted: list[Admitted] = []
    problems: list[ItemProblem] = []
    for index, request in enumerate(requests):
        try:
            admitted.extend(admit(runtime.settings, [request], runtime.keyring))
        except (InvalidEventData, UnknownEvent, UnknownEndpoint, InvalidDispatchArgument) as exc:
            problems.extend(_problems(index, exc))
    if problems:
        raise InvalidRequests(problems)
    repeats = keys.repeats_within([one.idempotency for one in admitted])
    return [dataclasses.replace(one, repeat=index in repeats) for index, one in enumerate(admitted)]


def _admitted(runtime: Runtime, requests: Sequence[DispatchRequest]) -> list[Admitted]:
    """:func:`_admit_each` with the database's endpoints, looked at once more before an endpoint
    named is refused as unknown (added a moment ago)."""
    try:
        return with_current_endpoints(runtime, lambda: _admit_each(runtime, requests))
    except InvalidRequests as exc:
        if not any(p.field == "endpoints" for p in exc.problems) or not runtime.refresh_endpoints(force=True):
            raise
        return _admit_each(runtime, requests)


def _built(runtime: Runtime, admitted: Sequence[Admitted]) -> list[store.NewDelivery]:
    """The deliveries of every admitted request, each marked with its request's place; every
    body over ``delivery.max_payload_bytes`` named."""
    disabled = disabled_endpoints(runtime)
    built: list[store.NewDelivery] = []
    problems: list[ItemProblem] = []
    for index, one in enumerate(admitted):
        try:
            mine = build(runtime.settings, [one], disabled, runtime.keyring)
        except PayloadTooLarge as exc:
            problems.append(ItemProblem(index, "data", str(exc)))
            continue
        built.extend(dataclasses.replace(d, item=index) for d in mine)
    if problems:
        raise InvalidRequests(problems, too_large=True)
    return built


def dispatch_each(runtime: Runtime, requests: Sequence[DispatchRequest]) -> list[Dispatched]:
    """Stores every request's deliveries in one transaction, then queues them; all or nothing.
    Returns each request's :class:`Dispatched`, in order.

    Raises:
        InvalidRequests: naming every request refused, and why (``too_large``: a body over
            ``delivery.max_payload_bytes``); nothing was stored or queued.
        IdempotencyConflict, StoreUnavailable: as ``dispatch()``; nothing was stored or queued.
    """
    (outcome,) = dispatch_groups(runtime, [requests])
    if isinstance(outcome, DispatcherError):
        raise outcome
    return outcome


def _answers(admitted: Sequence[Admitted], stored: store.Stored) -> list[Dispatched]:
    """Each request's deliveries: its own new ones, else those its repeated key's first
    dispatch stored (their endpoints read in the same transaction)."""
    own: dict[int, list[tuple[str, str]]] = {}
    for row in stored.rows:
        own.setdefault(row.item, []).append((row.request_id, row.endpoint))
    endpoints = stored.repeated_endpoints
    by_key: dict[str, list[tuple[str, str]]] = {
        given: [(rid, endpoints.get(rid, "")) for rid in ids] for given, ids in stored.repeated.items()
    }
    answers = []
    for index, one in enumerate(admitted):
        given = one.idempotency.given if one.idempotency else None
        if index in own or given is None:
            mine = own.get(index, [])
            if given is not None:
                by_key.setdefault(given, mine)
            answers.append(Dispatched(mine, False))
        else:
            answers.append(Dispatched(by_key.get(given, []), given in stored.repeated or one.repeat))
    return answers


Outcome = list[Dispatched] | DispatcherError
"""A group's answer: its requests' deliveries, or why it was refused (nothing of it stored)."""
Prepared = tuple[list[Admitted], list[store.NewDelivery]]
"""A group past every gate: its requests, and the deliveries they make."""


def _prepared(runtime: Runtime, requests: Sequence[DispatchRequest]) -> Prepared | DispatcherError:
    """A group's requests through every gate, or the refusal (of this group alone)."""
    try:
        admitted = _admitted(runtime, requests)
        return admitted, _built(runtime, admitted)
    except DispatcherError as exc:
        return exc


def _across(groups: dict[int, Prepared], outcomes: dict[int, Outcome]) -> dict[int, Prepared]:
    """The groups with a request that repeats an idempotency key an earlier group of the call
    uses marked so (it gets that group's deliveries, and stores none of its own); a group that
    uses such a key for another dispatch is refused."""
    first: dict[str, IdempotencyKey] = {}
    kept: dict[int, Prepared] = {}
    for group, (admitted, built) in groups.items():
        keyed = [(i, one.idempotency) for i, one in enumerate(admitted) if one.idempotency and not one.repeat]
        clash = [
            k for _, k in keyed if k.given in first and first[k.given].fingerprints[0] != k.fingerprints[0]
        ]
        if clash:
            outcomes[group] = IdempotencyConflict(clash[0].given)
            continue
        repeats = {i for i, k in keyed if k.given in first}
        first.update({k.given: k for i, k in keyed if i not in repeats})
        admitted = [
            dataclasses.replace(one, repeat=True) if i in repeats else one for i, one in enumerate(admitted)
        ]
        kept[group] = (admitted, [d for d in built if d.item not in repeats])
    return kept


def dispatch_groups(runtime: Runtime, groups: Sequence[Sequence[DispatchRequest]]) -> list[Outcome]:
    """Many callers' requests at once (the HTTP API's concurrent requests), each group all or
    nothing and refused on its own (any gate's refusal, :class:`IdempotencyConflict`), the
    groups that pass stored in one transaction and queued in one pipeline. A database refusing
    refuses every group that passed (:class:`StoreUnavailable`); a key found used for another
    dispatch only as they are stored makes each group go alone, so only its own is refused."""
    outcomes: dict[int, Outcome] = {}
    ready: dict[int, Prepared] = {}
    for group, requests in enumerate(groups):
        prepared = _prepared(runtime, requests)
        if isinstance(prepared, DispatcherError):
            outcomes[group] = prepared
        else:
            ready[group] = prepared
    together = _across(ready, outcomes)
    try:
        outcomes.update(_together(runtime, together))
    except IdempotencyConflict:
        for group in together:  # each from its own gates, before the call's marks
            outcomes[group] = _alone(runtime, *ready[group])
    except StoreUnavailable as exc:
        outcomes.update({group: exc for group in together})
    return [outcomes[group] for group in range(len(groups))]


def _together(runtime: Runtime, groups: dict[int, Prepared]) -> dict[int, Outcome]:
    """The groups' deliveries stored in one transaction (each request numbered in the call),
    and each group's answers."""
    everyone: list[Admitted] = []
    deliveries: list[store.NewDelivery] = []
    for admitted, built in groups.values():
        offset = len(everyone)
        everyone.extend(admitted)
        deliveries.extend(dataclasses.replace(d, item=d.item + offset) for d in built)
    parents = [one.request.trace for one in everyone] if telemetry.enabled() else []
    stored = store_then_queue(runtime, deliveries, parents) if deliveries else store.Stored([], {})
    answers = _answers(everyone, stored)
    outcomes: dict[int, Outcome] = {}
    start = 0
    for group, (admitted, _) in groups.items():
        outcomes[group] = answers[start : start + len(admitted)]
        start += len(admitted)
    return outcomes


def _alone(runtime: Runtime, admitted: list[Admitted], built: list[store.NewDelivery]) -> Outcome:
    """One group stored in its own transaction, or why it was refused."""
    try:
        parents = [one.request.trace for one in admitted] if telemetry.enabled() else []
        stored = store_then_queue(runtime, built, parents) if built else store.Stored([], {})
    except (IdempotencyConflict, StoreUnavailable) as exc:
        return exc
    return _answers(admitted, stored)
