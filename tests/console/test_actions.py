"""The operator's actions through the console: each confirmed with its count first, done through
the CLI's own code, and audited under the signed-in user's name; a viewer's refused."""

from __future__ import annotations

import re

from dispatcher import queue, store
from dispatcher.ops import audit

from .conftest import csrf_of, seed


def test_retry_one_asks_first_then_requeues_and_audits_the_user(client_for, runtime):
    request_id = seed(runtime)
    operator = client_for("olivia")
    confirm = operator.get(f"/deliveries/{request_id}/retry")
    assert confirm.status_code == 200 and 'id="count">1<' in confirm.text
    assert store.get_delivery(runtime.engine, request_id)["status"] == "failed"  # asking changed nothing
    done = operator.post(
        f"/deliveries/{request_id}/retry", data={"csrf": csrf_of(confirm.text)}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"/deliveries/{request_id}?done=requeued"
    assert store.get_delivery(runtime.engine, request_id)["status"] == "queued"
    assert queue.job_states(runtime.queue, [request_id])[0][0] is not None
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.selection["request_ids"], entry.counts["requeued"]) == (
        "olivia",
        "retry",
        [request_id],
        1,
    )
    assert entry.selection == {"request_ids": [request_id], "via": "console"}
    assert entry.counts == {"requeued": 1, "left_alone": 0}
    again = operator.get(f"/deliveries/{request_id}/retry")
    assert again.status_code == 409 and "its status is queued" in again.text


def test_a_viewers_retry_is_refused_and_changes_nothing(client_for, runtime):
    request_id = seed(runtime)
    viewer = client_for("victor")
    page = viewer.get(f"/deliveries/{request_id}")
    assert viewer.get(f"/deliveries/{request_id}/retry").status_code == 403
    refused = viewer.post(f"/deliveries/{request_id}/retry", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 403 and "only an operator" in refused.text
    assert store.get_delivery(runtime.engine, request_id)["status"] == "failed"
    assert audit.entries(runtime.engine) == []
    for path in (
        "/actions/retry-failed",
        "/actions/replay",
        "/endpoints/lab/disable",
        "/endpoints/lab/enable",
    ):
        assert viewer.get(path).status_code == 403, path
        assert viewer.post(path, data={"csrf": csrf_of(page.text)}).status_code == 403, path


def test_retry_failed_of_a_filter_confirms_the_count_and_recounts(client_for, runtime):
    lab = [seed(runtime, endpoint="lab") for _ in range(3)]
    pharmacy = seed(runtime, endpoint="pharmacy")
    seed(runtime, endpoint="lab", status="delivered")
    operator = client_for("olivia")
    confirm = operator.get("/actions/retry-failed", params={"endpoint": "lab"})
    assert 'id="count">3<' in confirm.text
    query = re.search(r'name="query" value="([^"]+)"', confirm.text).group(1).replace("&amp;", "&")
    seed(runtime, endpoint="lab")  # one more fails meanwhile: the count changed, it asks again
    changed = operator.post(
        "/actions/retry-failed", data={"csrf": csrf_of(confirm.text), "query": query, "expected": "3"}
    )
    assert "count changed" in changed.text and 'id="count">4<' in changed.text
    done = operator.post(
        "/actions/retry-failed", data={"csrf": csrf_of(confirm.text), "query": query, "expected": "4"}
    )
    assert "re-queued 4 of 4" in done.text
    statuses = {rid: store.get_delivery(runtime.engine, rid)["status"] for rid in [*lab, pharmacy]}
    assert statuses == {**dict.fromkeys(lab, "queued"), pharmacy: "failed"}
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.selection["endpoint"], entry.counts["requeued"]) == ("olivia", "lab", 4)
    assert entry.selection == {
        "endpoint": "lab",
        "statuses": ["failed"],
        "with_payload": True,
        "via": "console",
    }
