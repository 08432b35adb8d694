"""``dispatcher log list`` in-process (click's runner) against the real Redis and SQLite: its
filters, its paging and a bad time as a usage error. ``log show`` of rows an older version wrote
is in test_log_readers.py."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from dispatcher.times import utcnow
from tests.cli.helpers import invoke


def _age(runtime, request_id: str, hours: float) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(created_at=utcnow() - timedelta(hours=hours))
        )


def test_log_list_filters_and_paging(make_runtime, receiver):
    runtime = make_runtime(
        endpoints=[
            {"name": "partner-a", "url": receiver.url, "key": "ka-1"},
            {"name": "partner-b", "url": receiver.url, "key": "kb-1", "events": ["order_changed"]},
        ]
    )
    example = events.CATALOGUE["order_changed"].example()
    old_a, old_b = dispatch("order_changed", example)
    new_a, new_b = dispatch("order_changed", example)
    (case_a,) = dispatch(
        "case_assigned_to_clinician", events.CATALOGUE["case_assigned_to_clinician"].example()
    )
    _age(runtime, old_a, 48)
    _age(runtime, old_b, 48)

    def ids(*args: str) -> list[str]:
        result = invoke("log", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["request_id"] for row in json.loads(result.output)]

    assert set(ids()) == {old_a, old_b, new_a, new_b, case_a}
    assert set(ids("--endpoint", "partner-b")) == {old_b, new_b}
    assert set(ids("--since", "24h")) == {new_a, new_b, case_a}
    assert set(ids("--until", "1d")) == {old_a, old_b}
    assert ids("--request-id", case_a) == [case_a]
    page1, page2 = ids("--limit", "2"), ids("--limit", "2", "--offset", "2")
    assert len(page1) == 2 and len(page2) == 2 and not set(page1) & set(page2)
    assert set(ids("--since", (utcnow() - timedelta(hours=1)).isoformat())) == {new_a, new_b, case_a}


def test_bad_duration_is_a_clear_usage_error(make_runtime):
    make_runtime()
    result = CliRunner().invoke(cli, ["log", "list", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is neither an ISO 8601 time nor an age like 30m, 2h, 7d" in result.output
