"""End to end, as a person uses it: in a real headless Chromium, an operator signs in, filters
to a failed delivery, opens it, retries it and sees a real worker deliver it to a real receiver;
a viewer's retry is refused. At 1280 x 800 every page fits the window (no column clipped, no
sideways scrolling), and a business id typed into the search field finds its deliveries. An
operator pauses an endpoint and resumes it, the endpoints page saying so; a viewer sees no
action there."""

from __future__ import annotations

import pytest
import yaml

from dispatcher import dispatch
from dispatcher.config import parse_settings
from dispatcher.contract import catalogue as events
from dispatcher.runtime import Runtime, set_runtime
from tests.conftest import wait_for
from tests.servers import Answer

from . import browser
from .conftest import PASSWORDS, console_section

pytestmark = pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))


def sign_in(driver, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "sign-in").click()
    wait_for(lambda: driver.current_url.endswith("/deliveries"), 10, message="the deliveries page")


def test_an_operator_retries_a_failed_delivery_and_a_viewer_cannot(
    write_config, start_worker, receiver, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    receiver.default = Answer(status=500, body=b'{"error":"pharmacy system down"}')
    config = write_config(
        endpoints=[{"name": "pharmacy", "url": receiver.url, "max_attempts": 1}], console=console_section()
    )
    runtime = Runtime(parse_settings(yaml.safe_load(config.read_text()), env={}), worker_name="e2e")
    previous = set_runtime(runtime)
    try:
        example = events.get_event("prescription_submitted").example()
        first, second = (dispatch("prescription_submitted", example)[0] for _ in range(2))
        start_worker(config)
        for request_id in (first, second):
            wait_for(
                lambda r=request_id: runtime_status(runtime, r) == "failed",
                30,
                message=f"{request_id} failed",
            )
        receiver.default = Answer(status=200)
        with browser.console_process(config, tmp_path / "console.out") as base, browser.chromium() as driver:
            sign_in(driver, base, "olivia")
            Select(driver.find_element(By.ID, "f-status")).select_by_visible_text("failed")
            driver.find_element(By.ID, "f-request-id").send_keys(first)
            driver.find_element(By.ID, "apply").click()
            wait_for(lambda: "request_id=" in driver.current_url, 10, message="the filtered page")
            rows = driver.find_elements(By.CSS_SELECTOR, "#deliveries tbody a")
            assert [row.text for row in rows] == [first]
            rows[0].click()
            wait_for(lambda: driver.current_url.endswith(first), 10, message="the delivery page")
            assert driver.find_element(By.ID, "status").text == "failed"
            assert "pharmacy system down" not in driver.page_source  # the answer stays hidden
            driver.find_element(By.ID, "retry").click()
            wait_for(lambda: driver.current_url.endswith("/retry"), 10, message="the confirmation")
            assert driver.find_element(By.ID, "count").text == "1"
            driver.find_element(By.ID, "confirm").click()
            wait_for(lambda: "done=" in driver.current_url, 10, message="the retried delivery's page")
            assert "Re-queued" in driver.find_element(By.ID, "done").text

            def delivered() -> bool:
                driver.refresh()
                return driver.find_element(By.ID, "status").text == "delivered"

            wait_for(delivered, 30, interval=0.5, message="the retried delivery to be delivered")
            sign_in(driver, base, "victor")
            driver.get(f"{base}/deliveries/{second}")
            assert not driver.find_elements(By.ID, "retry")
            driver.get(f"{base}/deliveries/{second}/retry")
            assert "only an operator" in driver.find_element(By.ID, "problem").text
        assert runtime_status(runtime, second) == "failed"
        retried = [r for r in receiver.received if r.request_id == first]
        assert [r.answered for r in retried] == [500, 200] and retried[1].body["metadata"]["retry"] is True
    finally:
        set_runtime(previous)
        runtime.close()


def runtime_status(runtime: Runtime, request_id: str) -> str | None:
    from dispatcher import store

    found = store.get_delivery(runtime.engine, request_id)
    return found["status"] if found else None


SEARCH_KEY = "a-search-key-for-the-browser-tests-0123456789"
ORDER = "ORDER-2026-55817"
FITS = """
const root = document.documentElement;
const cards = [...document.querySelectorAll('.card')];
const cells = [...document.querySelectorAll('table.grid th, table.grid td')];
return {
  page: [root.scrollWidth, root.clientWidth],
  cards: cards.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.className),
  cells: cells.filter(c => c.getBoundingClientRect().right > Math.min(
      root.clientWidth, c.closest('.card') ? c.closest('.card').getBoundingClientRect().right : 1e9) + 1
  ).map(c => c.textContent.trim()),
  last: [...document.querySelectorAll('table.grid thead th:last-child')].map(
      th => th.getBoundingClientRect().right),
};
"""


def fits(driver) -> dict:
    """What of the page is wider than the window at its size: nothing, when it fits."""
    measured = driver.execute_script(FITS)
    scroll, client = measured["page"]
    assert scroll <= client, f"the page scrolls sideways: {scroll} > {client} px"
    assert measured["cards"] == [], f"cards scroll sideways: {measured['cards']}"
    assert measured["cells"] == [], f"cells beyond the window or their card: {measured['cells'][:5]}"
    assert all(right <= client for right in measured["last"]), measured["last"]
    return measured


def test_every_page_fits_1280_pixels_and_a_business_id_finds_its_deliveries(write_config, tmp_path):
    from selenium.webdriver.common.by import By

    from dispatcher import store

    long_names = [
        {"name": "northside-pharmacy-east-region", "url": "http://127.0.0.1:9/a"},
        {"name": "quest-lab-orders", "url": "http://127.0.0.1:9/b"},
    ]
    config = write_config(endpoints=long_names, console=console_section(), search_key=SEARCH_KEY)
    runtime = Runtime(parse_settings(yaml.safe_load(config.read_text()), env={}), worker_name="e2e")
    previous = set_runtime(runtime)
    try:
        order = dispatch(
            "order_changed", {**events.get_event("order_changed").example(), "order_number": ORDER}
        )
        for event in ("prescription_dosage_changed", "case_assigned_to_clinician", "encounter_cancelled"):
            for request_id in dispatch(event, events.get_event(event).example()):
                store.fail_delivery(
                    runtime.engine, request_id, "connection_error; attempts exhausted (5 of 5)"
                )
        with (
            browser.console_process(config, tmp_path / "console.out") as base,
            browser.chromium(1280, 800) as driver,
        ):
            sign_in(driver, base, "olivia")
            driver.get(f"{base}/deliveries")
            measured = fits(driver)
            headings = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#deliveries thead th")]
            assert headings[-1] == "Updated (UTC)" and "Reason" in headings
            assert measured["last"][0] <= 1280
            reasons = {td.text for td in driver.find_elements(By.CSS_SELECTOR, "#deliveries td.reason")}
            assert reasons == {"", "connection error"}

            driver.find_element(By.ID, "f-business").send_keys(ORDER)
            driver.find_element(By.ID, "business-find").click()
            wait_for(lambda: "find=" in driver.current_url, 10, message="the searched page")
            links = driver.find_elements(By.CSS_SELECTOR, "#deliveries tbody a")
            assert sorted(a.get_attribute("href").rsplit("/", 1)[1] for a in links) == sorted(order)
            assert ORDER not in driver.current_url and ORDER not in driver.page_source
            assert driver.find_element(By.ID, "count-all").text == "all 2"
            fits(driver)
            for path in ("/endpoints", "/audit", "/queue", f"/deliveries/{order[0]}", "/actions/replay"):
                driver.get(f"{base}{path}")
                fits(driver)
    finally:
        set_runtime(previous)
        runtime.close()


def test_an_operator_pauses_and_resumes_an_endpoint_and_a_viewer_sees_no_action(write_config, tmp_path):
    from selenium.webdriver.common.by import By

    from dispatcher import store
    from dispatcher.ops import audit

    config = write_config(
        endpoints=[
            {"name": "pharmacy", "url": "http://127.0.0.1:9/hook"},
            {"name": "lab", "url": "http://127.0.0.1:9/lab"},
        ],
        console=console_section(),
    )
    runtime = Runtime(parse_settings(yaml.safe_load(config.read_text()), env={}), worker_name="e2e")
    try:
        with (
            browser.console_process(config, tmp_path / "console.out") as base,
            browser.chromium(1280, 900) as driver,
        ):
            sign_in(driver, base, "olivia")
            driver.get(f"{base}/endpoints")
            assert not driver.find_elements(By.ID, "paused-lab")
            driver.find_element(By.ID, "pause-lab").click()
            wait_for(
                lambda: driver.current_url.endswith("/endpoints/lab/pause"), 10, message="the pause page"
            )
            driver.find_element(By.ID, "confirm").click()
            wait_for(lambda: driver.current_url.endswith("/endpoints"), 10, message="the endpoints page")
            assert driver.find_element(By.ID, "paused-lab").text == "paused"
            assert not driver.find_elements(By.ID, "paused-pharmacy")
            assert store.endpoints.gate_states(runtime.engine)[1] == {"lab"}
            fits(driver)
            driver.find_element(By.ID, "resume-lab").click()
            wait_for(
                lambda: driver.current_url.endswith("/endpoints/lab/resume"), 10, message="the resume page"
            )
            driver.find_element(By.ID, "confirm").click()
            wait_for(lambda: driver.find_elements(By.ID, "done"), 10, message="the resumed page")
            assert "resumed lab" in driver.find_element(By.ID, "done").text
            driver.get(f"{base}/endpoints")
            assert not driver.find_elements(By.ID, "paused-lab") and driver.find_elements(By.ID, "pause-lab")
            for verb in ("edit", "rotate-key", "rotate-secret", "remove"):
                driver.get(f"{base}/endpoints/lab/{verb}")
                fits(driver)
            driver.get(f"{base}/endpoints/add")
            fits(driver)

            sign_in(driver, base, "victor")
            driver.get(f"{base}/endpoints")
            assert driver.find_element(By.ID, "endpoint-lab") and driver.find_element(By.ID, "breaker-lab")
            hrefs = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "main a")]
            assert not [h for h in hrefs if "/endpoints/" in h or "/actions/" in h], hrefs
            assert not driver.find_elements(By.CSS_SELECTOR, "main button, main form")
        assert store.endpoints.gate_states(runtime.engine)[1] == frozenset()
        done = [(e.actor, e.action, e.selection.get("via")) for e in audit.entries(runtime.engine)]
        assert done == [("olivia", "endpoints pause", "console"), ("olivia", "endpoints resume", "console")]
    finally:
        runtime.close()
