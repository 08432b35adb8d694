"""RFC 9457 problem documents: every refusal the API makes is ``application/problem+json``
with ``type``, ``title``, ``status`` and a ``detail`` sentence that says what to do, and for
invalid input an ``errors`` list naming each bad field by its path (``data.order_number``,
``events[3].data.order_number``).

Handlers raise :class:`ApiProblem`; the app's exception handler turns it into the response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

MEDIA_TYPE = "application/problem+json"
TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}
"""RFC 9110's names where Python's http module keeps the older ones."""


def title_of(status: int) -> str:
    """The status's reason phrase, as RFC 9110 names it."""
    return TITLES.get(status) or HTTPStatus(status).phrase


class ApiProblem(Exception):
    """A refusal: its status, a sentence saying what was wrong, and the fields at fault."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail or title_of(status))
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.title = title or title_of(status)

    def document(self) -> dict[str, Any]:
        """The problem's JSON document."""
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = [error.document() for error in self.errors]
        return body


@dataclass(frozen=True)
class FieldError:
    """One bad field: its path in the request (``events[3].data.order_number``, or a query
    parameter's name) and what is wrong with it."""

    field: str
    detail: str

    def document(self) -> dict[str, str]:
        return {"field": self.field, "detail": self.detail}


def invalid(errors: Sequence[FieldError], detail: str | None = None) -> ApiProblem:
    """A 422 for ``errors``; its detail the first error, and how many more."""
    if detail is None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more: see errors)" if len(errors) > 1 else ""
        detail = f"{first.field}: {first.detail}{more}"
    return ApiProblem(422, detail, errors=errors)


def problem_response(problem: ApiProblem) -> JSONResponse:
    """The response for ``problem``."""
    return JSONResponse(
        problem.document(), status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE
    )
