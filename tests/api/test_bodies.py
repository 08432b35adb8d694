"""Reading a request's JSON: the size limit before reading on, JSON only, and a clear 400."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from starlette.requests import Request

from dispatcher.api.bodies import json_body, json_object
from dispatcher.api.problems import ApiProblem


def request(chunks: Iterable[bytes], headers: dict[str, str] | None = None) -> tuple[Request, list[int]]:
    """A request whose body arrives in ``chunks``; and how many chunks were read."""
    parts = list(chunks)
    read: list[int] = []

    async def receive() -> dict[str, object]:
        index = len(read)
        read.append(index)
        body = parts[index] if index < len(parts) else b""
        return {"type": "http.request", "body": body, "more_body": index < len(parts) - 1}

    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw}, receive), read


def refusal(coroutine: object) -> ApiProblem:
    with pytest.raises(ApiProblem) as caught:
        asyncio.run(coroutine)  # type: ignore[arg-type]
    return caught.value


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    req, read = request([b"{}"], {"content-length": "5000"})
    assert refusal(json_body(req, 1024)).status == 413
    assert read == []


def test_a_stream_over_the_limit_is_refused_at_the_chunk_that_passes_it() -> None:
    req, read = request([b"x" * 600, b"x" * 600, b"x" * 600])
    assert refusal(json_body(req, 1024)).status == 413
    assert len(read) == 2


def test_json_within_the_limit_is_read() -> None:
    req, _ = request([b'{"a": ', b"[1, 2]}"])
    assert asyncio.run(json_object(req, 1024)) == {"a": [1, 2]}


def test_an_action_with_no_body_reads_as_an_empty_object() -> None:
    req, _ = request([b""])
    assert asyncio.run(json_object(req, 1024, empty_ok=True)) == {}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{", "not JSON: Expecting property name"),
        (b'{"a": Infinity}', "Infinity is not JSON"),
        (b'"text"', "must be a JSON object, got string"),
    ],
)
def test_what_is_not_a_json_object_is_a_400_saying_why(content: bytes, words: str) -> None:
    req, _ = request([content])
    problem = refusal(json_object(req, 1024))
    assert problem.status == 400 and words in str(problem.detail)


@pytest.mark.parametrize(
    "media", ["application/json; charset=utf-8", "application/merge-patch+json", "application/vnd.x+json"]
)
def test_json_media_types_are_accepted(media: str) -> None:
    req, _ = request([b"{}"], {"content-type": media})
    assert asyncio.run(json_object(req, 1024)) == {}


def test_another_media_type_is_415() -> None:
    req, _ = request([b"a=1"], {"content-type": "application/x-www-form-urlencoded"})
    assert refusal(json_object(req, 1024)).status == 415
