"""The operator's actions on an endpoint through the console (``dispatcher/console/
endpoint_actions.py``): disable and enable, pause and resume, rotate the key and the signing
secret, remove; each asked first, done through the ``ops`` door the CLI uses and audited under
the signed-in user's name; an unknown name is a 404 page, a viewer is refused and sees no
action. The endpoints page shows each endpoint's paused state and circuit breaker."""

from __future__ import annotations

import json
import re

from dispatcher import dispatch, store
from dispatcher.config import BreakerSettings
from dispatcher.console.app import create_app
from dispatcher.contract import catalogue as events
from dispatcher.ops import audit
from dispatcher.policy import breaker as breaker_policy
from dispatcher.sending import breaker
from dispatcher.store import endpoint_catalog

from .conftest import ENDPOINT_KEY, console_section, csrf_of, seed

NEW_PATHS = ("pause", "resume", "rotate-key", "rotate-secret", "remove", "edit")


def test_disable_and_enable_an_endpoint(client_for, runtime):
    operator = client_for("olivia")
    confirm = operator.get("/endpoints/lab/disable")
    assert confirm.status_code == 200 and store.disabled_endpoints(runtime.engine) == {}
    operator.post(
        "/endpoints/lab/disable", data={"csrf": csrf_of(confirm.text), "reason": "partner maintenance"}
    )
    assert store.disabled_endpoints(runtime.engine) == {"lab": "partner maintenance"}
    assert "partner maintenance" in operator.get("/endpoints").text
    enable = operator.get("/endpoints/lab/enable")
    assert 'id="count">0<' in enable.text
    operator.post("/endpoints/lab/enable", data={"csrf": csrf_of(enable.text)})
    assert store.disabled_endpoints(runtime.engine) == {}
    actions = [(e.actor, e.action, e.selection["endpoint"]) for e in audit.entries(runtime.engine)]
    assert actions == [("olivia", "endpoints disable", "lab"), ("olivia", "endpoints enable", "lab")]
    assert operator.get("/endpoints/nowhere/disable").status_code == 404


def paused(runtime) -> frozenset[str]:
    return store.endpoints.gate_states(runtime.engine)[1]


def test_pause_and_resume_ask_first_and_the_page_says_paused(client_for, runtime):
    operator = client_for("olivia")
    waiting = dispatch("order_changed", events.get_event("order_changed").example(), endpoints=["lab"])
    ask = operator.get("/endpoints/lab/pause")
    assert ask.status_code == 200 and 'id="count">1<' in ask.text and "</strong> pending delivery" in ask.text
    assert paused(runtime) == frozenset()  # asking changed nothing
    done = operator.post("/endpoints/lab/pause", data={"csrf": csrf_of(ask.text)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/endpoints"
    assert paused(runtime) == {"lab"}
    page = operator.get("/endpoints").text
    assert 'id="paused-lab"' in page and 'id="paused-pharmacy"' not in page
    assert 'href="/endpoints/lab/resume"' in page and 'href="/endpoints/pharmacy/pause"' in page
    ask = operator.get("/endpoints/lab/resume")
    assert 'id="count">1<' in ask.text and "</strong> waiting delivery" in ask.text
    resumed = operator.post("/endpoints/lab/resume", data={"csrf": csrf_of(ask.text)})
    assert resumed.status_code == 200 and "resumed lab: 1 waiting delivery sent on" in resumed.text
    assert paused(runtime) == frozenset() and 'id="paused-lab"' not in operator.get("/endpoints").text
    assert store.get_delivery(runtime.engine, waiting[0])["status"] == "queued"
    again = operator.post("/endpoints/lab/resume", data={"csrf": csrf_of(ask.text)})
    assert "lab was not paused; nothing changed" in again.text
    rows = [(e.actor, e.action, e.selection, e.counts) for e in audit.entries(runtime.engine)]
    assert rows[:2] == [
        ("olivia", "endpoints pause", {"endpoint": "lab", "via": "console"}, {"changed": 1}),
        ("olivia", "endpoints resume", {"endpoint": "lab", "via": "console"}, {"changed": 1, "woken": 1}),
    ]
    assert operator.get("/endpoints/nowhere/pause").status_code == 404


def test_rotating_the_key_never_shows_it(client_for, runtime):
    operator = client_for("olivia")
    form = operator.get("/endpoints/pharmacy/rotate-key")
    assert form.status_code == 200
    assert re.search(r'<input type="password" name="key" id="key"[^>]*>', form.text)
    assert "value=" not in re.search(r'<input type="password"[^>]*>', form.text).group(0)
    same = operator.post(
        "/endpoints/pharmacy/rotate-key", data={"csrf": csrf_of(form.text), "key": ENDPOINT_KEY}
    )
    assert same.status_code == 400 and "key: is the key in use now" in same.text
    assert ENDPOINT_KEY not in same.text  # the key typed is not echoed back
    empty = operator.post("/endpoints/pharmacy/rotate-key", data={"csrf": csrf_of(form.text), "key": "  "})
    assert empty.status_code == 400 and "key: type the new key" in empty.text
    new_key = "a-brand-new-partner-key-7781"
    done = operator.post("/endpoints/pharmacy/rotate-key", data={"csrf": csrf_of(form.text), "key": new_key})
    assert done.status_code == 200 and "the new key is sent from the next attempt on" in done.text
    assert new_key not in done.text and new_key not in operator.get("/endpoints").text
    assert endpoint_catalog.stored(runtime.engine, "pharmacy").definition["key"] == new_key
    assert runtime.settings.require_endpoint("pharmacy").key == new_key
    [entry] = audit.entries(runtime.engine)
    assert (entry.action, entry.selection["endpoint"], entry.selection["settings"]) == (
        "endpoints rotate-key",
        "pharmacy",
        ["key"],
    )
    assert new_key not in json.dumps([entry.selection, entry.counts])


def test_rotating_the_signing_secret_shows_it_once(client_for, runtime):
    operator = client_for("olivia")
    form = operator.get("/endpoints/lab/rotate-secret")
    assert form.status_code == 200 and 'name="grace" id="grace" value="24h"' in form.text
    assert "new signing secret" in form.text  # the plan's sentence
    bad = operator.post("/endpoints/lab/rotate-secret", data={"csrf": csrf_of(form.text), "grace": "soon"})
    assert bad.status_code == 400 and "grace: " in bad.text and "is not a duration" in bad.text
    assert runtime.settings.require_endpoint("lab").signing_secrets == ()  # nothing rotated
    first = operator.post("/endpoints/lab/rotate-secret", data={"csrf": csrf_of(form.text), "grace": "2h"})
    secret = re.search(r'<pre class="json" id="secret">([^<]+)</pre>', first.text).group(1)
    assert secret.startswith("whsec_") and "shown only this once" in first.text
    assert "Only the new secret signs" in first.text  # lab had none to retire
    second = operator.post("/endpoints/lab/rotate-secret", data={"csrf": csrf_of(form.text), "grace": "2h"})
    newer = re.search(r'id="secret">([^<]+)<', second.text).group(1)
    assert newer != secret and "The old secret signs beside it until" in second.text
    row = endpoint_catalog.stored(runtime.engine, "lab")
    assert row.definition["signing_secret"] == newer and [r.secret for r in row.retiring] == [secret]
    assert runtime.settings.require_endpoint("lab").signing_secrets == (newer, secret)
    for path in ("/endpoints", "/audit", "/endpoints/lab/edit"):
        page = operator.get(path).text
        assert secret not in page and newer not in page, path
    entries = audit.entries(runtime.engine)
    assert [e.selection["grace_seconds"] for e in entries] == [7200, 7200]
    assert not any(s in json.dumps([e.selection, e.counts]) for e in entries for s in (secret, newer))


def test_removing_asks_with_the_pending_count_and_fails_them_only_when_told(client_for, runtime):
    operator = client_for("olivia")
    pending = seed(runtime, status="queued", endpoint="lab")
    ask = operator.get("/endpoints/lab/remove")
    assert (
        'id="count">1<' in ask.text
        and "</strong> pending delivery" in ask.text
        and 'name="force"' in ask.text
    )
    refused = operator.post("/endpoints/lab/remove", data={"csrf": csrf_of(ask.text), "expected": "1"})
    assert refused.status_code == 409 and "has 1 pending delivery; nothing was removed" in refused.text
    assert runtime.settings.endpoint("lab") is not None
    second = seed(runtime, status="queued", endpoint="lab")  # one more meanwhile: it asks again
    changed = operator.post(
        "/endpoints/lab/remove", data={"csrf": csrf_of(ask.text), "expected": "1", "force": "1"}
    )
    assert changed.status_code == 409 and "count changed" in changed.text and 'id="count">2<' in changed.text
    assert runtime.settings.endpoint("lab") is not None
    done = operator.post(
        "/endpoints/lab/remove", data={"csrf": csrf_of(ask.text), "expected": "2", "force": "1"}
    )
    assert done.status_code == 200 and "removed lab; 2 pending deliveries failed" in done.text
    assert (
        runtime.settings.endpoint("lab") is None
        and 'id="endpoint-lab"' not in operator.get("/endpoints").text
    )
    for request_id in (pending, second):
        row = store.get_delivery(runtime.engine, request_id)
        assert (row["status"], row["reason"]) == ("failed", "endpoint_removed")
    assert operator.get("/endpoints/lab/remove").status_code == 404
    entry = audit.entries(runtime.engine)[-1]
    assert (entry.action, entry.selection, entry.counts) == (
        "endpoints remove",
        {"endpoint": "lab", "force": True, "via": "console"},
        {"removed": 1, "failed": 2},
    )


def test_a_viewer_sees_no_action_and_is_refused_each(client_for, runtime):
    viewer = client_for("victor")
    page = viewer.get("/endpoints").text
    assert "pharmacy" in page and 'id="breaker-pharmacy"' in page
    for verb in (*NEW_PATHS, "disable", "enable"):
        assert f"/endpoints/pharmacy/{verb}" not in page, verb
        assert viewer.get(f"/endpoints/pharmacy/{verb}").status_code == 403, verb
        refused = viewer.post(f"/endpoints/pharmacy/{verb}", data={"csrf": csrf_of(page), "force": "1"})
        assert refused.status_code == 403 and "only an operator" in refused.text, verb
    assert "/endpoints/add" not in page and viewer.get("/endpoints/add").status_code == 403
    assert paused(runtime) == frozenset() and runtime.settings.endpoint("pharmacy") is not None
    assert audit.entries(runtime.engine) == []


def test_a_form_without_its_token_is_refused(client_for, runtime):
    operator = client_for("olivia")
    for verb in NEW_PATHS:
        assert (
            operator.post(f"/endpoints/lab/{verb}", data={"csrf": "forged", "force": "1"}).status_code == 403
        )
    assert paused(runtime) == frozenset() and runtime.settings.endpoint("lab") is not None


def test_the_page_shows_each_breaker(make_runtime, runtime):
    custom = make_runtime(
        endpoints=[
            {"name": "pharmacy", "url": "http://127.0.0.1:9/hook"},
            {"name": "lab", "url": "http://127.0.0.1:9/lab"},
            {"name": "fax", "url": "http://127.0.0.1:9/fax", "breaker": False},
        ],
        console=console_section(),
    )
    settings = BreakerSettings()
    opened = None
    for _ in range(settings.min_attempts):
        opened = breaker.record(custom.redis, "pharmacy", settings, breaker_policy.Sample.FAILED) or opened
    assert opened is not None and opened.open_until is not None
    from starlette.testclient import TestClient

    from .conftest import sign_in

    with TestClient(create_app(custom)) as client:
        assert sign_in(client, "victor").status_code == 303
        page = client.get("/endpoints").text
    shown = dict(re.findall(r'id="breaker-([a-z]+)">([^<]+)<', page))
    assert shown == {
        "pharmacy": f"open until {opened.open_until:%H:%M:%S} UTC",
        "lab": "closed",
        "fax": "off",
    }
