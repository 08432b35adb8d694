"""The README's tables of the events are the models' own (dispatcher.contract.catalogue)."""

from __future__ import annotations

from dispatcher.contract.catalogue import events_markdown
from tests.conftest import ROOT


def test_the_readme_tables_are_written_from_the_models() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("<!-- events:start -->\n", 1)[1].split("<!-- events:end -->", 1)[0]
    assert shown == events_markdown(), "README's event tables are stale: paste events_markdown()'s text"


def test_the_readmes_dispatch_examples_run_as_written(make_runtime, redis_client) -> None:
    """Every way in that the README shows (dict, typed model, idempotent repeat), run word for
    word against a real store and Redis."""
    import re

    from dispatcher import store

    runtime = make_runtime(
        endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-readme"}]
    )
    readme = (ROOT / "README.md").read_text()
    blocks = [
        b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "dispatch(" in b and "Session" not in b
    ]
    assert len(blocks) == 3
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # runs the README's own example
    listed = store.list_deliveries(runtime.engine)
    assert sorted(r["event"] for r in listed) == [
        "encounter_cancelled",
        "order_changed",
        "prescription_submitted",
    ]
