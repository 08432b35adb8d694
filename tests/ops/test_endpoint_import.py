"""A file's endpoints against the database's (:mod:`dispatcher.ops.endpoint_import`) on SQLite and
PostgreSQL: importing adds what the database lacks and leaves the rest (naming what differs);
``replace`` makes the database the file's list exactly, failing the waiting deliveries of the
endpoints it removes; ``file_differences`` names each endpoint of the file that the database
lacks or holds otherwise, and nothing before the first import."""

from __future__ import annotations

import pytest

from dispatcher import dispatch, store
from dispatcher.config.endpoint_records import endpoint_definition
from dispatcher.contract import catalogue as events
from dispatcher.errors import ConfigError
from dispatcher.ops import audit
from dispatcher.ops.door import Actor
from dispatcher.ops.endpoint_admin import Add, Edit
from dispatcher.ops.endpoint_import import Import, file_differences
from dispatcher.store import endpoint_catalog
from dispatcher.vocabulary import AuditAction, DeliveryStatus

ORDER = events.CATALOGUE["order_changed"].example()
A = {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-12345"}
B = {
    "name": "partner-b",
    "url": "http://127.0.0.1:9/b",
    "disable_after": {"failed_deliveries": 3, "window": "1d"},
}


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=[A, B])


def file_definitions(runtime) -> list[dict]:
    return [endpoint_definition(e, runtime.settings.delivery) for e in runtime.file_endpoints]


def names(runtime) -> list[str]:
    return [row.name for row in endpoint_catalog.catalog(runtime.engine)[1]]


def test_nothing_differs_before_the_first_import_nor_right_after_it(runtime) -> None:
    assert file_differences(runtime) == []  # the file's are in force
    plan = Import(file_definitions(runtime), source="config.yaml").plan(runtime)
    assert plan.details == {
        "added": (),
        "changed": (),
        "removed": (),
        "unchanged": ("partner-a", "partner-b"),
    }
    assert plan.count == 0 and Import([]).nothing_to_do(plan)
    assert file_differences(runtime) == []
    assert audit.entries(runtime.engine) == []


def test_differences_name_each_endpoint_and_setting_never_a_value(runtime) -> None:
    runtime.adopt_file_endpoints()
    Edit("partner-a", {"key": "key-a-changed", "timeout": 9}).carry_out(runtime, Actor.cli())
    Add({"name": "partner-c", "url": "http://127.0.0.1:9/c"}).carry_out(runtime, Actor.cli())
    endpoint_catalog.remove(runtime.engine, "partner-b")

    lines = file_differences(runtime)

    assert lines == [
        "endpoint partner-a differs between the configuration file and the database (key, timeout); the "
        "database's is in force; `dispatcher endpoints import --replace` makes the database match the file",
        "endpoint partner-b is in the configuration file but not in the database, whose endpoints are in "
        "force; `dispatcher endpoints import` adds it",
    ]
    assert "key-a" not in " ".join(lines)


def test_importing_adds_the_missing_and_leaves_the_others_saying_which_differ(runtime) -> None:
    runtime.adopt_file_endpoints()
    Edit("partner-a", {"timeout": 9}).carry_out(runtime, Actor.cli())
    Add({"name": "partner-c", "url": "http://127.0.0.1:9/c"}).carry_out(runtime, Actor.cli())
    endpoint_catalog.remove(runtime.engine, "partner-b")
    door = Import(file_definitions(runtime), source="config.yaml")
    plan = door.plan(runtime)
    assert plan.details == {
        "added": ("partner-b",),
        "changed": ("partner-a",),
        "removed": ("partner-c",),
        "unchanged": (),
    }
    assert plan.count == 1 and plan.description == "Import endpoints from config.yaml: add partner-b."
    assert any("partner-a: the file's differs" in n and "--replace" in n for n in plan.notes)
    assert any("partner-c: in the database only, kept" in n for n in plan.notes)

    done = door.carry_out(runtime, Actor.cli(), plan)

    assert done.added == ("partner-b",) and names(runtime) == ["partner-a", "partner-c", "partner-b"]
    assert runtime.settings.require_endpoint("partner-a").delivery.timeout == 9  # left as it was
    entry = audit.entries(runtime.engine)[-1]
    assert (entry.action, entry.selection) == (
        AuditAction.ENDPOINTS_IMPORT,
        {"source": "config.yaml", "added": ["partner-b"]},
    )


def test_replacing_makes_the_database_the_files_list_and_fails_what_waits_for_the_removed(runtime) -> None:
    runtime.adopt_file_endpoints()
    Edit("partner-a", {"timeout": 9}).carry_out(runtime, Actor.cli())
    Add({"name": "partner-c", "url": "http://127.0.0.1:9/c"}).carry_out(runtime, Actor.cli())
    waiting = dispatch("order_changed", ORDER, endpoints=["partner-c"])
    door = Import(file_definitions(runtime), replace=True)
    plan = door.plan(runtime)
    assert (
        plan.count == 2
        and plan.details["changed"] == ("partner-a",)
        and plan.details["removed"] == ("partner-c",)
    )
    assert plan.notes == (
        "1 pending delivery to partner-c will be failed (endpoint_removed); their log rows stay",
    )

    done = door.carry_out(runtime, Actor.cli(), plan)

    assert (done.changed, done.removed, done.failed) == (("partner-a",), ("partner-c",), 1)
    assert names(runtime) == ["partner-a", "partner-b"] and file_differences(runtime) == []
    assert runtime.settings.require_endpoint("partner-a").delivery is None  # the file's again
    delivery = store.get_delivery(runtime.engine, waiting[0])
    assert (delivery["status"], delivery["reason"]) == (DeliveryStatus.FAILED, "endpoint_removed")
    entry = audit.entries(runtime.engine)[-1]
    assert entry.selection == {
        "added": [],
        "replace": True,
        "changed": ["partner-a"],
        "removed": ["partner-c"],
    }
    assert entry.counts == {"added": 0, "changed": 1, "removed": 1, "failed": 1}


def test_a_bad_or_repeated_endpoint_in_the_file_is_one_error_naming_it(runtime) -> None:
    with pytest.raises(ConfigError, match=r"endpoints\[1\]\.max_attempts: must be greater than 0"):
        Import([A, {**B, "max_attempts": 0}]).plan(runtime)
    with pytest.raises(ConfigError, match=r"endpoints\[1\]\.name: 'partner-a' is listed twice"):
        Import([A, A]).plan(runtime)
