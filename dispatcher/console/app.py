"""The console's ASGI app: its routes, templates, stylesheet and middleware.

:func:`create_app` takes the runtime (settings, engine, Redis) it reads through, so a test
builds one on its own databases. Sessions are kept in Redis (:mod:`.sessions`). Without
``console.session_secret`` a random secret keys the sign-in form's CSRF token and the patient
links, so a form or link from before a restart is refused once.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..runtime import Runtime
from ..times import format_utc
from . import actions, endpoint_actions, endpoint_forms, login, pages, replay_action
from .sessions import COOKIE
from .web import SecureHeaders, short_page

HERE = Path(__file__).resolve().parent
__all__ = ["COOKIE", "create_app"]


async def home(request: Request) -> Response:
    return RedirectResponse("/deliveries", status_code=303)


ROUTES = [
    Route("/", home),
    Route("/login", login.login_form, methods=["GET"]),
    Route("/login", login.login, methods=["POST"]),
    Route("/logout", login.logout, methods=["POST"]),
    Route("/deliveries", pages.deliveries),
    Route("/deliveries/patient", pages.find_patient, methods=["POST"]),
    Route("/deliveries/find", pages.find_business, methods=["POST"]),
    Route("/deliveries/{request_id}", pages.delivery),
    Route("/deliveries/{request_id}/reveal", pages.reveal, methods=["POST"]),
    Route("/deliveries/{request_id}/retry", actions.retry_one, methods=["GET", "POST"]),
    Route("/actions/retry-failed", actions.retry_failed, methods=["GET", "POST"]),
    Route("/actions/replay", replay_action.replay_range, methods=["GET", "POST"]),
    Route("/endpoints", pages.endpoint_list),
    Route("/endpoints/add", endpoint_forms.add, methods=["GET", "POST"]),
    Route("/endpoints/{name}/edit", endpoint_forms.edit, methods=["GET", "POST"]),
    Route("/endpoints/{name}/disable", endpoint_actions.disable, methods=["GET", "POST"]),
    Route("/endpoints/{name}/enable", endpoint_actions.enable, methods=["GET", "POST"]),
    Route("/endpoints/{name}/pause", endpoint_actions.pause, methods=["GET", "POST"]),
    Route("/endpoints/{name}/resume", endpoint_actions.resume, methods=["GET", "POST"]),
    Route("/endpoints/{name}/rotate-key", endpoint_actions.rotate_key, methods=["GET", "POST"]),
    Route("/endpoints/{name}/rotate-secret", endpoint_actions.rotate_secret, methods=["GET", "POST"]),
    Route("/endpoints/{name}/remove", endpoint_actions.remove, methods=["GET", "POST"]),
    Route("/queue", pages.queue_page),
    Route("/audit", pages.audit_page),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def _when(moment: object, compact: bool = False) -> str:
    """A time as the CLI writes it (UTC), or ``compact`` for a list whose heading says UTC
    (``2026-01-31 08:00:00``); nothing for None."""
    if isinstance(moment, datetime):
        text = format_utc(moment)
        return text[:19].replace("T", " ") if compact else text
    return "" if moment is None else str(moment)


def _breakable(name: object) -> Markup:
    """A name (an event, an endpoint) that a narrow column may break after ``_``, ``-`` or ``.``."""
    return Markup(re.sub(r"([_.-])", r"\1<wbr>", str(escape(name))))


def templates() -> Jinja2Templates:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
    )
    environment.filters["when"] = _when
    environment.filters["breakable"] = _breakable
    return Jinja2Templates(env=environment)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such page, method not allowed) as the console's short page."""
    assert isinstance(exc, HTTPException)
    response = short_page(request.scope, exc.status_code, str(exc.detail).lower())
    response.headers.update(exc.headers or {})
    return response


def create_app(
    runtime: Runtime, session_secret: str | None = None, listen_host: str | None = None
) -> Starlette:
    """The console over ``runtime``, answering to ``console.allowed_hosts`` (by default the
    ``listen_host``, localhost, 127.0.0.1 and ::1); forms and patient links keyed with
    ``console.session_secret``, else ``session_secret``, else a random secret."""
    console = runtime.settings.console
    secret = console.session_secret.reveal() if console.session_secret else session_secret
    secret = secret or secrets.token_urlsafe(32)
    hosts = console.hosts(listen_host)
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                SecureHeaders,
                https=console.https,
                hosts=hosts,
                public_url=console.public_url,
            ),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.router.redirect_slashes = False  # its redirect is to the Host's address; web.py's is a path
    app.state.runtime = runtime
    app.state.secret = secret
    app.state.hosts = hosts  # a form's Origin must name one of them (guard.same_origin)
    app.state.templates = templates()
    return app
