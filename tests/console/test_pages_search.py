"""The deliveries page's search by business id (``dispatcher/console/pages.py``): deliveries
dispatched through intake are found by an order number or a patient id, the id never reaches a
URL, a page or the log, the other filters and the counts follow the search, and without
``search_key`` the field is off and says how to turn it on."""

from __future__ import annotations

import io
import logging
import re
from urllib.parse import unquote

import pytest

from dispatcher import dispatch
from dispatcher.console.web import ACCESS_LOGGER
from dispatcher.contract import catalogue as events
from dispatcher.store import search

from .conftest import console_section, csrf_of, endpoints

SEARCH_KEY = "a-search-key-for-the-console-tests-0123456789"
ORDER = "ORDER-7781-A"
PATIENT = "PATIENT-SEARCH-5521"


@pytest.fixture
def runtime(make_runtime):
    """The console's runtime, with a search key (the module's own, over conftest's)."""
    return make_runtime(endpoints=endpoints(), console=console_section(), search_key=SEARCH_KEY)


def listed(html: str) -> list[str]:
    return re.findall(r'href="/deliveries/([0-9a-f-]{36})"', html)


def find(client, value: str, **carried: str):
    page = client.get("/deliveries")
    data = {"business_id": value, "csrf": csrf_of(page.text), **carried}
    return client.post("/deliveries/find", data=data, follow_redirects=False)


def test_a_business_id_finds_its_deliveries_and_stays_out_of_urls_pages_and_logs(client_for, runtime, caplog):
    caplog.set_level(logging.DEBUG)
    access = io.StringIO()
    handler = logging.StreamHandler(access)
    logging.getLogger(ACCESS_LOGGER).addHandler(handler)
    try:
        searched(client_for, caplog)
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(handler)
    assert "POST /deliveries/find 303" in access.getvalue()  # the access log saw every request
    for text in (access.getvalue(), caplog.text):
        assert ORDER not in text and PATIENT not in text


def searched(client_for, caplog) -> None:
    order = dispatch("order_changed", {**events.get_event("order_changed").example(), "order_number": ORDER})
    dispatch("order_changed", {**events.get_event("order_changed").example(), "order_number": "ORDER-9"})
    example = events.get_event("prescription_submitted").example()
    patients = dispatch("prescription_submitted", {**example, "patient_id": PATIENT})
    client = client_for("victor")
    page = client.get("/deliveries").text
    assert 'id="f-business"' in page and search.NOT_INDEXED_NOTE in page
    assert re.search(r'<input name="business_id" id="f-business"[^>]*>', page).group(0).count("disabled") == 0

    found = find(client, f"  {ORDER} ", status="failed")
    location = found.headers["location"]
    assert found.status_code == 303 and ORDER not in location and "find=" in location
    assert "status=failed" in location  # the other filters are carried over
    listed_page = client.get(location.replace("status=failed&", "").replace("&status=failed", "")).text
    assert sorted(listed(listed_page)) == sorted(order) and ORDER not in listed_page
    assert 'id="business-active"' in listed_page and re.search(r'id="count-all">all <b>2</b>', listed_page)
    by_patient = client.get(find(client, PATIENT).headers["location"]).text
    assert sorted(listed(by_patient)) == sorted(patients) and PATIENT not in by_patient
    assert listed(client.get(find(client, "ORDER-7781").headers["location"]).text) == []  # exact only
    cleared = find(client, "")
    assert "find=" not in cleared.headers["location"]


def test_the_search_keeps_with_the_other_filters_and_a_bad_token_or_value_is_refused(client_for, runtime):
    order = dispatch("order_changed", {**events.get_event("order_changed").example(), "order_number": ORDER})
    client = client_for("olivia")
    location = find(client, ORDER).headers["location"]
    lab = client.get(f"{location}&endpoint=lab").text
    assert listed(lab) == [r for r in order if r in lab] and len(listed(lab)) == 1
    token = re.search(r"find=([^&]+)", location).group(1)
    assert lab.count(f'name="find" value="{unquote(token)}"') == 2  # the filter form and the patient search
    assert 'id="retry-failed" href="/actions/retry-failed?' in lab and f"find={token}" in lab
    removed = re.search(r'id="business-active">[^<]*<a href="([^"]+)"', lab).group(1)
    assert "find=" not in removed and "endpoint=lab" in removed
    expired = client.get("/deliveries", params={"find": "not-a-token"}).text
    assert "the business id search has expired: search again" in expired and listed(expired) == []
    too_long = find(client, "x" * (search.MAX_BUSINESS_ID + 1))
    assert too_long.status_code == 400 and "over 255 characters" in too_long.text


def test_without_a_search_key_the_field_is_off_and_says_how_to_turn_it_on(console_runtime):
    from starlette.testclient import TestClient

    from dispatcher.console.app import create_app

    from .conftest import sign_in

    client = TestClient(create_app(console_runtime()))
    sign_in(client, "victor")
    page = client.get("/deliveries").text
    field = re.search(r'<input name="business_id" id="f-business"[^>]*>', page).group(0)
    assert " disabled" in field
    assert search.needs_key("search by business id") in page
    assert "dispatcher keys generate --search" in page and "DISPATCHER_SEARCH_KEY" in page
    refused = find(client, ORDER)
    assert refused.status_code == 400 and search.needs_key("search by business id") in refused.text
