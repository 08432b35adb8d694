"""The console's access log (``dispatcher/console/web.py``): one line per request with the path
and the signed-in name, never a query string or PHI; a client's path shown as text, never as
bytes it chose -- a CR/LF in a path cannot forge a second line, an escape cannot reach the
terminal of whoever reads the log, and a long path is cut (issue 21, review of #4); a client
that goes away in the middle of its body is one access line, not a traceback (issue 21 #4)."""

from __future__ import annotations

import io
import logging
import re
import socket
from urllib.parse import urlsplit

import httpx

from dispatcher.console.web import ACCESS_LOGGER
from tests.conftest import wait_for

from . import browser
from .conftest import SECRET_PATIENT, console_section, csrf_of, seed

FORGED = "FAKE console POST /endpoints/pharmacy/disable 303 1ms user=olivia"
FORM = "application/x-www-form-urlencoded"


def test_the_access_log_has_paths_and_names_but_no_query_and_no_phi(client_for, runtime):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger(ACCESS_LOGGER).addHandler(handler)
    try:
        request_id = seed(runtime)
        client = client_for("olivia")
        page = client.get("/deliveries", params={"status": "failed", "request_id": request_id})
        found = client.post(
            "/deliveries/patient", data={"patient_id": SECRET_PATIENT, "csrf": csrf_of(page.text)}
        )
        revealed = client.post(f"/deliveries/{request_id}/reveal", data={"csrf": csrf_of(page.text)})
        assert SECRET_PATIENT in revealed.text and found.status_code == 200
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(handler)
    log = stream.getvalue()
    assert re.search(r"GET /deliveries 200 \d+ms user=olivia", log)
    assert f"POST /deliveries/{request_id}/reveal 200" in log
    assert SECRET_PATIENT not in log and "?" not in log and "status=failed" not in log
    process_log = runtime.settings.process_log
    import pathlib

    text = pathlib.Path(process_log).read_text() if pathlib.Path(process_log).exists() else ""
    assert SECRET_PATIENT not in text


def test_a_path_with_cr_lf_and_escapes_is_one_escaped_line(write_config, tmp_path):
    log = tmp_path / "console.out"
    with browser.console_process(write_config(console=console_section()), log) as base:
        with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
            forged = client.get("/x%0d%0a" + FORGED.replace(" ", "%20") + "%1b[2J")
            long = client.get("/" + "a" * 8000)
            nul = client.get("/endpoints/%C3%A9%00/disable")
    assert forged.status_code == 400 and long.status_code in (400, 404) and nul.status_code == 400
    text = log.read_text()  # the console has stopped: all it wrote is here
    lines = text.splitlines()
    assert not any(line.startswith("FAKE") for line in lines), text
    assert "\x1b" not in text and "\r" not in text and "\x00" not in text
    assert any("GET /x\\x0d\\x0aFAKE console POST" in line and "\\x1b[2J 400" in line for line in lines), text
    assert any("\\x00/disable 400" in line for line in lines), text
    long_line = next(line for line in lines if "GET /aaaa" in line)
    assert len(long_line) < 400 and "a..." in long_line


def test_a_client_gone_mid_body_is_one_access_line_not_a_traceback(write_config, tmp_path):
    log = tmp_path / "console.out"
    with browser.console_process(write_config(console=console_section()), log) as base:
        address = urlsplit(base)
        with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
            raw.sendall(
                b"POST /login HTTP/1.1\r\nHost: " + address.netloc.encode() + b"\r\n"
                b"Content-Type: " + FORM.encode() + b"\r\nContent-Length: 1000\r\n\r\nname=olivia&pass"
            )
        wait_for(lambda: "POST /login" in log.read_text(), message="the console to see the request end")
    text = log.read_text()  # the console has stopped: all it wrote is here
    assert "Traceback" not in text and "ClientDisconnect" not in text, text
    (line,) = [line for line in text.splitlines() if "POST /login" in line]
    assert " 499 " in line
