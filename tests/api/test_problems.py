"""RFC 9457 problem documents: the fields, RFC 9110's titles, and the 422's detail naming the
first bad field."""

from __future__ import annotations

import json

from dispatcher.api.problems import ApiProblem, FieldError, invalid, problem_response, title_of


def test_a_problem_document_has_the_rfc_9457_members() -> None:
    problem = ApiProblem(409, "busy: retry", headers={"Retry-After": "1"})
    assert problem.document() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "busy: retry",
    }
    response = problem_response(problem)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert json.loads(response.body)["status"] == 409


def test_titles_are_rfc_9110s() -> None:
    assert title_of(422) == "Unprocessable Content"
    assert title_of(413) == "Content Too Large"
    assert title_of(404) == "Not Found"


def test_an_invalid_problem_names_the_first_field_and_counts_the_rest() -> None:
    one = invalid([FieldError("data.order_number", "expected a string, got int 5")])
    assert one.status == 422 and one.detail == "data.order_number: expected a string, got int 5"
    three = invalid([FieldError("a", "x"), FieldError("b", "y"), FieldError("c", "z")])
    assert three.detail == "a: x (and 2 more: see errors)"
    assert three.document()["errors"] == [
        {"field": "a", "detail": "x"},
        {"field": "b", "detail": "y"},
        {"field": "c", "detail": "z"},
    ]
