"""One vocabulary (dispatcher.vocabulary): each word is its own value everywhere it goes."""

from __future__ import annotations

import json

import sqlalchemy as sa
from rq.job import JobStatus

from dispatcher import store
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.times import utcnow
from dispatcher.vocabulary import (
    ACTIVE_JOB_STATES,
    CLAIMABLE_STATUSES,
    EVENT_NAMES,
    FINAL_STATUSES,
    PENDING_STATUSES,
    STATUSES,
    AttemptOutcome,
    DeliveryStatus,
    JobState,
)


def test_statuses_partition_into_final_and_pending() -> None:
    assert set(FINAL_STATUSES) | set(PENDING_STATUSES) == set(STATUSES)
    assert not set(FINAL_STATUSES) & set(PENDING_STATUSES)
    assert set(CLAIMABLE_STATUSES) < set(PENDING_STATUSES)
    assert STATUSES == ("queued", "in_flight", "retrying", "delivered", "failed")


def test_a_word_is_its_value_in_json_and_in_comparisons() -> None:
    assert json.dumps({"status": DeliveryStatus.IN_FLIGHT}) == '{"status": "in_flight"}'
    assert AttemptOutcome.RETRY_SCHEDULED == "retry_scheduled" and f"{AttemptOutcome.FAILED}" == "failed"


def test_the_catalogue_lists_the_vocabulary_events_in_the_seed_order() -> None:
    assert tuple(CATALOGUE) == EVENT_NAMES


def test_job_states_are_rqs_own() -> None:
    assert {s.value for s in JobState} <= {s.value for s in JobStatus}
    assert ACTIVE_JOB_STATES == {"queued", "scheduled", "deferred", "started"}


def test_words_are_stored_as_their_values_on_both_backends(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                store.ENDPOINT_STATE.insert(),
                {"name": DeliveryStatus.FAILED, "disabled": False, "reason": AttemptOutcome.INTERRUPTED,
                 "updated_at": utcnow()},
            )  # fmt: skip
            stored = conn.execute(sa.text("SELECT name, reason FROM webhook_endpoint_state")).one()
        assert tuple(stored) == ("failed", "interrupted")
    finally:
        engine.dispose()
