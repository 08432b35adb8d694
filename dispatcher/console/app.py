"""The console's ASGI app: its routes, templates, stylesheet and middleware.

:func:`create_app` takes the runtime (settings, engine, Redis) it reads through, so a test
builds one on its own databases. Without ``console.session_secret`` a random secret signs the
sessions, and they end when the process does.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..runtime import Runtime
from ..times import format_utc
from . import actions, endpoint_actions, login, pages
from .throttle import LoginThrottle
from .web import SecureHeaders

HERE = Path(__file__).resolve().parent
COOKIE = "dispatcher_console"


async def home(request: Request) -> Response:
    return RedirectResponse("/deliveries", status_code=303)


ROUTES = [
    Route("/", home),
    Route("/login", login.login_form, methods=["GET"]),
    Route("/login", login.login, methods=["POST"]),
    Route("/logout", login.logout, methods=["POST"]),
    Route("/deliveries", pages.deliveries),
    Route("/deliveries/patient", pages.find_patient, methods=["POST"]),
    Route("/deliveries/{request_id}", pages.delivery),
    Route("/deliveries/{request_id}/reveal", pages.reveal, methods=["POST"]),
    Route("/deliveries/{request_id}/retry", actions.retry_one, methods=["GET", "POST"]),
    Route("/actions/retry-failed", actions.retry_failed, methods=["GET", "POST"]),
    Route("/actions/replay", endpoint_actions.replay_range, methods=["GET", "POST"]),
    Route("/endpoints", pages.endpoint_list),
    Route("/endpoints/{name}/disable", endpoint_actions.disable, methods=["GET", "POST"]),
    Route("/endpoints/{name}/enable", endpoint_actions.enable, methods=["GET", "POST"]),
    Route("/queue", pages.queue_page),
    Route("/audit", pages.audit_page),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def _when(moment: object) -> str:
    """A time as the CLI writes it (UTC); nothing for None."""
    if isinstance(moment, datetime):
        return format_utc(moment)
    return "" if moment is None else str(moment)


def templates() -> Jinja2Templates:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
    )
    environment.filters["when"] = _when
    return Jinja2Templates(env=environment)


def create_app(runtime: Runtime, session_secret: str | None = None) -> Starlette:
    """The console over ``runtime``; sessions signed with ``console.session_secret``, else
    ``session_secret``, else a random secret."""
    console = runtime.settings.console
    secret = console.session_secret.reveal() if console.session_secret else session_secret
    secret = secret or secrets.token_urlsafe(32)
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SecureHeaders, https=console.https),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie=COOKIE,
                max_age=console.session_hours * 3600,
                same_site="strict",
                https_only=console.https,
            ),
        ],
    )
    app.state.runtime = runtime
    app.state.secret = secret
    app.state.throttle = LoginThrottle()
    app.state.templates = templates()
    return app
