"""``/v1/endpoints``: the endpoints in force with their state, one endpoint's settings, and every
change an operator makes to them -- add, update, remove, disable, enable, pause, resume and the
two rotations -- through the doors ``dispatcher endpoints`` and the console use
(:mod:`dispatcher.ops.endpoints`, :mod:`dispatcher.ops.endpoint_admin`), each audited under the
token's name.

Every secret is masked in what is shown (``****``: the key, signing secrets, header values,
passwords, a URL's credentials); only ``rotate-secret`` answers with a secret, the new one,
once. A body holding ``****`` is refused: it would store the mask.

``POST /v1/endpoints`` takes one endpoint as the configuration file writes it (``name``,
``url``, ``events``, ``key``, ...); ``PATCH /v1/endpoints/{name}`` a JSON merge patch (RFC
7396) of that mapping as stored: a key set to ``null`` goes back to its default, an object is
merged into the stored one. Each is checked as an endpoint in the file is, a mistake a 422
naming the setting, nothing written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import ConfigError, UnknownEndpoint
from ..ops import endpoint_admin as admin
from ..ops.door import Actor
from ..ops.endpoint_rotation import DEFAULT_GRACE_SECONDS
from ..ops.endpoints import DEFAULT_REASON, Disable, Enable, endpoint_rows, plain, stored_endpoint
from ..redaction import MASK, mask_url
from ..runtime import Runtime
from ..store.endpoint_catalog import EndpointChanged
from ..vocabulary import Reason
from .auth import Caller, authorize
from .bodies import json_object, json_type
from .deliveries import MAX_NAME, VIA, json_ready, plain_name, query_values
from .problems import ApiProblem, FieldError, invalid

MAX_REASON = 200
MAX_KEY = 4096
MAX_GRACE_SECONDS = 366 * 86400
"""The longest grace a rotated signing secret may keep signing (a year and a day)."""
MAX_DEPTH = 16
"""Levels of objects and arrays an endpoint's mapping may hold (the file's deepest is 3)."""
NO_STORE = {"Cache-Control": "no-store"}

Action = Callable[[Runtime, str, dict[str, Any], Actor], dict[str, Any]]


def no_endpoint() -> ApiProblem:
    return ApiProblem(404, "no endpoint has this name: GET /v1/endpoints lists them")


def refusal(exc: Exception) -> ApiProblem:
    """A door's refusal as a problem: 404 for an unknown name, 422 naming a bad setting, 409 for
    a name in use, pending deliveries, or a change made meanwhile by someone else."""
    if isinstance(exc, UnknownEndpoint):
        return no_endpoint()
    if isinstance(exc, ConfigError):
        return invalid([FieldError(exc.setting, exc.problem)])
    if isinstance(exc, admin.EndpointBusy):
        noun = "delivery" if exc.pending == 1 else "deliveries"
        return ApiProblem(
            409,
            f"endpoint {exc.name} has {exc.pending:,} pending {noun}; nothing was removed: "
            f"DELETE with ?force=true fails them (reason {Reason.ENDPOINT_REMOVED}) and removes it",
        )
    return ApiProblem(409, str(exc))


REFUSED = (UnknownEndpoint, ConfigError, admin.EndpointBusy, admin.EndpointExists, EndpointChanged)


def guarded(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)``, a door's refusal made a problem (run in the thread pool)."""
    try:
        return work(*args)
    except REFUSED as exc:
        raise refusal(exc) from None


def checked_name(request: Request) -> str:
    """The path's endpoint name; 404 when it could name none."""
    name = str(request.path_params["name"])
    if not plain_name(name):
        raise no_endpoint()
    return name


def too_deep(value: Any, depth: int = 1) -> bool:
    """Whether ``value`` nests more than :data:`MAX_DEPTH` levels."""
    if depth > MAX_DEPTH:
        return True
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(too_deep(item, depth + 1) for item in items)


def masked_paths(value: Any, at: str = "") -> list[str]:
    """Where ``value`` holds the mask ``****`` (a secret copied from a view), by path."""
    if isinstance(value, str):
        return [at or "body"] if MASK in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in masked_paths(v, f"{at}.{k}" if at else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in masked_paths(v, f"{at}[{i}]")]
    return []


def check_mapping(body: dict[str, Any]) -> None:
    """A body that is an endpoint's mapping, or a patch of one: not too deep, no mask in it."""
    if too_deep(body):
        raise invalid([FieldError("body", f"nests more than {MAX_DEPTH} levels; an endpoint has 3")])
    masked = masked_paths(body)
    if masked:
        raise invalid(
            [FieldError(p, f"holds {MASK} (a masked secret): send the whole value") for p in masked]
        )


def merged(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7396: ``patch`` applied to ``target`` (``null`` removes a key, objects merge)."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            inner = result.get(key)
            result[key] = merged(inner if isinstance(inner, dict) else {}, value)
        else:
            result[key] = value
    return result


def merge_changes(
    stored: Mapping[str, Any], patch: Mapping[str, Any], prefix: str = ""
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A merge patch of ``stored`` as the :class:`~dispatcher.ops.endpoint_admin.Edit` door
    takes it: the values to set and the settings to unset, each by its dotted path, as deep as
    the patch goes (so a setting the patch does not name is left as the door finds it). An
    object whose keys hold a dot (a header's name) is set whole, merged."""
    changes: dict[str, Any] = {}
    unset: list[str] = []
    for key, value in patch.items():
        path, current = f"{prefix}{key}", stored.get(key)
        if value is None:
            if key in stored:
                unset.append(path)
        elif isinstance(value, dict) and isinstance(current, dict) and not any("." in k for k in value):
            inner, gone = merge_changes(current, value, f"{path}.")
            changes.update(inner)
            unset.extend(gone)
        elif isinstance(value, dict):
            changes[path] = merged(current if isinstance(current, dict) else {}, value)
        else:
            changes[path] = value
    return changes, tuple(unset)


def _rows(runtime: Runtime) -> dict[str, Any]:
    rows = endpoint_rows(runtime)
    return {"endpoints": [json_ready({**row, "url": mask_url(row["url"])}) for row in rows]}


async def list_endpoints(request: Request) -> Response:
    """GET /v1/endpoints: every endpoint in force with its state (disabled, paused, breaker)."""
    await authorize(request, "read")
    query_values(request, ())
    return JSONResponse(await run_in_threadpool(_rows, request.app.state.runtime))


def view(runtime: Runtime, name: str) -> dict[str, Any]:
    """What ``dispatcher endpoints show --json`` prints: settings (secrets masked) and state."""
    return dict(json_ready(admin.endpoint_view(runtime, name)))


async def show_endpoint(request: Request) -> Response:
    """GET /v1/endpoints/{name}: its settings, every secret masked, and its state."""
    await authorize(request, "read")
    query_values(request, ())
    name = checked_name(request)
    return JSONResponse(await run_in_threadpool(guarded, view, request.app.state.runtime, name))


def _create(runtime: Runtime, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    done = admin.Add(body).carry_out(runtime, Actor(caller.name, VIA))
    return view(runtime, done.name)


async def create_endpoint(request: Request) -> Response:
    """POST /v1/endpoints: a new endpoint, as the file writes one (201, its view); 409 when the
    name is in use, 422 naming a bad setting."""
    caller = await authorize(request, "operate")
    query_values(request, ())
    runtime: Runtime = request.app.state.runtime
    body = await json_object(request, runtime.settings.api.max_body_bytes)
    name = body.get("name")
    if not plain_name(name) or "/" in str(name):
        detail = f"required: the endpoint's name, 1 to {MAX_NAME} printable characters, no '/'"
        raise invalid([FieldError("name", detail)])
    check_mapping(body)
    dotted = [
        FieldError(key, "a setting's name has no '.': nest it as an object") for key in body if "." in key
    ]
    if dotted:
        raise invalid(dotted)
    shown = await run_in_threadpool(guarded, _create, runtime, body, caller)
    where = f"/v1/endpoints/{quote(shown['name'], safe='')}"
    return JSONResponse(shown, status_code=201, headers={"Location": where})


def _update(runtime: Runtime, name: str, patch: dict[str, Any], caller: Caller) -> dict[str, Any]:
    stored = plain(stored_endpoint(runtime, name).definition)
    changes, unset = merge_changes(stored, patch)
    door = admin.Edit(name, changes, unset)
    plan = door.plan(runtime)
    if not door.nothing_to_do(plan):
        door.carry_out(runtime, Actor(caller.name, VIA), plan)
    return view(runtime, name)


async def update_endpoint(request: Request) -> Response:
    """PATCH /v1/endpoints/{name}: a JSON merge patch (RFC 7396) of the endpoint's mapping; its
    view after (200). A patch that changes nothing writes nothing."""
    caller = await authorize(request, "operate")
    query_values(request, ())
    name = checked_name(request)
    runtime: Runtime = request.app.state.runtime
    patch = await json_object(request, runtime.settings.api.max_body_bytes)
    dotted = [k for k in patch if "." in k]
    if dotted:
        raise invalid(
            [FieldError(k[:40], "a setting's name has no dot: nest objects as the file does") for k in dotted]
        )
    check_mapping(patch)
    return JSONResponse(await run_in_threadpool(guarded, _update, runtime, name, patch, caller))


def _remove(runtime: Runtime, name: str, force: bool, caller: Caller) -> dict[str, Any]:
    door = admin.Remove(name, force=force)
    plan = door.plan(runtime)
    if plan.count and not force:
        raise admin.EndpointBusy(name, plan.count)
    done = door.carry_out(runtime, Actor(caller.name, VIA), plan)
    return {"name": done.name, "removed": True, "failed": done.failed}


async def remove_endpoint(request: Request) -> Response:
    """DELETE /v1/endpoints/{name}[?force=true]: removed, its deliveries kept in the log; 409
    with the count while deliveries to it are pending, unless ``force`` (they are failed,
    reason ``endpoint_removed``)."""
    caller = await authorize(request, "operate")
    given = query_values(request, ("force",)).get("force", "false")
    if given not in ("true", "false"):
        raise invalid([FieldError("force", "expected true or false")])
    name = checked_name(request)
    runtime: Runtime = request.app.state.runtime
    return JSONResponse(await run_in_threadpool(guarded, _remove, runtime, name, given == "true", caller))


def only(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """A 422 naming each field of ``body`` the action does not take."""
    expected = f"expected {', '.join(allowed)}" if allowed else "this action takes no fields"
    unknown = [FieldError(k[:40], f"unknown field; {expected}") for k in body if k not in allowed]
    if unknown:
        raise invalid(unknown)


def _disable(runtime: Runtime, name: str, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
    only(body, ("reason",))
    reason = body.get("reason", DEFAULT_REASON)
    if (
        not isinstance(reason, str)
        or not reason.strip()
        or len(reason) > MAX_REASON
        or not reason.isprintable()
    ):
        raise invalid([FieldError("reason", f"expected 1 to {MAX_REASON} printable characters")])
    done = Disable(name, reason.strip()).carry_out(runtime, actor)
    return {"name": name, "disabled": True, "changed": done.changed}


def _enable(runtime: Runtime, name: str, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
    only(body, ("resend_held_back",))
    resend = body.get("resend_held_back", False)
    if not isinstance(resend, bool):
        raise invalid([FieldError("resend_held_back", f"expected true or false, got {json_type(resend)}")])
    done = Enable(name, resend=resend).carry_out(runtime, actor)
    return {
        "name": name,
        "disabled": False,
        "changed": done.changed,
        "held_back": done.held_back,
        "requeued": done.requeued,
        "resent": done.resent,
    }


def _pause(runtime: Runtime, name: str, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
    only(body, ())
    done = admin.Pause(name).carry_out(runtime, actor)
    return {"name": name, "paused": True, "changed": done.changed}


def _resume(runtime: Runtime, name: str, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
    only(body, ())
    done = admin.Resume(name).carry_out(runtime, actor)
    return {"name": name, "paused": False, "changed": done.changed, "woken": done.woken}


def _rotate_key(runtime: Runtime, name: str, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
    only(body, ("key",))
    key = body.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        raise invalid([FieldError("key", f"required: the new key, 1 to {MAX_KEY} characters")])
    admin.RotateKey(name, key).carry_out(runtime, actor)
    return {"name": name, "key_rotated": True, "sent_from": "the next attempt"}


def _rotate_secret(runtime: Runtime, name: str, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
    only(body, ("grace_seconds",))
    grace = body.get("grace_seconds", DEFAULT_GRACE_SECONDS)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE_SECONDS:
        raise invalid(
            [FieldError("grace_seconds", f"expected a whole number of seconds from 0 to {MAX_GRACE_SECONDS}")]
        )
    done = admin.RotateSecret(name, grace).carry_out(runtime, actor)
    return {"name": name, "secret": done.secret, "retiring_until": json_ready(done.retiring_until)}


ACTIONS: dict[str, Action] = {
    "disable": _disable,
    "enable": _enable,
    "pause": _pause,
    "resume": _resume,
    "rotate-key": _rotate_key,
    "rotate-secret": _rotate_secret,
}


async def endpoint_action(request: Request) -> Response:
    """POST /v1/endpoints/{name}/{action}: disable (``reason``?), enable (``resend_held_back``?),
    pause, resume, rotate-key (``key``), rotate-secret (``grace_seconds``?: the old secret
    signs beside the new one this long; a day unless given). 200 with what it did; the new
    signing secret is in the answer to rotate-secret, and nowhere else."""
    act = ACTIONS.get(request.path_params["action"])
    if act is None:
        raise ApiProblem(404, f"no such action: POST /v1/endpoints/{{name}}/ takes {', '.join(ACTIONS)}")
    caller = await authorize(request, "operate")
    query_values(request, ())
    name = checked_name(request)
    runtime: Runtime = request.app.state.runtime
    body = await json_object(request, runtime.settings.api.max_body_bytes, empty_ok=True)
    done = await run_in_threadpool(guarded, act, runtime, name, body, Actor(caller.name, VIA))
    return JSONResponse(done, headers=NO_STORE)
