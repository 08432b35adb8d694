"""The operator's replay through the console: counted first, sent again as new deliveries when
confirmed with that count, and audited under the signed-in user's name."""

from __future__ import annotations

from dispatcher import store
from dispatcher.ops import audit

from .conftest import csrf_of, seed


def test_replay_counts_then_sends_the_range_again_as_new_deliveries(client_for, runtime):
    originals = [seed(runtime, endpoint="lab", status="delivered") for _ in range(2)]
    operator = client_for("olivia")
    counted = operator.get("/actions/replay", params={"endpoint": "lab", "since": "1h"})
    assert 'id="count">2<' in counted.text
    assert store.count(runtime.engine, store.Selection()) == 2
    done = operator.post(
        "/actions/replay",
        data={
            "csrf": csrf_of(counted.text),
            "endpoint": "lab",
            "since": "1h",
            "expected": "2",
            "confirmed": "1",
        },
    )
    assert "replayed 2 of 2 to lab" in done.text
    rows = store.list_deliveries(runtime.engine, store.Selection(endpoint="lab"), limit=10)
    replays = {store.get_delivery(runtime.engine, r["request_id"])["replay_of"] for r in rows} - {None}
    assert replays == set(originals)
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.counts["replayed"]) == ("olivia", "replay", 2)
    assert entry.selection["via"] == "console" and entry.selection["endpoint"] == "lab"
    missing = operator.get("/actions/replay", params={"endpoint": "lab"})
    assert "since is required" in missing.text
