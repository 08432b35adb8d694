"""The configuration file's endpoints and the database's (``dispatcher endpoints import [FILE]
[--replace]``, ``config check``; no click here).

After the first start the database holds the endpoints and the file's ``endpoints:`` are only
what was imported then. :class:`Import` brings a file's endpoints in again: without ``replace``
it adds those the database lacks and leaves the others as they are (saying which differ); with
``replace`` the database becomes the file's list exactly -- changed ones rewritten, ones the file
does not list removed (their waiting deliveries failed ``endpoint_removed``, their log rows
kept). :func:`file_differences` is what ``config check`` warns about: each endpoint the file
lists that the database lacks or holds otherwise. Two spellings of one endpoint (``window: 1d``
and ``window: 86400``) are the same endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigError
from ..runtime import Runtime
from ..store import endpoint_catalog
from ..store import endpoints as states
from ..store.endpoint_catalog import EndpointExists
from ..vocabulary import AuditAction, Reason
from .bulk import Progress
from .door import Door, Plan
from .endpoints import canonical, checked, differing, plain, taken


@dataclass(frozen=True)
class Comparison:
    """A file's endpoints against the database's, by name."""

    added: tuple[str, ...]
    """In the file, not in the database."""
    changed: tuple[str, ...]
    """In both, otherwise."""
    removed: tuple[str, ...]
    """In the database, not in the file."""
    unchanged: tuple[str, ...]


def compare(runtime: Runtime, wanted: Mapping[str, Mapping[str, Any]]) -> Comparison:
    """How the stored endpoints differ from ``wanted`` (name -> mapping)."""
    _, rows = endpoint_catalog.catalog(runtime.engine)
    stored = {row.name: row.definition for row in rows}
    settings = runtime.settings
    same = {
        n for n in wanted if n in stored and canonical(stored[n], settings) == canonical(wanted[n], settings)
    }
    return Comparison(
        added=tuple(n for n in wanted if n not in stored),
        changed=tuple(n for n in wanted if n in stored and n not in same),
        removed=tuple(n for n in stored if n not in wanted),
        unchanged=tuple(n for n in wanted if n in same),
    )


@dataclass(frozen=True)
class Imported:
    """What :class:`Import` did: the endpoints added, rewritten and removed, and how many waiting
    deliveries to removed ones failed."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    failed: int = 0

    def counts(self) -> Mapping[str, Any]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "failed": self.failed,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "failed": self.failed,
        }


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


@dataclass(frozen=True)
class Import(Door[Imported]):
    """Imports ``definitions`` (endpoints as the file writes them, each checked as the file's
    are); ``source`` names where they came from, for the audit row. The plan's ``details`` name
    the endpoints ``added``, ``changed``, ``removed`` and ``unchanged``; its count is how many
    endpoints it writes."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_IMPORT
    definitions: Sequence[Mapping[str, Any]]
    replace: bool = False
    source: str = ""

    def _wanted(self, runtime: Runtime) -> dict[str, dict[str, Any]]:
        wanted: dict[str, dict[str, Any]] = {}
        for index, definition in enumerate(self.definitions):
            try:
                name = checked(runtime, plain(definition)).name
            except ConfigError as exc:
                raise ConfigError(f"endpoints[{index}].{exc.setting}", exc.problem) from None
            if name in wanted:
                raise ConfigError(f"endpoints[{index}].name", f"{name!r} is listed twice")
            wanted[name] = plain(definition)
        return wanted

    def plan(self, runtime: Runtime) -> Plan:
        runtime.adopt_file_endpoints()
        found = compare(runtime, self._wanted(runtime))
        written = found.added + (found.changed + found.removed if self.replace else ())
        return Plan(
            self.action,
            len(written),
            self._description(found),
            self._selection(found),
            notes=self._notes(runtime, found),
            details={
                "added": found.added,
                "changed": found.changed,
                "removed": found.removed,
                "unchanged": found.unchanged,
            },
        )

    def _description(self, found: Comparison) -> str:
        parts = [f"add {_names(found.added)}"] if found.added else []
        if self.replace:
            parts += [f"rewrite {_names(found.changed)}"] if found.changed else []
            parts += [f"remove {_names(found.removed)}"] if found.removed else []
        source = f" from {self.source}" if self.source else ""
        if not parts:
            return f"Import endpoints{source}: the database already holds them."
        return f"Import endpoints{source}: {'; '.join(parts)}."

    def _selection(self, found: Comparison) -> dict[str, Any]:
        selection: dict[str, Any] = {"source": self.source} if self.source else {}
        selection["added"] = list(found.added)
        if self.replace:
            selection.update(replace=True, changed=list(found.changed), removed=list(found.removed))
        return selection

    def _notes(self, runtime: Runtime, found: Comparison) -> tuple[str, ...]:
        if not self.replace:
            notes = []
            if found.changed:
                notes.append(
                    f"{_names(found.changed)}: the file's differs from the database's, which stays "
                    "in force (--replace makes the database match the file)"
                )
            if found.removed:
                notes.append(f"{_names(found.removed)}: in the database only, kept (--replace removes it)")
            return tuple(notes)
        pending = sum(states.pending_count(runtime.engine, name) for name in found.removed)
        if not pending:
            return ()
        noun = "delivery" if pending == 1 else "deliveries"
        return (
            f"{pending:,} pending {noun} to {_names(found.removed)} will be failed "
            f"({Reason.ENDPOINT_REMOVED}); their log rows stay",
        )

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> Imported:
        if not dry_run:
            return Imported()
        details = plan.details
        return Imported(
            details["added"],
            details["changed"] if self.replace else (),
            details["removed"] if self.replace else (),
        )

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Imported:
        wanted = self._wanted(runtime)
        found = compare(runtime, wanted)
        if not self.replace:
            added = tuple(name for name in found.added if _added(runtime, wanted[name]))
            taken(runtime)
            return Imported(added=added)
        endpoint_catalog.replace_all(runtime.engine, list(wanted.values()))
        failed = 0
        for name in found.removed:
            failed += states.fail_waiting(runtime.engine, name, Reason.ENDPOINT_REMOVED)
            states.forget_endpoint_state(runtime.engine, name)
        taken(runtime)
        return Imported(found.added, found.changed, found.removed, failed)

    def audit_selection(self, plan: Plan, outcome: Imported) -> Mapping[str, Any]:
        selection: dict[str, Any] = {"source": self.source} if self.source else {}
        selection["added"] = list(outcome.added)
        if self.replace:
            selection.update(replace=True, changed=list(outcome.changed), removed=list(outcome.removed))
        return selection


def _added(runtime: Runtime, definition: Mapping[str, Any]) -> bool:
    """Stores one endpoint; False when another process stored one of its name meanwhile."""
    try:
        endpoint_catalog.add(runtime.engine, definition)
    except EndpointExists:
        return False
    return True


def file_differences(runtime: Runtime) -> list[str]:
    """One line per endpoint the configuration file lists that the database lacks or holds
    otherwise (naming the settings that differ, never a value); none before the file's
    endpoints were first imported, when the file's are the ones in force."""
    from ..config.endpoint_records import endpoint_definition

    if endpoint_catalog.generation(runtime.engine) is None:
        return []
    _, rows = endpoint_catalog.catalog(runtime.engine)
    stored = {row.name: row.definition for row in rows}
    settings = runtime.settings
    lines = []
    for endpoint in runtime.file_endpoints or ():
        mine = plain(endpoint_definition(endpoint, settings.delivery))
        if endpoint.name not in stored:
            lines.append(
                f"endpoint {endpoint.name} is in the configuration file but not in the database, whose "
                "endpoints are in force; `dispatcher endpoints import` adds it"
            )
            continue
        differ = differing(canonical(stored[endpoint.name], settings), mine)
        if differ:
            lines.append(
                f"endpoint {endpoint.name} differs between the configuration file and the database "
                f"({_names(differ)}); the database's is in force; `dispatcher endpoints import "
                "--replace` makes the database match the file"
            )
    return lines
