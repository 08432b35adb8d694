"""The API's ASGI app: its routes, and every refusal as an RFC 9457 problem.

:func:`create_app` takes the runtime (settings, engine, Redis) it works through, so a test
builds one on its own databases. Handlers raise :class:`~.problems.ApiProblem`; Starlette's own
refusals (no such route, method not allowed) and the errors of a database or Redis that does
not answer become problems too (503 with ``Retry-After``), and anything else a 500 problem
that names no detail (the process log has it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import redis
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import telemetry
from ..errors import StoreUnavailable
from ..logs import log_line
from ..queue import connect
from ..runtime import Runtime
from . import deliveries, endpoints, events, health, openapi
from .auth import Gate
from .gather import Gatherer, OutcomeUnknown
from .problems import ApiProblem, problem_response
from .ratelimit import REDIS_TIMEOUT

Handler = Callable[[Request], Awaitable[Response]]


def shared(path: str, **handlers: Handler) -> Route:
    """One route for a path several methods share, so a 405 lists every method the path takes
    (``Allow``), not only one route's."""

    async def by_method(request: Request) -> Response:
        return await handlers[request.method](request)

    return Route(path, by_method, methods=list(handlers))


ROUTES = [
    Route("/v1/events", events.post_event, methods=["POST"]),
    Route("/v1/events/batch", events.post_batch, methods=["POST"]),
    Route("/v1/deliveries", deliveries.list_deliveries, methods=["GET"]),
    Route("/v1/deliveries/retry", deliveries.retry_failed, methods=["POST"]),
    Route("/v1/deliveries/{request_id}", deliveries.show_delivery, methods=["GET"]),
    Route("/v1/deliveries/{request_id}/retry", deliveries.retry_one, methods=["POST"]),
    shared("/v1/endpoints", GET=endpoints.list_endpoints, POST=endpoints.create_endpoint),
    shared(
        "/v1/endpoints/{name}",
        GET=endpoints.show_endpoint,
        PATCH=endpoints.update_endpoint,
        DELETE=endpoints.remove_endpoint,
    ),
    Route("/v1/endpoints/{name}/{action}", endpoints.endpoint_action, methods=["POST"]),
    Route("/v1/health", health.health, methods=["GET"]),
    Route("/v1/openapi.json", openapi.serve_document, methods=["GET"]),
]


async def refused(request: Request, exc: Exception) -> Response:
    """A handler's problem."""
    assert isinstance(exc, ApiProblem)
    return problem_response(exc)


async def starlette_refused(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method not allowed) as problems."""
    assert isinstance(exc, HTTPException)
    detail = {404: "no such route: GET /v1/openapi.json lists them", 405: "method not allowed on this route"}
    problem = ApiProblem(exc.status_code, detail.get(exc.status_code), headers=exc.headers)
    return problem_response(problem)


async def unknown(request: Request, exc: Exception) -> Response:
    """The events were handed to the database and no answer came: 503, retry with the key."""
    return problem_response(ApiProblem(503, str(exc), headers={"Retry-After": "5"}))


async def unavailable(request: Request, exc: Exception) -> Response:
    """The database or Redis did not answer: 503, try again shortly (nothing was done)."""
    what = "redis" if isinstance(exc, redis.RedisError) else "the database"
    log_line(
        logging.WARNING, "api: a request met an unavailable service", service=what, error=type(exc).__name__
    )
    return problem_response(
        ApiProblem(
            503, f"{what} did not answer; nothing was done: retry shortly", headers={"Retry-After": "5"}
        )
    )


class Contained:
    """Anything a handler did not expect: a 500 problem naming no detail, and one process-log
    line with the error's type and the route -- never the message or a traceback, which may
    quote an event's data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - the last net: a 500 problem, logged without its message
            log_line(
                logging.ERROR, "api: a request failed", path=scope.get("path", ""), error=type(exc).__name__
            )
            if started or scope["type"] != "http":
                return
            problem = ApiProblem(500, "the request failed inside the dispatcher: the process log says when")
            await problem_response(problem)(scope, receive, send)


class Traced:
    """Each request's server span while telemetry is on (a child of the caller's
    ``traceparent``), current while the request runs, named by its route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not telemetry.enabled():
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        with telemetry.server_span(scope["method"], headers) as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = scope.get("route")
                span.answered(status, getattr(route, "path", None))


def create_app(runtime: Runtime) -> Starlette:
    """The API over ``runtime``."""
    app = Starlette(
        routes=ROUTES,
        exception_handlers={
            ApiProblem: refused,
            HTTPException: starlette_refused,
            StoreUnavailable: unavailable,
            OutcomeUnknown: unknown,
            SQLAlchemyError: unavailable,
            redis.RedisError: unavailable,
        },
        middleware=[Middleware(Traced), Middleware(Contained)],
    )
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    app.state.redis = connect(runtime.settings.redis_url, REDIS_TIMEOUT)
    app.state.gate = Gate(runtime, app.state.redis)
    app.state.gatherer = Gatherer(runtime)
    return app
