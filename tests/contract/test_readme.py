"""The documents' tables of the events are the models' own (dispatcher.contract.catalogue), and
their ``dispatch()`` examples run as written. The tables and examples live in README.md or a
page of docs/ (wherever the README's rewrite put them): the tests look in every one."""

from __future__ import annotations

import re
from pathlib import Path

from dispatcher.contract.catalogue import events_markdown
from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
START, END = "<!-- events:start -->\n", "<!-- events:end -->"


def _shown(page: Path) -> str | None:
    text = page.read_text()
    if START not in text:
        return None
    return text.split(START, 1)[1].split(END, 1)[0]


def test_the_event_tables_are_written_from_the_models() -> None:
    shown = {page.name: text for page in PAGES if (text := _shown(page)) is not None}
    assert shown, f"no page holds the event tables between {START.strip()} and {END}"
    for name, text in shown.items():
        assert text == events_markdown(), f"{name}'s event tables are stale: paste events_markdown()'s text"


def test_the_documents_dispatch_examples_run_as_written(make_runtime, redis_client) -> None:
    """Every way in that the documents show (dict, typed model, idempotent repeat), run word for
    word against a real store and Redis: each block stores at least one delivery."""
    from dispatcher import store

    runtime = make_runtime(
        endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-readme"}]
    )
    blocks = [
        (page.name, block)
        for page in PAGES
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
        if "dispatch(" in block and "Session" not in block
    ]
    assert blocks, "no dispatch() example in README.md or docs/"
    for name, block in blocks:
        before = len(store.list_deliveries(runtime.engine))
        exec(compile(block, name, "exec"), {})  # runs the document's own example
        assert len(store.list_deliveries(runtime.engine)) > before, (
            f"a dispatch() example in {name} stored nothing"
        )
