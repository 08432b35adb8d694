"""The console's access log shows a client's path as text, never as bytes it chose: a CR/LF in a
path cannot forge a second line, an escape cannot reach the terminal of whoever reads the log,
and a long path is cut (issue 21, review of #4)."""

from __future__ import annotations

import httpx

from . import browser
from .conftest import console_section

FORGED = "FAKE console POST /endpoints/pharmacy/disable 303 1ms user=olivia"


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
