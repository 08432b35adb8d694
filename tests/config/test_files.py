"""Reading the YAML file: plain YAML of bounded size, every mistake one line naming the file."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from dispatcher.config import load_settings
from dispatcher.config.files import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES
from dispatcher.errors import ConfigError


def write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    error = caught.value
    assert error.setting == str(path)
    assert "\n" not in str(error), str(error)
    return error


def laughs(levels: int = 9, width: int = 10, first: str = '["lol"]', anchor: str = "l") -> str:
    """``levels`` anchors of ``width`` aliases each: width ** levels values once expanded."""
    lines = [f"{anchor}0: &{anchor}0 {first}"]
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*{anchor}{level - 1}"] * width)
        lines.append(f"{anchor}{level}: &{anchor}{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def refused_quickly_in_small_memory(path: Path) -> ConfigError:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = refused(path)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 0.5, seconds
    assert peak < 50 * 1024 * 1024, peak
    assert len(str(error)) < 200, str(error)
    return error


# --- YAML bombs --------------------------------------------------------------------------------


def test_a_billion_laughs_file_is_refused_quickly_in_small_memory(tmp_path: Path) -> None:
    path = write(tmp_path, laughs())  # 10**9 values once expanded
    error = refused_quickly_in_small_memory(path)
    assert str(error).startswith(f"config: {path}: not accepted at line ")
    assert f"more than {MAX_VALUES} values" in str(error)


def test_a_billion_laughs_inside_endpoints_events_is_refused(tmp_path: Path) -> None:
    """Every anchor lives inside endpoints[0].events: its first entry (a list, so a wrong type)
    would be quoted whole in the error, 10**9 values, without the bound."""
    anchors = ["&e0 [order_changed]"] + [f"&e{i} [{', '.join([f'*e{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = write(
        tmp_path,
        "environment: staging\nendpoints:\n  - name: p\n    url: https://p.example.com/hook\n"
        f"    events: [[{', '.join(anchors)}]]\n",
    )
    error = refused_quickly_in_small_memory(path)
    assert f"more than {MAX_VALUES} values" in str(error)
    assert "order_changed" not in str(error)


def test_an_alias_inside_itself_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "endpoints: &e [*e]\n")
    assert "an alias refers to a value that contains it" in str(refused(path))


def test_many_aliases_below_the_bound_are_accepted(tmp_path: Path) -> None:
    text = "delivery: &d {timeout: 5, max_attempts: 3}\nenvironment: staging\nendpoints:\n" + "".join(
        f"  - {{name: p{i}, url: 'https://p{i}.example.com/hook', <<: *d}}\n" for i in range(50)
    )
    settings = load_settings(write(tmp_path, text), env={})
    assert len(settings.endpoints) == 50
    assert settings.endpoints[49].delivery is not None
    assert settings.endpoints[49].delivery.max_attempts == 3


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    written = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    assert f"nest more than {MAX_DEPTH} levels" in str(refused(write(tmp_path, f"x: {written}\n")))
    chained = "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, MAX_DEPTH + 5))  # deep through aliases
    error = refused(write(tmp_path, "a0: &a0 [x]\n" + chained, "chained.yaml"))
    assert f"nests more than {MAX_DEPTH} levels" in str(error)
    deep = "[" * 100_000 + "]" * 100_000  # deeper than the YAML composer itself could go
    assert f"more than {MAX_DEPTH} levels" in str(refused(write(tmp_path, f"x: {deep}\n", "deep.yaml")))


def test_a_file_larger_than_the_bound_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * MAX_FILE_BYTES + "\n")
    assert f"larger than {MAX_FILE_BYTES} bytes" in str(refused(path))


def test_an_integer_of_thousands_of_digits_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "worker:\n  threads: " + "9" * 5000 + "\n")
    error = refused(path)
    assert "line 2, column 12" in str(error) and "9999" not in str(error)


# --- one line for any mistake ------------------------------------------------------------------


def test_broken_yaml_is_one_line_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "source: Baremeds\ndelivery:\n  timeout: 30\n    bad: x: y\n")
    assert str(refused(path)) == (
        f"config: {path}: not valid YAML at line 4, column 8: mapping values are not allowed here"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("source: [unclosed\n", "not valid YAML at line 2, column 1: "),
        ("a:\n\tb: 1\n", "not valid YAML at line 2, column 1: found character '\\t'"),
        ("a: 1\n---\nb: 2\n", "expected a single document in the stream but found another document"),
        ("? [a]\n: b\n", "not valid YAML at line 1, column 3: found unhashable key"),
        (
            "source: ok\nqueue_name: a\x01b\n",
            "not valid YAML at line 2, column 14: unacceptable character #x0001",
        ),
        ("source: 2024-13-45\n", "not valid YAML: month must be in 1..12"),
    ],
)
def test_every_yaml_mistake_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    assert problem in str(refused(write(tmp_path, text)))


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"source: ok\nenvironment: caf\xe9\n")
    assert str(refused(path)) == f"config: {path}: is not UTF-8 text (line 2)"


@pytest.mark.parametrize(
    ("tag", "shown"),
    [
        ("!!python/object/apply:os.system ['echo pwned']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!custom x", "!custom"),
    ],
)
def test_a_python_or_custom_tag_is_refused_as_not_plain_yaml(tmp_path: Path, tag: str, shown: str) -> None:
    path = write(tmp_path, f"source: ok\nenvironment: {tag}\n")
    assert str(refused(path)) == (
        f"config: {path}: not plain YAML at line 2, column 14: "
        f"the tag {shown} is not allowed; only plain YAML is allowed"
    )


def test_plain_yaml_tags_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "source: !!str 123\nprocess_log_retention_days: !!int '7'\n")
    settings = load_settings(path, env={})
    assert (settings.source, settings.process_log_retention_days) == ("123", 7)


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ""), env={}).source == "Baremeds"


def test_yaml_typed_elsewhere_is_read_with_the_same_bounds() -> None:
    from dispatcher.config.files import parse_yaml
    from dispatcher.errors import ConfigError

    assert parse_yaml("endpoint", "name: lab\nurl: https://lab.example/") == {
        "name": "lab",
        "url": "https://lab.example/",
    }
    with pytest.raises(ConfigError):
        parse_yaml("endpoint", "a: &a [*a]")
