"""What the bulk operations share: the capped id list, a dry run's first ids, and the words a
plan uses for a count and a selection."""

from __future__ import annotations

from dispatcher import store
from dispatcher.ops.bulk import IdList, deliveries, first_ids, where
from dispatcher.vocabulary import DeliveryStatus

from .test_resend import EP_A, HOURS, NOW, seed


def test_an_id_list_keeps_the_first_and_says_when_there_were_more():
    ids = IdList(cap=3)
    ids.extend(["a", "b"])
    assert (ids.items, ids.truncated) == (["a", "b"], False)
    ids.extend(["c", "d"])
    assert (ids.items, ids.truncated) == (["a", "b", "c"], True)


def test_the_words_for_a_count_and_a_selection():
    assert (deliveries(1), deliveries(1234, "failed")) == ("1 delivery", "1,234 failed deliveries")
    assert where(store.Selection(statuses=("failed",), with_payload=True)) == ""
    chosen = store.Selection(event="order_changed", endpoint=EP_A, since=NOW.replace(microsecond=0))
    assert where(chosen).startswith(" (event order_changed, endpoint partner-a, created since ")
    assert where(store.Selection(patient_keys=("k",))) == " (the patient searched for)"


def test_first_ids_are_the_oldest_selected_truncated_by_the_count(make_runtime):
    runtime = make_runtime()
    ids = seed(runtime.engine, 1, 3, status=DeliveryStatus.FAILED, created_at=NOW - HOURS)
    listed = first_ids(runtime.engine, store.Selection(), matched=3)
    assert (listed.items, listed.truncated) == (ids, False)
    assert first_ids(runtime.engine, store.Selection(), matched=5000).truncated
