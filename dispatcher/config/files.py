"""Which configuration file is read, and reading it: plain YAML of bounded size, one line for any
mistake in it.

The bounds (a configuration is a few kilobytes and a few hundred values):

- the file is at most :data:`MAX_FILE_BYTES` (1 MiB);
- the document, with every alias expanded, holds at most :data:`MAX_VALUES` (100,000) values --
  a "billion laughs" file of nine levels of ten aliases (10**9 values) is refused here in
  milliseconds, counted on the composed node graph with memoization, before anything is built
  from it or walked, so no later loop or error message can expand it;
- it nests at most :data:`MAX_DEPTH` (64) levels, and no alias refers to a value containing it;
- only plain YAML tags: a ``!!python/...`` tag, or any tag the safe loader does not know, is
  refused by name; so is an integer of more than :data:`MAX_DIGITS` (40) characters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from ..errors import ConfigError
from .loading import parse_settings
from .settings import Settings

MAX_FILE_BYTES = 1 << 20
MAX_VALUES = 100_000
MAX_DEPTH = 64
MAX_DIGITS = 40

_YAML_TAG = "tag:yaml.org,2002:"
_INT_TAG = f"{_YAML_TAG}int"
# Merge keys (<<) and value keys (=) are resolved by the loader before construction.
_PLAIN_TAGS = frozenset(t for t in yaml.SafeLoader.yaml_constructors if t is not None) | {
    f"{_YAML_TAG}merge",
    f"{_YAML_TAG}value",
}


def config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The file that would be loaded: ``DISPATCHER_CONFIG``, else ``./config.yaml``, else none."""
    env = os.environ if env is None else env
    named = env.get("DISPATCHER_CONFIG")
    if named:
        return Path(named)
    local = Path("config.yaml")
    return local if local.exists() else None


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Loads and validates the configuration.

    Raises:
        ConfigError: the file is missing, too large, not plain YAML, or a setting is invalid.
    """
    file = Path(path) if path is not None else config_path(env)
    raw: Any = {}
    if file is not None:
        missing_setting = "DISPATCHER_CONFIG" if path is None else "config file"
        raw = read_yaml(file, missing_setting) or {}
        if not isinstance(raw, dict):
            raise ConfigError(str(file), "must hold a mapping of settings at the top level")
    return parse_settings(raw, env)


def read_yaml(file: Path, missing_setting: str = "config file") -> Any:
    """The document in ``file``, within the bounds above.

    Raises:
        ConfigError: naming the file (``missing_setting`` when it does not exist), in one line.
    """
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(missing_setting, f"file {str(file)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(str(file), f"cannot be read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(str(file), f"is larger than {MAX_FILE_BYTES} bytes; a configuration is far smaller")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(str(file), f"is not UTF-8 text (line {line})") from None
    return _load(str(file), text)


class _Refused(Exception):
    """A document beyond the bounds, found where ``mark`` points."""

    def __init__(self, mark: yaml.Mark, problem: str, what: str = "not accepted") -> None:
        super().__init__(f"{what} at line {mark.line + 1}, column {mark.column + 1}: {problem}")


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing to compose more than :data:`MAX_DEPTH` nested collections (the
    composer recurses, and the scanner slows with each level)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _Refused(mark, f"values nest more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(name: str, text: str) -> Any:
    """YAML text from elsewhere than a file (an endpoint typed into the console), read with the
    file's bounded loader: ``name`` names it in an error (:class:`ConfigError`)."""
    return _load(name, text)


def _load(name: str, text: str) -> Any:
    loader: yaml.SafeLoader | None = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(name, node)
        return loader.construct_document(node)
    except ConfigError:
        raise
    except _Refused as exc:
        raise ConfigError(name, str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(name, _marked(exc)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problem = (
            f"unacceptable character #x{exc.character:04x}" if isinstance(exc.character, int) else "bad text"
        )
        raise ConfigError(name, f"not valid YAML at line {line}, column {column}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, f"not valid YAML: {_one_line(str(exc))}") from None
    except (ValueError, OverflowError) as exc:  # a value the loader cannot build: 2024-13-45
        raise ConfigError(name, f"not valid YAML: {_one_line(str(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _marked(exc: yaml.MarkedYAMLError) -> str:
    """``not valid YAML at line L, column C: <what is wrong>``, from the loader's problem (with
    its context when the problem alone reads as half a sentence: "but found another document")."""
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = exc.problem or exc.context or "unreadable"
    if exc.context and exc.problem and exc.problem.startswith("but "):
        problem = f"{exc.context} {exc.problem}"
    return f"not valid YAML{where}: {_one_line(problem)}"


def _one_line(text: str) -> str:
    line = " ".join(text.replace("\t", "\\t").split())
    return line if len(line) <= 160 else line[:157] + "..."


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _check_graph(name: str, root: Node) -> None:
    """Refuses a document that expands (through aliases) beyond :data:`MAX_VALUES` values or
    :data:`MAX_DEPTH` levels, that refers to itself, or that carries a tag beyond plain YAML.

    Aliases make the node graph a DAG: each node's expanded size and depth is computed once
    (memoized by identity, iteratively), so the check costs the file's size, not the expansion.
    """
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            sizes = [done[id(child)] for child in _children(node)]
            values = 1 + sum(size for size, _ in sizes)
            depth = 1 + max((d for _, d in sizes), default=0)
            open_nodes.discard(id(node))
            done[id(node)] = (values, depth)
            if values > MAX_VALUES:
                _refuse(name, node, f"aliases expand this value to more than {MAX_VALUES} values")
            if depth > MAX_DEPTH:
                _refuse(name, node, f"this value nests more than {MAX_DEPTH} levels deep")
            continue
        if id(node) in done:
            continue
        if id(node) in open_nodes:
            _refuse(name, node, "an alias refers to a value that contains it")
        _check_node(name, node)
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in done)


def _check_node(name: str, node: Node) -> None:
    """Plain YAML tags only; an integer short enough to be built (and quoted) cheaply."""
    if node.tag == _INT_TAG and len(node.value) > MAX_DIGITS:
        _refuse(name, node, f"a number longer than {MAX_DIGITS} characters")
    if node.tag in _PLAIN_TAGS:
        return
    tag = node.tag.replace(_YAML_TAG, "!!", 1) if node.tag.startswith(_YAML_TAG) else node.tag
    tag = "".join(c if c.isprintable() else "?" for c in tag[:60]) + ("..." if len(tag) > 60 else "")
    _refuse(name, node, f"the tag {tag} is not allowed; only plain YAML is allowed", "not plain YAML")


def _refuse(name: str, node: Node, problem: str, what: str = "not accepted") -> None:
    raise ConfigError(name, str(_Refused(node.start_mark, problem, what)))
