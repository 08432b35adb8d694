"""The operator's actions on an endpoint through the console (``dispatcher/console/
endpoint_actions.py``): disable and enable, each confirmed first and audited under the
signed-in user's name; an unknown name is a 404 page."""

from __future__ import annotations

from dispatcher import store
from dispatcher.ops import audit

from .conftest import csrf_of


def test_disable_and_enable_an_endpoint(client_for, runtime):
    operator = client_for("olivia")
    confirm = operator.get("/endpoints/lab/disable")
    assert confirm.status_code == 200 and store.disabled_endpoints(runtime.engine) == {}
    operator.post(
        "/endpoints/lab/disable", data={"csrf": csrf_of(confirm.text), "reason": "partner maintenance"}
    )
    assert store.disabled_endpoints(runtime.engine) == {"lab": "partner maintenance"}
    assert "partner maintenance" in operator.get("/endpoints").text
    enable = operator.get("/endpoints/lab/enable")
    assert 'id="count">0<' in enable.text
    operator.post("/endpoints/lab/enable", data={"csrf": csrf_of(enable.text)})
    assert store.disabled_endpoints(runtime.engine) == {}
    actions = [(e.actor, e.action, e.selection["endpoint"]) for e in audit.entries(runtime.engine)]
    assert actions == [("olivia", "endpoints disable", "lab"), ("olivia", "endpoints enable", "lab")]
    assert operator.get("/endpoints/nowhere/disable").status_code == 404
