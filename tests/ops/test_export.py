"""The export door (:mod:`dispatcher.ops.export`): its plan reads only (counting the rows when
asked), carrying it out streams the rows and writes one audit row -- also when the reader went
away first, with the rows it took."""

from __future__ import annotations

import io
import json

import pytest

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.ops import audit
from dispatcher.ops.door import Actor
from dispatcher.ops.export import Export
from dispatcher.vocabulary import AuditAction

ORDER = events.CATALOGUE["order_changed"].example()
ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "key-b-456"},
]


class ReaderGone(io.StringIO):
    """A pipe whose reader leaves after the first line."""

    def write(self, text: str) -> int:
        if self.tell():
            raise BrokenPipeError
        return super().write(text)


@pytest.fixture
def runtime(make_runtime):
    runtime = make_runtime(endpoints=ENDPOINTS)
    for _ in range(3):
        dispatch("order_changed", ORDER)
    return runtime


def test_the_plan_reads_only_and_counts_when_asked(runtime) -> None:
    selection = store.Selection(endpoint="partner-a")
    stream = io.StringIO()
    plan = Export(selection, "deliveries", "csv", stream).plan(runtime)
    assert (plan.action, plan.count) == (AuditAction.LOG_EXPORT, None)
    assert plan.selection == {"endpoint": "partner-a", "rows": "deliveries", "format": "csv"}
    counted = Export(selection, "deliveries", "csv", stream, counted=True).plan(runtime)
    assert counted.count == 3 and counted.description == "Export 3 deliveries rows of the log as csv."
    assert stream.getvalue() == "" and audit.entries(runtime.engine) == []


def test_carrying_out_writes_the_rows_and_one_audit_row(runtime) -> None:
    stream = io.StringIO()
    advanced: list[int] = []
    door = Export(store.Selection(), "deliveries", "jsonl", stream, counted=True)
    done = door.carry_out(runtime, Actor.console("olivia"), progress=advanced.append)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (done.rows, done.reader_left, len(lines), sum(advanced)) == (6, False, 6, 6)
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.counts) == ("olivia", "log export", {"rows": 6})
    assert entry.selection == {"rows": "deliveries", "format": "jsonl", "via": "console"}


def test_a_reader_gone_early_ends_the_export_quietly_and_it_is_audited(runtime) -> None:
    done = Export(store.Selection(), "deliveries", "jsonl", ReaderGone()).carry_out(runtime, Actor.cli())
    assert (done.rows, done.reader_left) == (1, True)
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.selection, entry.counts) == (
        audit.os_actor(),
        {"rows": "deliveries", "format": "jsonl"},
        {"rows": 1},
    )
