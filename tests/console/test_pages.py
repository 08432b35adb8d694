"""The console's pages through Starlette's test client: who gets in, what each role sees, and
that no PHI or secret reaches a viewer's page or a URL."""

from __future__ import annotations

import re

from dispatcher import store
from dispatcher.console.app import COOKIE
from dispatcher.ops import audit
from dispatcher.store import counts

from .conftest import (
    ENDPOINT_KEY,
    SECRET_ANSWER,
    SECRET_ENCOUNTER,
    SECRET_PATIENT,
    SESSION_SECRET,
    csrf_of,
    password_hashes,
    seed,
    sign_in,
)

PAGES = ("/deliveries", "/endpoints", "/queue", "/audit")


def test_every_page_sends_a_signed_out_visitor_to_the_login_page(client_for):
    client = client_for()
    for path in (*PAGES, "/deliveries/x", "/actions/replay", "/endpoints/lab/disable"):
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/login"), path


def test_a_wrong_password_is_refused_and_a_right_one_signs_in(client_for):
    client = client_for()
    assert sign_in(client, "victor", "wrong").status_code == 401
    assert sign_in(client, "nobody", "wrong").status_code == 401
    response = sign_in(client, "victor")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "secure" not in cookie.lower()
    assert client.get("/deliveries").status_code == 200


def test_the_cookie_is_secure_when_served_over_https(console_runtime):
    from starlette.testclient import TestClient

    from dispatcher.console.app import create_app

    client = TestClient(create_app(console_runtime(https=True)), base_url="https://testserver")
    cookie = sign_in(client, "victor").headers["set-cookie"].lower()
    assert "; secure" in cookie
    assert client.get("/deliveries").headers["strict-transport-security"]


def test_five_failures_for_a_name_within_a_minute_lock_it_out(client_for):
    client = client_for()
    for _ in range(5):
        assert sign_in(client, "olivia", "guess").status_code == 401
    locked = sign_in(client, "olivia")  # even the right password, for a minute
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert sign_in(client, "victor").status_code == 303  # another name is not locked


def test_login_and_every_form_need_the_csrf_token(client_for, runtime):
    client = client_for()
    client.get("/login")
    refused = client.post(
        "/login", data={"name": "olivia", "password": "operator-pass-1"}, follow_redirects=False
    )
    assert refused.status_code == 403
    operator = client_for("olivia")
    request_id = seed(runtime)
    assert operator.post(f"/deliveries/{request_id}/retry", data={}).status_code == 403
    assert operator.post(f"/deliveries/{request_id}/retry", data={"csrf": "forged"}).status_code == 403
    assert operator.post("/endpoints/lab/disable", data={"csrf": "forged"}).status_code == 403
    assert not runtime.disabled.get()


def test_every_response_carries_the_security_headers(client_for):
    client = client_for("victor")
    for path in (*PAGES, "/login", "/static/console.css"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "default-src 'none'" in csp
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"


def test_no_page_has_a_script_or_an_inline_style(client_for, runtime):
    request_id = seed(runtime)
    client = client_for("olivia")
    for path in (
        *PAGES,
        f"/deliveries/{request_id}",
        f"/deliveries/{request_id}/retry",
        "/endpoints/lab/disable",
    ):
        html = client.get(path).text
        assert "<script" not in html and "style=" not in html and " on" + "click" not in html, path


def test_a_viewer_sees_the_delivery_but_no_phi_and_no_secret(client_for, runtime):
    request_id = seed(runtime)
    viewer = client_for("victor")
    html = viewer.get(f"/deliveries/{request_id}").text
    assert request_id in html and "HTTP 500" in html and "prescription_submitted" in html
    for phi in (SECRET_PATIENT, SECRET_ENCOUNTER, SECRET_ANSWER):
        assert phi not in html
    assert "hidden: event data is PHI" in html
    assert 'id="reveal"' not in html and 'id="retry"' not in html
    everything = "".join(viewer.get(path).text for path in PAGES)
    for secret in (ENDPOINT_KEY, SESSION_SECRET, *password_hashes().values()):
        assert secret not in everything and secret not in html


def test_revealing_is_an_operators_audited_action(client_for, runtime):
    request_id = seed(runtime)
    viewer = client_for("victor")
    page = viewer.get(f"/deliveries/{request_id}")
    assert (
        viewer.post(f"/deliveries/{request_id}/reveal", data={"csrf": csrf_of(page.text)}).status_code == 403
    )
    assert audit.entries(runtime.engine) == []
    operator = client_for("olivia")
    page = operator.get(f"/deliveries/{request_id}")
    assert SECRET_PATIENT not in page.text
    revealed = operator.post(f"/deliveries/{request_id}/reveal", data={"csrf": csrf_of(page.text)})
    assert revealed.status_code == 200
    assert SECRET_PATIENT in revealed.text and SECRET_ANSWER in revealed.text
    assert ENDPOINT_KEY not in revealed.text
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.selection["request_id"]) == (
        "olivia",
        "delivery reveal",
        request_id,
    )
    assert SECRET_PATIENT not in str(entry.selection) + str(entry.counts)


def test_the_deliveries_page_filters_and_pages_newest_first(client_for, runtime):
    from datetime import timedelta

    from dispatcher.times import utcnow

    now = utcnow()
    old = [
        seed(runtime, status="delivered", created_at=now - timedelta(hours=5, minutes=i)) for i in range(60)
    ]
    failed = seed(runtime, status="failed", endpoint="lab", created_at=now - timedelta(minutes=1))
    client = client_for("victor")
    first = client.get("/deliveries").text
    ids = re.findall(r'href="/deliveries/([0-9a-f-]{36})"', first)
    assert ids[0] == failed and len(ids) == 50
    assert ids[1:] == old[:49]
    older = re.search(r'href="/deliveries\?([^"]+)" class="button quiet" id="older"', first).group(1)
    second = client.get(f"/deliveries?{older.replace('&amp;', '&')}").text
    assert re.findall(r'href="/deliveries/([0-9a-f-]{36})"', second) == old[49:]
    only_failed = client.get("/deliveries", params={"status": "failed", "endpoint": "lab"}).text
    assert re.findall(r'href="/deliveries/([0-9a-f-]{36})"', only_failed) == [failed]
    recent = client.get("/deliveries", params={"since": "2h"}).text
    assert re.findall(r'href="/deliveries/([0-9a-f-]{36})"', recent) == [failed]
    by_id = client.get("/deliveries", params={"request_id": old[3]}).text
    assert re.findall(r'href="/deliveries/([0-9a-f-]{36})"', by_id) == [old[3]]
    bad = client.get("/deliveries", params={"status": "lost", "since": "yesterday-ish"}).text
    assert "no such status" in bad and "neither an ISO 8601 time" in bad


def test_a_patient_search_finds_their_deliveries_and_keeps_the_id_out_of_urls(client_for, runtime):
    mine = seed(runtime, patient_id=SECRET_PATIENT)
    seed(runtime, patient_id="someone-else", encounter_id="another-visit")
    client = client_for("victor")
    page = client.get("/deliveries")
    found = client.post(
        "/deliveries/patient",
        data={"patient_id": SECRET_PATIENT, "csrf": csrf_of(page.text), "status": "failed"},
        follow_redirects=False,
    )
    location = found.headers["location"]
    assert found.status_code == 303 and SECRET_PATIENT not in location and "patient=" in location
    listed = client.get(location).text
    assert re.findall(r'href="/deliveries/([0-9a-f-]{36})"', listed) == [mine]
    assert SECRET_PATIENT not in listed
    by_encounter = client.post(
        "/deliveries/patient", data={"encounter_id": "another-visit", "csrf": csrf_of(page.text)}
    ).text
    assert (
        mine not in by_encounter and len(re.findall(r'href="/deliveries/([0-9a-f-]{36})"', by_encounter)) == 1
    )
    forged = client.get("/deliveries", params={"patient": "not-a-token"}).text
    assert "the patient filter has expired" in forged


def test_the_endpoints_queue_and_audit_pages(client_for, runtime, redis_url):
    seed(runtime, status="delivered")
    seed(runtime, status="failed")
    client = client_for("victor")
    endpoints = client.get("/endpoints").text
    assert "pharmacy" in endpoints and "lab" in endpoints and "<svg" in endpoints
    assert "<b>50.0 %</b> of 2 deliveries (1 delivered, 1 failed)" in endpoints
    assert "degraded" in endpoints and "idle" in endpoints
    queue = client.get("/queue").text
    assert "send-webhook-request" in queue and "No worker is registered" in queue
    audit.record(runtime.engine, "retry", {"request_ids": ["x"]}, {"requeued": 0}, actor="someone")
    assert "someone retried delivery x (left alone, not re-queued)" in client.get("/audit").text


def test_an_endpoints_success_rate_is_per_delivery_not_per_attempt(client_for, runtime):
    """Three deliveries that ended -- two delivered (one after three failed attempts), one failed
    -- are 66.7 %, whatever the six attempts say; one still retrying is not counted."""
    from dispatcher.times import utcnow

    delivered_late = seed(runtime, status="delivered")
    with runtime.engine.begin() as conn:
        for n in (2, 3, 4):  # three more attempts before it was delivered
            conn.execute(
                store.ATTEMPTS.insert().values(
                    request_id=delivered_late, event="prescription_submitted", endpoint="pharmacy",
                    url="http://127.0.0.1:9/hook", attempt=n, retry=True, outcome="retry_scheduled",
                    http_status=503, created_at=utcnow(),
                )
            )  # fmt: skip
    seed(runtime, status="delivered")
    seed(runtime, status="failed")
    seed(runtime, status="retrying")
    page = client_for("victor").get("/endpoints").text
    assert "<b>66.7 %</b> of 3 deliveries (2 delivered, 1 failed)" in page and "· 7 attempts" in page
    assert 'health-degraded">degraded' in page  # by the deliveries' 66.7 %, not the attempts' 2 of 7


def test_the_status_counts_count_what_the_other_filters_select(client_for, runtime):
    seed(runtime, status="failed")
    seed(runtime, status="failed")
    seed(runtime, status="delivered")
    seed(runtime, status="failed", endpoint="lab")
    with runtime.engine.begin() as conn:  # as a worker's recording keeps them (seed writes rows only)
        counts.add(conn, {"failed": 3, "delivered": 1})
    client = client_for("victor")

    def chips(params: dict) -> dict[str, str]:
        html = client.get("/deliveries", params=params).text
        return dict(re.findall(r'id="count-([a-z_]+)">[a-z ]+ <b>([0-9,]+)</b>', html))

    assert chips({}) == {
        "all": "4",
        "queued": "0",
        "in_flight": "0",
        "retrying": "0",
        "delivered": "1",
        "failed": "3",
    }
    assert chips({"endpoint": "lab"})["all"] == "1" and chips({"endpoint": "lab"})["failed"] == "1"
    # choosing a status lists it, and the chips still show every status of the other filters
    assert chips({"endpoint": "pharmacy", "status": "failed"}) == chips({"endpoint": "pharmacy"})
    assert chips({"endpoint": "pharmacy"})["failed"] == "2"
    assert chips({"since": "1h", "until": "30m"})["all"] == "0"
    html = client.get("/deliveries", params={"endpoint": "lab"}).text
    assert (
        'href="/deliveries?status=failed&amp;endpoint=lab"' in html and "counted within these filters" in html
    )


def test_the_list_says_why_a_delivery_is_not_delivered(client_for, runtime):
    failed = seed(runtime, status="failed")
    delivered = seed(runtime, status="delivered")
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == failed)
            .values(reason="HTTP 500; attempts exhausted (5 of 5)")
        )
    html = client_for("victor").get("/deliveries").text
    cells = dict(
        re.findall(r'href="/deliveries/([0-9a-f-]{36})".*?<td class="reason"[^>]*>([^<]*)</td>', html, re.S)
    )
    assert cells == {failed: "HTTP 500", delivered: ""}
    assert 'title="HTTP 500; attempts exhausted (5 of 5)"' in html


def test_the_audit_page_reads_in_words_newest_first_a_page_at_a_time(client_for, runtime):
    for n in range(55):
        audit.record(
            runtime.engine,
            "retry",
            {"endpoint": "pharmacy", "statuses": ["failed"], "with_payload": True, "via": "console"},
            {"matched": n, "requeued": n},
            actor=f"person-{n}",
        )
    client = client_for("victor")
    first = client.get("/audit").text
    sentences = re.findall(r'<div class="sentence">([^<]+)</div>', first)
    assert len(sentences) == 50
    assert sentences[0] == "person-54 (console) retried 54 failed deliveries to pharmacy"
    assert sentences[-1].startswith("person-5 (console)")
    assert "{" not in first.split("<main>")[1] and "&#39;" not in first and "=" not in "".join(sentences)
    older = re.search(r'href="/audit\?before=(\d+)" class="button quiet" id="older"', first)
    assert older
    second = client.get(f"/audit?before={older.group(1)}").text
    assert [s.split(" ")[0] for s in re.findall(r'<div class="sentence">([^<]+)</div>', second)] == [
        f"person-{n}" for n in reversed(range(5))
    ]
    assert 'id="older"' not in second and 'id="newest"' in second
    assert "Nothing older." in client.get("/audit?before=1").text
    assert len(re.findall('class="sentence"', client.get("/audit?before=nonsense").text)) == 50


def test_the_proxy_header_is_believed_only_from_the_trusted_addresses(console_runtime):
    from starlette.testclient import TestClient

    from dispatcher.console.app import create_app

    runtime = console_runtime(
        trusted_proxy={"header": "X-Forwarded-User", "from": ["10.0.0.0/8"]},
        proxy_roles={"sso-olga": "operator", "sso-vik": "viewer"},
    )
    app = create_app(runtime)
    inside = TestClient(app, client=("10.1.2.3", 5000))
    outside = TestClient(app, client=("192.0.2.7", 5000))
    assert (
        outside.get(
            "/deliveries", headers={"X-Forwarded-User": "sso-olga"}, follow_redirects=False
        ).status_code
        == 303
    )
    page = inside.get("/deliveries", headers={"X-Forwarded-User": "sso-olga"})
    assert page.status_code == 200 and "sso-olga" in page.text and "operator" in page.text
    assert inside.get("/deliveries", headers={"X-Forwarded-User": "stranger"}).status_code == 403
    viewer = inside.get("/endpoints/lab/disable", headers={"X-Forwarded-User": "sso-vik"})
    assert viewer.status_code == 403
