"""Each endpoint's circuit breaker in the real Redis (dispatcher.sending.breaker): the window,
the opening won by one caller, the one probe across callers, closing and reopening. Times are
passed as ``now`` (seconds), so nothing waits on the clock; races are forced by running the
compare-and-set steps of two callers in turn."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.config import BreakerSettings
from dispatcher.policy.breaker import PROBE_WAIT_SECONDS, Admission, Sample
from dispatcher.sending import breaker
from dispatcher.sending.breaker import Move, admit, read, record, release_probe, settle_probe, states
from dispatcher.vocabulary import BreakerState

T = 1_800_000_000.0
SETTINGS = BreakerSettings(
    failure_ratio=0.7, min_attempts=10, window_seconds=60, open_seconds=30, max_open_seconds=100
)
NAME = "pharmacy"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def open_it(client, now: float = T) -> breaker.Change:
    """Ten failed attempts at ``now``: the tenth opens it."""
    changes = [record(client, NAME, SETTINGS, Sample.FAILED, now=now) for _ in range(10)]
    assert changes[:9] == [None] * 9
    assert changes[9] is not None
    return changes[9]


def test_a_breaker_never_opened_is_closed_and_lets_every_delivery_go(redis_client) -> None:
    assert admit(redis_client, NAME, "r1", 60, now=T).admission is Admission.GO
    view = states(redis_client, [NAME], now=T)[NAME]
    assert view.state is BreakerState.CLOSED and view.open_until is None and view.gauge == 0
    assert view.text() == "closed"


def test_it_opens_at_70_percent_of_10_attempts_and_says_who_opened_it(redis_client) -> None:
    for _ in range(3):
        assert record(redis_client, NAME, SETTINGS, Sample.ANSWERED, now=T) is None
    changes = [record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T + 1) for _ in range(7)]
    assert changes[:6] == [None] * 6
    opened = changes[6]
    assert opened is not None and opened.move is Move.OPENED
    assert (opened.attempts, opened.failures) == (10, 7)
    assert opened.at == at(T + 1) and opened.since == at(T + 1)
    assert opened.open_until == at(T + 31)
    # more failures while open change nothing, and nobody else "opens" it again
    assert record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T + 2) is None
    view = states(redis_client, [NAME], now=T + 2)[NAME]
    assert view.state is BreakerState.OPEN and view.gauge == 1
    assert view.open_until == at(T + 31) and view.since == at(T + 1)
    assert view.text() == "open until 2027-01-15T08:00:31Z"


def test_answers_and_attempts_that_never_reached_the_partner_keep_it_closed(redis_client) -> None:
    for _ in range(4):
        record(redis_client, NAME, SETTINGS, Sample.ANSWERED, now=T)
    for _ in range(20):  # token errors and the like count for nothing
        assert record(redis_client, NAME, SETTINGS, Sample.NOTHING, now=T) is None
    for _ in range(6):
        assert record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T) is None  # 6 of 10: 60 %
    assert read(redis_client, NAME, now=T)[0].open is False


def test_the_window_forgets_attempts_older_than_it(redis_client) -> None:
    for _ in range(9):
        record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T)
    assert record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T + 60) is None  # the nine are gone
    assert record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T + 61) is None
    window = redis_client.hgetall(breaker.window_key(NAME))
    assert set(window) == {
        f"a:{int(T) + 60}".encode(),
        f"f:{int(T) + 60}".encode(),
        f"a:{int(T) + 61}".encode(),
        f"f:{int(T) + 61}".encode(),
    }
    assert redis_client.ttl(breaker.window_key(NAME)) > 60
    # within the window they all count
    for _ in range(8):
        last = record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T + 100)
    assert last is not None and last.attempts == 10


def test_two_workers_that_see_the_same_window_open_it_once(redis_client) -> None:
    for _ in range(10):
        record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T)
    redis_client.delete(breaker.state_key(NAME))  # as if both had read generation 0, closed
    first = breaker._move(redis_client, NAME, "open", 0, seconds=30, now=T)
    second = breaker._move(redis_client, NAME, "open", 0, seconds=30, now=T + 0.001)
    assert first is not None and second is None
    assert read(redis_client, NAME, now=T)[0].generation == 1


def test_while_open_a_delivery_waits_for_the_probe_time(redis_client) -> None:
    open_it(redis_client)
    decision = admit(redis_client, NAME, "r1", 60, now=T + 10)
    assert decision.admission is Admission.WAIT and decision.wait_seconds == pytest.approx(20)


def test_half_open_exactly_one_probe_across_callers(redis_client) -> None:
    open_it(redis_client)
    assert admit(redis_client, NAME, "r1", 60, now=T + 30).admission is Admission.PROBE
    other = admit(redis_client, NAME, "r2", 60, now=T + 30.5)
    assert other.admission is Admission.WAIT and other.wait_seconds == PROBE_WAIT_SECONDS
    assert admit(redis_client, NAME, "r1", 60, now=T + 31).admission is Admission.PROBE  # its job again
    assert states(redis_client, [NAME], now=T + 31)[NAME].state is BreakerState.HALF_OPEN
    assert states(redis_client, [NAME], now=T + 31)[NAME].text() == "half-open"


def test_two_callers_that_read_it_free_race_for_the_turn_and_one_wins(redis_client) -> None:
    open_it(redis_client)
    stored, _ = read(redis_client, NAME, now=T + 30)
    assert stored.probe is None  # both read it so; then each tries to take the turn
    won = breaker._move(
        redis_client, NAME, "probe", stored.generation, request_id="r1", seconds=60, now=T + 30
    )
    lost = breaker._move(
        redis_client, NAME, "probe", stored.generation, request_id="r2", seconds=60, now=T + 30
    )
    assert won is not None and lost is None
    assert read(redis_client, NAME, now=T + 30)[0].probe == "r1"


def test_a_probe_answered_closes_it_and_the_window_starts_afresh(redis_client) -> None:
    opened = open_it(redis_client)
    assert admit(redis_client, NAME, "r1", 60, now=T + 30).admission is Admission.PROBE
    closed = settle_probe(redis_client, NAME, SETTINGS, "r1", Sample.ANSWERED, now=T + 31)
    assert closed is not None and closed.move is Move.CLOSED
    assert closed.since == opened.since and closed.open_until is None and closed.at == at(T + 31)
    assert admit(redis_client, NAME, "r2", 60, now=T + 31).admission is Admission.GO
    assert not redis_client.exists(breaker.window_key(NAME))
    for _ in range(9):  # the failures that opened it are forgotten
        assert record(redis_client, NAME, SETTINGS, Sample.FAILED, now=T + 32) is None
    # a second settle of the same probe changes nothing
    assert settle_probe(redis_client, NAME, SETTINGS, "r1", Sample.ANSWERED, now=T + 33) is None


def test_each_failed_probe_opens_it_again_for_twice_as_long_up_to_the_maximum(redis_client) -> None:
    opened = open_it(redis_client)
    now, lengths = T + 30, []
    for n in range(3):
        assert admit(redis_client, NAME, f"p{n}", 60, now=now).admission is Admission.PROBE
        again = settle_probe(redis_client, NAME, SETTINGS, f"p{n}", Sample.FAILED, now=now + 1)
        assert again is not None and again.move is Move.REOPENED
        assert again.since == opened.since  # still the same opening (one alert)
        lengths.append(round((again.open_until - again.at).total_seconds()))
        assert admit(redis_client, NAME, "r", 60, now=now + 2).admission is Admission.WAIT
        now = again.open_until.timestamp()
    assert lengths == [60, 100, 100]


def test_a_probe_that_never_reached_the_partner_gives_the_turn_back(redis_client) -> None:
    open_it(redis_client)
    assert admit(redis_client, NAME, "r1", 60, now=T + 30).admission is Admission.PROBE
    assert settle_probe(redis_client, NAME, SETTINGS, "r1", Sample.NOTHING, now=T + 31) is None
    assert read(redis_client, NAME, now=T + 31)[0].open
    assert admit(redis_client, NAME, "r2", 60, now=T + 31).admission is Admission.PROBE


def test_a_probe_held_back_gives_its_turn_back(redis_client) -> None:
    open_it(redis_client)
    assert admit(redis_client, NAME, "r1", 60, now=T + 30).admission is Admission.PROBE
    assert release_probe(redis_client, NAME, "r2", now=T + 30) is False  # not its turn
    assert release_probe(redis_client, NAME, "r1", now=T + 30) is True
    assert admit(redis_client, NAME, "r2", 60, now=T + 30).admission is Admission.PROBE


def test_a_probe_that_outlived_its_turn_no_longer_decides(redis_client) -> None:
    open_it(redis_client)
    assert admit(redis_client, NAME, "r1", 5, now=T + 30).admission is Admission.PROBE
    assert admit(redis_client, NAME, "r2", 5, now=T + 35).admission is Admission.PROBE  # r1's worker died
    assert settle_probe(redis_client, NAME, SETTINGS, "r1", Sample.ANSWERED, now=T + 36) is None
    assert read(redis_client, NAME, now=T + 36)[0].open
    closed = settle_probe(redis_client, NAME, SETTINGS, "r2", Sample.ANSWERED, now=T + 36)
    assert closed is not None and closed.move is Move.CLOSED


def test_states_reads_many_endpoints_at_once(redis_client) -> None:
    open_it(redis_client)
    views = states(redis_client, [NAME, "lab", "never-seen"], now=T + 1)
    assert [v.state for v in views.values()] == [BreakerState.OPEN, BreakerState.CLOSED, BreakerState.CLOSED]
    assert states(redis_client, [], now=T) == {}


def test_redis_s_own_clock_is_used_when_no_time_is_given(redis_client) -> None:
    for _ in range(10):
        opened = record(redis_client, NAME, SETTINGS, Sample.FAILED)
    seconds, micros = redis_client.time()
    now = seconds + micros / 1e6
    assert opened is not None and abs(opened.at.timestamp() - now) < 5
    assert admit(redis_client, NAME, "r1", 60).admission is Admission.WAIT
    assert states(redis_client, [NAME])[NAME].state is BreakerState.OPEN


def test_attempts_recorded_together_are_counted_in_one_call(redis_client) -> None:
    from dispatcher.sending.breaker import record_many

    assert record_many(redis_client, NAME, SETTINGS, 0, 0, now=T) is None  # nothing to count
    assert record_many(redis_client, NAME, SETTINGS, 6, 4, now=T) is None  # 6 attempts: too few
    opened = record_many(redis_client, NAME, SETTINGS, 4, 3, now=T + 1)  # 7 of 10 failed
    assert opened is not None and (opened.attempts, opened.failures) == (10, 7)
    assert record_many(redis_client, NAME, SETTINGS, 5, 5, now=T + 2) is None  # open already
