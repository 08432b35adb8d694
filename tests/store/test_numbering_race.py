"""Two writers, one place in the key (issue 21 #11), against the real Redis, on SQLite and
PostgreSQL: every writer that numbers an ordering key -- dispatch, dispatch_many, the outbox,
``retry ID``, ``retry --failed``, replay -- numbers under the key's one lock, so two at the same
moment never get the same place.

The interleaving is made, not hoped for: the first writer is paused just before its COMMIT,
after numbering (a threading.Event), and the second runs until it finishes or is seen waiting
for the first (on PostgreSQL an ungranted lock in ``pg_locks``; on SQLite it has asked for the
write lock, which the paused writer holds); only then is the first let go."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dispatcher import dispatch, dispatch_many, store
from dispatcher.contract import catalogue as events
from dispatcher.intake.outbox import dispatch_in_transaction
from dispatcher.ops import replay, resend
from dispatcher.store import ordering
from dispatcher.store.sealing import new_key
from dispatcher.times import utcnow
from dispatcher.vocabulary import DeliveryStatus
from tests.conftest import wait_for

ORDER = events.CATALOGUE["order_changed"].example()  # its key: order_number=ORDER123
ENDPOINT = {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123", "ordered": True}


@pytest.fixture
def runtime(make_runtime, database_url: str):
    # A storage key: a key then has two stored forms (keyed, and unkeyed from before keys were set).
    return make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[new_key()])


def _outbox(_runtime, _failed) -> list[str]:
    with Session(_runtime.engine) as session:
        ids = dispatch_in_transaction(session, "order_changed", ORDER)
        session.commit()
    return ids


def _retry(runtime, failed: str) -> list[str]:
    assert resend.retry_one(runtime, failed) == (resend.REQUEUED, DeliveryStatus.FAILED)
    return [failed]


def _bulk_retry(runtime, failed: str) -> list[str]:
    report = resend.retry_failed(runtime, store.Selection(statuses=(DeliveryStatus.FAILED,)), matched=1)
    assert report.ids.items == [failed]
    return [failed]


def _replay(runtime, failed: str) -> list[str]:
    selection = store.Selection(endpoint="partner-a", until=utcnow())
    report = replay.replay(runtime, selection, "partner-a", matched=1)
    assert [r["replay_of"] for r in report.replays.items] == [failed]
    return [r["request_id"] for r in report.replays.items]


WRITERS: dict[str, Callable[..., list[str]]] = {
    "dispatch": lambda _runtime, _failed: dispatch("order_changed", ORDER),
    "dispatch_many": lambda _runtime, _failed: dispatch_many("order_changed", [ORDER]),
    "outbox": _outbox,
    "retry": _retry,
    "bulk_retry": _bulk_retry,
    "replay": _replay,
}


class Writer(threading.Thread):
    """Runs one writer in its own thread, keeping what it returned or raised."""

    def __init__(self, work: Callable[[], list[str]]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.ids: list[str] = []
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.ids = self.work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            self.error = exc
        finally:
            self.done.set()

    def result(self) -> list[str]:
        assert self.done.wait(60), "the writer never finished"
        if self.error is not None:
            raise self.error
        return self.ids


class PauseBeforeCommit:
    """Pauses one thread's transaction just before its COMMIT, once it has numbered a key."""

    def __init__(self, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.thread: threading.Thread | None = None
        self.numbered = threading.Event()
        self.paused = threading.Event()
        self.release = threading.Event()
        original = ordering.number

        def number(conn, rows, keys):  # type: ignore[no-untyped-def]
            answer = original(conn, rows, keys)
            if threading.current_thread() is self.thread:
                self.numbered.set()
            return answer

        monkeypatch.setattr(ordering, "number", number)
        sa.event.listen(engine, "commit", self._commit)

    def _commit(self, _conn: sa.Connection) -> None:
        if threading.current_thread() is self.thread and self.numbered.is_set() and not self.paused.is_set():
            self.paused.set()
            assert self.release.wait(60)


class AsksForTheWriteLock:
    """Set when another thread asks SQLite for the write lock (its BEGIN IMMEDIATE is sent)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.thread: threading.Thread | None = None
        self.asked = threading.Event()
        sa.event.listen(engine, "before_cursor_execute", self._execute)

    def _execute(self, _conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if threading.current_thread() is self.thread and statement.startswith("BEGIN IMMEDIATE"):
            self.asked.set()


def waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one())


def places(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        query = sa.select(store.DELIVERIES.c.request_id, store.DELIVERIES.c.ordering_seq)
        return {rid: seq for rid, seq in conn.execute(query)}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("retry", "dispatch"),
        ("dispatch", "retry"),
        ("bulk_retry", "dispatch_many"),
        ("outbox", "bulk_retry"),
        ("replay", "retry"),
        ("retry", "replay"),
    ],
)
def test_two_writers_to_one_key_at_once_get_different_places(runtime, monkeypatch, first, second) -> None:
    engine = runtime.engine
    (failed,) = dispatch("order_changed", ORDER)  # place 1 of the key
    store.fail_delivery(engine, failed, "HTTP 404 is not retried")
    pause = PauseBeforeCommit(engine, monkeypatch)
    asks = AsksForTheWriteLock(engine)

    paused = Writer(lambda: WRITERS[first](runtime, failed))
    pause.thread = paused
    paused.start()
    assert pause.paused.wait(60), f"{first} never reached its commit"
    other = Writer(lambda: WRITERS[second](runtime, failed))
    asks.thread = other
    other.start()
    if engine.dialect.name == "postgresql":
        wait_for(lambda: other.done.is_set() or waiting_on_a_lock(engine), message=f"{second} to wait or end")
    else:
        wait_for(lambda: other.done.is_set() or asks.asked.is_set(), message=f"{second} to ask for the lock")
    pause.release.set()
    first_ids, second_ids = paused.result(), other.result()

    seqs = places(engine)
    assert len(set(seqs.values())) == len(seqs), f"two deliveries share a place: {seqs}"
    assert max(seqs[r] for r in first_ids) < min(seqs[r] for r in second_ids)  # in commit order
