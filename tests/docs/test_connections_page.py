"""docs/connections.md's YAML, as a reader would paste it: every block loads and passes the
configuration's validation (the fragments under the first block's endpoint), with a value for
every ``${NAME}`` it reads and a file at every path it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dispatcher.config import parse_settings
from dispatcher.contract.signing import generate_secret
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "connections.md"


def blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.S)


def documents() -> list[tuple[str, str]]:
    """(what, YAML) for each block: whole ones as written, fragments (indented: an endpoint's
    settings) appended to the first block's endpoint."""
    found = blocks()
    base = found[0]
    return [
        (f"block {i + 1}", text if not text.startswith(" ") else base + text) for i, text in enumerate(found)
    ]


def environment(text: str) -> dict[str, str]:
    names = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    return {name: generate_secret() if "SIGNING" in name else f"value-of-{name.lower()}" for name in names}


def with_files(text: str, directory: Path) -> str:
    def made(match: re.Match[str]) -> str:
        path = directory / Path(match.group(0)).name
        path.write_text("placeholder\n")
        return str(path)

    return re.sub(r"/etc/dispatcher/[\w.\-]+", made, text)


def test_the_page_has_its_examples() -> None:
    assert len(blocks()) >= 8


@pytest.mark.parametrize(("what", "text"), documents(), ids=[what for what, _ in documents()])
def test_every_yaml_block_loads_and_validates(what: str, text: str, tmp_path: Path) -> None:
    raw = yaml.safe_load(with_files(text, tmp_path))
    settings = parse_settings(raw, env=environment(text))
    assert settings.endpoints, what
