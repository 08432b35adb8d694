"""A request's JSON body, read within ``api.max_body_bytes``: a body over the limit is refused
(413) before more than the limit is read, one that is not JSON is refused (400) with where it
went wrong, and neither reaches a handler."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .problems import ApiProblem

JSON_TYPES = ("application/json", "application/merge-patch+json")


def json_type(value: Any) -> str:
    """A JSON value's type as JSON names it."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def too_large(limit: int) -> ApiProblem:
    return ApiProblem(
        413,
        f"the request body is larger than api.max_body_bytes ({limit} bytes): send less at once "
        "(POST /v1/events/batch takes up to 1000 events)",
    )


async def raw_body(request: Request, limit: int) -> bytes:
    """The body's bytes, at most ``limit`` of them (413 past it, read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse(body: bytes) -> Any:
    """The JSON value of ``body`` (UTF-8), or a 400 saying where it is not JSON."""
    if not body.strip():
        raise ApiProblem(
            400, "the request body is empty: send a JSON object (Content-Type: application/json)"
        )
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ApiProblem(
            400, f"the request body is not UTF-8 (byte {exc.start}): send JSON in UTF-8"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ApiProblem(
            400, f"the request body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise ApiProblem(400, f"the request body is not JSON: {exc}"[:300]) from exc


def check_media_type(request: Request) -> None:
    """A body must say it is JSON (415 otherwise; no Content-Type at all is taken as JSON)."""
    given = request.headers.get("content-type")
    if given is None:
        return
    media = given.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise ApiProblem(415, f"Content-Type {media!r} is not JSON: send application/json")


async def json_body(request: Request, limit: int) -> Any:
    """The request's JSON value (400, 413, 415 as above)."""
    check_media_type(request)
    return parse(await raw_body(request, limit))


async def json_object(request: Request, limit: int, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``empty_ok``: no body at all is ``{}`` (an action whose
    options are all optional)."""
    body = await raw_body(request, limit)
    if empty_ok and not body.strip():
        return {}
    check_media_type(request)
    value = parse(body)
    if not isinstance(value, dict):
        raise ApiProblem(400, f"the request body must be a JSON object, got {json_type(value)}")
    return value
