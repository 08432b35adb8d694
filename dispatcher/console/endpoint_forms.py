"""The operator adds and edits an endpoint in the console: a form whose body is the endpoint as
YAML -- the mapping the configuration file's ``endpoints:`` holds for it (``name: pharmacy``,
``url: https://...``, ``events: [order_changed]``) -- checked by the door, as ``dispatcher
endpoints add|edit`` is (:class:`~dispatcher.ops.endpoint_admin.Add`,
:class:`~dispatcher.ops.endpoint_admin.Edit`), which stores and audits it, its actor the
signed-in user. A mistake is its one line naming the setting, above the form kept as typed.

Editing shows the endpoint's stored mapping with every secret masked ``****`` wherever ``show``
masks it, and any of its secrets found in another value masked too. A secret left ``****``
keeps its stored value: only what the operator changed goes to the door -- each value that
differs from the one shown, by its dotted path (``auth.basic.username``), and each deleted or
emptied, to unset -- so neither a masked secret nor a setting someone else changed meanwhile is
written over. A changed value that still holds ``****`` is refused: it would store the mask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..config.endpoint_records import endpoint_definition
from ..config.files import parse_yaml as load_yaml_text
from ..errors import ConfigError, DispatcherError, UnknownEndpoint
from ..ops import endpoint_admin as admin
from ..ops.door import Actor
from ..redaction import MASK
from ..runtime import Runtime
from ..store import endpoint_catalog
from .auth import Principal
from .endpoint_actions import one_line
from .guard import page, refuse, render

EXAMPLE = "name: pharmacy\nurl: https://rx.example/webhooks/baremeds\nevents: [order_changed]\n"
"""What the add form's body suggests (its placeholder)."""
SOURCE = "endpoint"
"""What a YAML mistake names: the form's one field."""
Changes = tuple[dict[str, Any], list[str]]


def read_definition(text: str) -> dict[str, Any]:
    """The endpoint the form's YAML holds: a mapping of its settings, read with the configuration
    file's own bounded loader (plain YAML, no alias bombs).

    Raises:
        ConfigError: the text is no YAML, or not one mapping.
    """
    if not text.strip():
        raise ConfigError(SOURCE, "type the endpoint's settings as YAML (name: ..., url: ...)")
    found = load_yaml_text(SOURCE, text)
    if not isinstance(found, dict):
        raise ConfigError(SOURCE, "must be one mapping of settings (name: ..., url: ...), as in the file")
    _text_keys(found)
    return found


def _text_keys(value: Any, at: str = "") -> None:
    """Every key of the mapping, however deep, is text, as a setting's name is.

    Raises:
        ConfigError: naming where a key is not.
    """
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise ConfigError(at or SOURCE, f"{key!r} is not a setting's name; names are text")
            _text_keys(inner, f"{at}.{key}" if at else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _text_keys(inner, f"{at}[{i}]")


class _Dumper(yaml.SafeDumper):
    """Block style, but a list of plain values on one line (``events: [order_changed]``)."""

    def represent_list(self, data: Any) -> yaml.Node:  # type: ignore[override]
        flat = all(not isinstance(item, dict | list) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _Dumper.represent_list)


def as_yaml(document: Mapping[str, Any]) -> str:
    """A mapping as the form shows it, in its order: block style, a list of plain values on one line."""
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def masked_like(value: Any, shown: Any, mask: Callable[[str], str]) -> Any:
    """``value`` (a stored mapping, or a value in one) with each text masked where ``shown``
    (the same setting as ``show`` prints it) holds ``****`` instead, and every secret ``mask``
    knows masked in the others."""
    if isinstance(value, dict):
        inner = shown if isinstance(shown, dict) else {}
        return {key: masked_like(item, inner.get(key), mask) for key, item in value.items()}
    if isinstance(value, list):
        items = shown if isinstance(shown, list) else []
        return [masked_like(v, items[i] if i < len(items) else None, mask) for i, v in enumerate(value)]
    if isinstance(value, str):
        if isinstance(shown, list) and shown:  # one signing secret, shown as a list of one
            shown = shown[0]
        if isinstance(shown, str) and MASK in shown and shown != value:
            return shown
        return mask(value)
    return value


def _holds_mask(value: Any) -> bool:
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, dict):
        return any(_holds_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_mask(v) for v in value)
    return False


def _compare(shown: Mapping[str, Any], edited: Mapping[str, Any], prefix: str, found: Changes) -> None:
    changes, unset = found
    for key, value in edited.items():
        path = f"{prefix}{key}"
        before = shown.get(key)
        if value is None:
            if before is not None:
                unset.append(path)
        elif isinstance(value, dict) and isinstance(before, dict) and "." not in "".join(map(str, value)):
            _compare(before, value, f"{path}.", found)
        elif key not in shown or before != value:
            if _holds_mask(value):
                raise ConfigError(path, f"still holds {MASK} (a masked secret): type the whole new value")
            changes[path] = value
    unset += [f"{prefix}{key}" for key, value in shown.items() if key not in edited and value is not None]


def changes_between(
    shown: Mapping[str, Any], edited: Mapping[str, Any]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """What the operator changed: each value that differs from the one shown (a new setting
    included), by its dotted path, and each setting deleted or emptied (``null``), to unset.

    Raises:
        ConfigError: the name was changed (an endpoint keeps its name), or a changed value still
            holds ``****``.
    """
    if edited.get("name") != shown.get("name"):
        raise ConfigError("name", "an endpoint keeps its name; add a new endpoint and remove this one")
    found: Changes = ({}, [])
    _compare(shown, edited, "", found)
    return found[0], tuple(found[1])


def _form(request: Request, who: Principal, status: int = 200, **context: Any) -> Response:
    context.setdefault("problem", None)
    context.setdefault("notice", None)
    context.setdefault("shown", None)
    return render(request, who, "endpoint_form.html", status=status, example=EXAMPLE, **context)


@page(operator=True)
def add(request: Request, who: Principal, form: FormData | None) -> Response:
    """A new endpoint, from its YAML; to the endpoints page once stored."""
    runtime = request.app.state.runtime
    context: dict[str, Any] = {"title": "Add an endpoint", "action": "/endpoints/add", "editing": False}
    if form is None:
        return _form(request, who, text="", **context)
    text = str(form.get("yaml", ""))
    try:
        admin.Add(read_definition(text)).carry_out(runtime, Actor.console(who.name))
    except DispatcherError as exc:
        return _form(request, who, 400, text=text, problem=one_line(exc), **context)
    return RedirectResponse("/endpoints", status_code=303)


def shown_definition(runtime: Runtime, name: str) -> dict[str, Any]:
    """The endpoint's mapping as the edit form shows it: the stored one (before the file's
    endpoints were ever imported, the one the import will store), secrets masked.

    Raises:
        UnknownEndpoint: no endpoint has that name.
    """
    view = admin.endpoint_view(runtime, name)
    endpoint = runtime.settings.require_endpoint(name)
    row = endpoint_catalog.stored(runtime.engine, name)
    definition = (
        row.definition if row is not None else endpoint_definition(endpoint, runtime.settings.delivery)
    )
    masked = masked_like(dict(definition), view["settings"], runtime.masker_for(endpoint))
    return dict(masked)


@page(operator=True)
def edit(request: Request, who: Principal, form: FormData | None) -> Response:
    """The endpoint's settings as YAML; what the operator changed goes to the door."""
    runtime = request.app.state.runtime
    name = request.path_params["name"]
    try:
        current = as_yaml(shown_definition(runtime, name))
    except UnknownEndpoint:
        return refuse(request, who, 404, "no endpoint has this name")
    context: dict[str, Any] = {"title": f"Edit {name}", "action": f"/endpoints/{name}/edit", "editing": True}
    if form is None:
        return _form(request, who, text=current, shown=current, **context)
    text, shown = str(form.get("yaml", "")), str(form.get("shown", "")) or current
    context.update(text=text, shown=shown)
    try:
        changes, unset = changes_between(read_definition(shown), read_definition(text))
        if not changes and not unset:
            return _form(request, who, notice="Nothing changed: every setting is as shown.", **context)
        done = admin.Edit(name, changes, unset).carry_out(runtime, Actor.console(who.name))
    except DispatcherError as exc:
        return _form(request, who, 400, problem=one_line(exc), **context)
    changed = ", ".join(done.settings) if done.settings else "nothing (the values given are those stored)"
    return render(request, who, "done.html", back="/endpoints", message=f"changed {done.name}: {changed}")
