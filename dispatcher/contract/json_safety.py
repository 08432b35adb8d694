"""What every JSON reader reads: the check that an event's data can be sent as it is.

:func:`json_problems` walks any value without recursion (an explicit stack, so no value can
exhaust Python's stack through it) and names, by path like the rest of validation
(``attachment[0].meta.size``), everything that is not plain, portable JSON:

* **Types.** Only ``dict`` with ``str`` keys, ``list``, ``str``, ``int``, ``float``, ``bool``
  and ``None``. A ``datetime``, ``Decimal``, ``bytes``, ``set``, ``tuple`` or any other object
  is refused rather than converted behind the caller's back (``json.dumps`` would refuse most
  of them anyway, naming no field).
* **Strings, keys included, encode as UTF-8.** A lone surrogate (U+D800 to U+DFFF, which
  ``json.loads`` makes of ``"\\ud800"``) cannot be written to the wire or the log; the message
  gives its index in the string.
* **Numbers are JSON numbers.** Floats are finite (``NaN`` and ``Infinity`` are not JSON);
  integers lie in the I-JSON range -(2**53-1) .. 2**53-1 (RFC 7493), which every partner's
  parser reads exactly (JavaScript and many others hold numbers as IEEE doubles). This also
  keeps out integers too long for Python's own int/str conversion.
* **Nesting** is at most :data:`MAX_DEPTH` (32) levels of arrays and objects below the
  event's data: a field of the data is level 1, ``attachment[0]`` level 2, and so on. Real
  attachments are flat objects, three or four levels at most, so 32 is far beyond any of
  them; and the whole body (the wrapper and ``data`` add two levels) stays within 34 levels,
  under the 64 that .NET's System.Text.Json and Json.NET read by default, jq's 256, Ruby's
  100, serde_json's 128 and Python's ~1000. A reference cycle is reported as such.

Messages are short however large the value: values are described by :func:`describe`
(bounded, never a full ``repr``), keys in paths are cut, and at most ``limit`` problems are
listed per value. Pure: the standard library only.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from itertools import islice
from typing import Any

MAX_DEPTH = 32
"""Levels of arrays and objects allowed below an event's data (its fields are level 1)."""

MAX_SAFE_INTEGER = 2**53 - 1
"""The I-JSON (RFC 7493) bound: integers within +/- this are read exactly by every parser."""

MAX_PROBLEMS = 10
"""At most this many problems are listed for one value; a last line says more were found."""

_SHOWN = 40  # characters of a value or key shown in a message
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_NOT_JSON = "expected a JSON value (object with string keys, array, string, number, true, false or null)"
_HINTS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    ((datetime, date, time), "send it as an ISO 8601 string"),
    (Decimal, "send it as a string or a float"),
    ((bytes, bytearray, memoryview), "send it as text, e.g. base64"),
    ((tuple, set, frozenset), "send it as a list"),
)


class _Brief(reprlib.Repr):
    """``reprlib`` with nothing unbounded or recursive: huge ints, long bytes, big sets, the
    subclasses of the builtins and objects whose ``repr`` fails all come out short."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = _SHOWN

    def repr_int(self, x: int, level: int) -> str:
        return _int_text(x)

    def repr_bytes(self, x: bytes | bytearray, level: int) -> str:
        return repr(bytes(x[: self.maxstring])) + ("..." if len(x) > self.maxstring else "")

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        shown = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in islice(x.items(), 4)]
        return "{" + ", ".join(shown) + (", ...}" if len(x) > 4 else "}")

    def repr_set(self, x: set[Any] | frozenset[Any], level: int) -> str:
        name = type(x).__name__
        if not x:
            return f"{name}()"
        shown = "..." if level <= 0 else ", ".join(self.repr1(item, level - 1) for item in islice(x, 6))
        inner = "{" + shown + (", ...}" if level > 0 and len(x) > 6 else "}")
        return inner if type(x) is set else f"{name}({inner})"

    repr_frozenset = repr_set

    def repr_instance(self, x: Any, level: int) -> str:
        """Every other type, subclasses of the builtins included (``reprlib`` picks by name)."""
        if x is None or isinstance(x, bool | float):
            return repr(x)
        kinds: tuple[tuple[Any, Callable[[Any, int], str]], ...] = (
            (dict, self.repr_dict),
            (list, self.repr_list),
            (tuple, self.repr_tuple),
            (set | frozenset, self.repr_set),
            (str, self.repr_str),
            (int, self.repr_int),
            (bytes | bytearray, self.repr_bytes),
        )
        for kind, method in kinds:
            if isinstance(x, kind):
                return method(x, level)
        try:
            text = repr(x)
        except Exception:  # noqa: BLE001 - a failing repr (RecursionError too) is described instead
            return f"<{type(x).__name__} object>"
        return text if len(text) <= self.maxother else text[: self.maxother - 3] + "..."


_BRIEF = _Brief()


def _int_text(value: int) -> str:
    if value.bit_length() <= 128:  # at most 39 digits: int.__repr__ is cheap and allowed
        return repr(int(value))
    digits = int(value.bit_length() * math.log10(2)) + 1
    return f"<about {digits:,} digits>"


def describe(value: Any) -> str:
    """The type and a short text of ``value`` for a message (at most about 60 characters, fast
    for any size), e.g. ``str '1'``, ``list [1, 2]``, ``int <about 5,000 digits>``."""
    if isinstance(value, str):
        text = repr(value[: _SHOWN + 2])  # repr escapes surrogates: the message stays printable
    else:
        text = _BRIEF.repr(value)
    return f"{type(value).__name__} {text if len(text) <= _SHOWN else text[: _SHOWN - 3] + '...'}"


def member(path: str, key: Any) -> str:
    """The path of ``key`` inside the object at ``path``: ``a.b`` for a plain key, else
    ``a['some key']`` (escaped, cut to a bounded length)."""
    if isinstance(key, str) and len(key) <= _SHOWN and _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    text = repr(key[: _SHOWN + 2]) if isinstance(key, str) else _BRIEF.repr(key)
    return f"{path}[{text if len(text) <= _SHOWN else text[: _SHOWN - 3] + '...'}]"


def _string_problem(text: str) -> str | None:
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"contains a lone surrogate U+{ord(found.group()):04X} at index {found.start()}, "
        "which UTF-8 cannot encode"
    )


def _scalar_problem(value: Any, exact_integers: bool) -> str | None:
    """What is wrong with a value that is not an array or an object, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _string_problem(value)
    if isinstance(value, int):
        if exact_integers and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return (
                f"integer {_int_text(value)} is outside the I-JSON range -(2**53-1) .. 2**53-1 "
                "(RFC 7493) that every partner's JSON parser reads exactly; send it as a string"
            )
        return None
    if isinstance(value, float):
        return (
            None
            if math.isfinite(value)
            else f"float {value!r} is not a JSON number (NaN and Infinity are not)"
        )
    hint = next((h for kind, h in _HINTS if isinstance(value, kind)), None)
    return f"{_NOT_JSON}, got {describe(value)}" + (f"; {hint}" if hint else "")


def _entries(
    container: dict[Any, Any] | list[Any], path: str, problems: list[str]
) -> Iterator[tuple[str, Any]]:
    """The (path, value) of each member; bad object keys are added to ``problems`` on the way."""
    if isinstance(container, list):
        for index, item in enumerate(container):
            yield f"{path}[{index}]", item
        return
    for key, item in container.items():
        if not isinstance(key, str):
            problems.append(f"{path or 'data'}: object key {describe(key)} is not a string")
        elif (problem := _string_problem(key)) is not None:
            problems.append(f"{member(path, key)}: object key {problem}")
        yield member(path, key), item


class _Walk:
    """One walk over a value with an explicit stack of the arrays and objects open on the current
    path, each with the iterator of its members, so no value can exhaust Python's stack."""

    def __init__(self, max_depth: int, exact_integers: bool) -> None:
        self.max_depth = max_depth
        self.exact_integers = exact_integers
        self.problems: list[str] = []
        # The containers on the current path (a cycle comes back to one).
        self.open_ids: set[int] = set()
        # The deepest level each container was checked at: a shared one needs no check at a shallower one.
        self.walked: dict[int, int] = {}
        self.stack: list[tuple[int, int, Iterator[tuple[str, Any]]]] = []

    def visit(self, where: str, item: Any, level: int) -> None:
        """Checks a scalar at once; opens an array or an object (its members are visited next)."""
        if not isinstance(item, dict | list):
            problem = _scalar_problem(item, self.exact_integers)
            if problem is not None:
                self.problems.append(f"{where}: {problem}")
            return
        ident = id(item)
        if ident in self.open_ids:
            self.problems.append(f"{where}: contains itself (a reference cycle)")
        elif level > self.max_depth:
            self.problems.append(f"{where}: arrays and objects nested more than {self.max_depth} levels deep")
        elif self.walked.get(ident, 0) < level:
            self.open_ids.add(ident)
            self.stack.append((ident, level, _entries(item, where, self.problems)))

    def step(self) -> None:
        """Visits the next member of the innermost open container, or closes it when it has none left."""
        ident, level, members = self.stack[-1]
        entry = next(members, None)
        if entry is not None:
            self.visit(entry[0], entry[1], level + 1)
            return
        self.stack.pop()
        self.open_ids.discard(ident)
        self.walked[ident] = max(self.walked.get(ident, 0), level)


def json_problems(
    value: Any,
    path: str,
    *,
    depth: int = 1,
    max_depth: int = MAX_DEPTH,
    exact_integers: bool = True,
    limit: int = MAX_PROBLEMS,
) -> list[str]:
    """Everything in ``value`` that is not portable JSON, each ``"<path>: <problem>"``.

    Args:
        value: any Python value; it is walked with an explicit stack, never recursively.
        path: the path of ``value`` (``"attachment"``); members are named below it.
        depth: the nesting level of ``value`` itself (a field of an event's data is 1).
        max_depth: the deepest level an array or object may sit at.
        exact_integers: whether integers must lie within +/- :data:`MAX_SAFE_INTEGER`.
        limit: list at most this many problems, then one line saying there are more.

    Returns:
        The problems, in the order found; empty when ``value`` can be sent as it is.
    """
    walk = _Walk(max_depth, exact_integers)
    walk.visit(path, value, depth)
    while walk.stack and len(walk.problems) <= limit:
        walk.step()
    problems = walk.problems
    if len(problems) > limit:
        problems[limit:] = [f"{path or 'data'}: more problems not listed (the first {limit} are)"]
    return problems
