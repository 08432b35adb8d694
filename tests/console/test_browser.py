"""End to end, as a person uses it: in a real headless Chromium, an operator signs in, filters
to a failed delivery, opens it, retries it and sees a real worker deliver it to a real receiver;
a viewer's retry is refused."""

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
