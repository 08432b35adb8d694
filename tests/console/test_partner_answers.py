"""What a partner answers is PHI on the delivery page too (issue 21, finding 5): a viewer sees each
attempt's status code and failure kind, never the partner's words (its reason phrase in the
error, its body); an operator sees them once revealed, which is audited."""

from __future__ import annotations

import sqlalchemy as sa

from dispatcher import store
from dispatcher.store import audit
from tests.console.conftest import csrf_of, seed

PHRASE = "Unprocessable: patient Jane Roe, DOB 1961-04-12"
TIMEOUT = {"failure": "timeout"} if "failure" in store.ATTEMPTS.c else {}
"""The failure kind of the timed-out attempt (a column since migration 0009)."""


def answered_by_the_partner(runtime) -> str:
    """A failed delivery whose attempts are a timeout, then a 422 naming the patient."""
    request_id = seed(runtime, answer=None)
    attempts = store.ATTEMPTS
    with runtime.engine.begin() as conn:
        conn.execute(
            attempts.update()
            .where(attempts.c.request_id == request_id)
            .values(http_status=None, error="read timeout after 5001 ms", **TIMEOUT)
        )
        row = conn.execute(sa.select(attempts).where(attempts.c.request_id == request_id)).mappings().one()
        values = {k: v for k, v in row.items() if k != "id"}
        conn.execute(
            attempts.insert().values(
                {
                    **values,
                    "attempt": 2,
                    "retry": True,
                    "http_status": 422,
                    "error": f"HTTP 422 {PHRASE}",
                    **{kind: None for kind in TIMEOUT},  # answered: no failure kind
                }
            )
        )
    return request_id


def test_a_viewer_sees_the_status_code_and_the_kind_but_not_the_partners_words(client_for, runtime):
    request_id = answered_by_the_partner(runtime)

    html = client_for("victor").get(f"/deliveries/{request_id}").text

    assert "Jane Roe" not in html and "Unprocessable" not in html
    assert "HTTP 422" in html and "timeout" in html
    assert "error text hidden" in html


def test_an_operator_sees_the_partners_words_once_revealed_and_audited(client_for, runtime):
    request_id = answered_by_the_partner(runtime)
    operator = client_for("olivia")
    page = operator.get(f"/deliveries/{request_id}")
    assert "Jane Roe" not in page.text and 'id="reveal"' in page.text

    revealed = operator.post(f"/deliveries/{request_id}/reveal", data={"csrf": csrf_of(page.text)})

    assert revealed.status_code == 200
    assert f"HTTP 422 {PHRASE}" in revealed.text and "read timeout after 5001 ms" in revealed.text
    [entry] = audit.entries(runtime.engine)
    assert entry.action == "delivery reveal" and entry.selection["request_id"] == request_id


def test_the_reveal_button_shows_for_an_erased_payload_whose_attempt_kept_an_error(client_for, runtime):
    request_id = answered_by_the_partner(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update().where(store.DELIVERIES.c.request_id == request_id).values(payload=None)
        )

    page = client_for("olivia").get(f"/deliveries/{request_id}")

    assert 'id="reveal"' in page.text and "Jane Roe" not in page.text
