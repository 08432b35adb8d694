"""``dispatcher log list`` in-process (click's runner) against the real Redis and SQLite: its
filters (a business id among them), its paging and a bad time as a usage error. ``log show`` of rows an older version wrote
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


SEARCH_KEY = "search-key-for-tests-0123456789abcdef"


def test_log_list_by_business_id_finds_it_in_whichever_field_holds_it(make_runtime, database_url):
    make_runtime(
        database_url=database_url,
        endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "ka-1"}],
        search_key=SEARCH_KEY,
    )
    order = events.CATALOGUE["order_changed"].example()
    (by_order,) = dispatch("order_changed", order)
    (by_patient,) = dispatch(
        "case_assigned_to_clinician",
        {**events.CATALOGUE["case_assigned_to_clinician"].example(), "patient_id": "ORDER123"},
    )
    dispatch("order_changed", {**order, "order_number": "ORDER124"})

    def ids(*args: str) -> set[str]:
        result = invoke("log", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return {row["request_id"] for row in json.loads(result.output)}

    assert ids("--business-id", "ORDER123") == ids("--business-id", "  ORDER123 ") == {by_order, by_patient}
    assert ids("--business-id", "ORDER123", "--event", "order_changed") == {by_order}
    assert ids("--business-id", "order123") == set()
    result = invoke("log", "list", "--business-id", "ORDER123")
    assert result.exit_code == 0 and by_order in result.stdout and "ORDER123" not in result.stdout


def test_log_list_by_business_id_without_a_search_key_says_how_to_set_one(make_runtime):
    make_runtime()
    result = invoke("log", "list", "--business-id", "ORDER123")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "error: log list --business-id needs search_key: run dispatcher keys generate --search and set "
        "DISPATCHER_SEARCH_KEY\n"
    )
    empty = invoke("log", "list", "--business-id", " ")
    assert empty.exit_code == 1 and empty.stderr == "error: --business-id: expected 1 to 255 characters\n"


def test_log_list_help_says_what_is_not_indexed():
    result = invoke("log", "list", "--help")
    assert "--business-id VALUE" in result.stdout
    assert "dispatched before search_key was set are not indexed" in " ".join(result.stdout.split())


def test_a_generated_key_in_the_environment_indexes_and_finds_as_processes_do(write_config):
    from tests.cli.helpers import run_cli

    config = write_config(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "ka-1"}])
    key = run_cli(config, "keys", "generate", "--search").stdout.strip()
    run_cli(config, "send", "order_changed", "--sample", env={"DISPATCHER_SEARCH_KEY": key})
    run_cli(config, "send", "order_changed", "--sample")  # no key: not indexed

    found = run_cli(
        config, "log", "list", "--json", "--business-id", "ORDER123", env={"DISPATCHER_SEARCH_KEY": key}
    )
    everything = run_cli(config, "log", "list", "--json")
    assert len(json.loads(found.stdout)) == 1 and len(json.loads(everything.stdout)) == 2
    refused = run_cli(config, "log", "list", "--business-id", "ORDER123", check=False)
    assert refused.returncode == 1 and refused.stderr.startswith(
        "error: log list --business-id needs search_key"
    )
    assert "ORDER123" not in found.stderr + refused.stderr
