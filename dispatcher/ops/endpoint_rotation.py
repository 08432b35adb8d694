"""Rotating an endpoint's credentials while workers run (``dispatcher endpoints rotate-key`` and
``rotate-secret``, the console's rotations; no click here).

A signing secret can be rotated gently: Standard Webhooks lets a request carry several ``v1,``
signatures, so during the grace the old secret signs beside the new one and the partner may
switch whenever it likes; after the grace only the new one signs (the stored endpoint keeps the
old secret with the end of its grace, and every process takes the endpoints again then). The new
secret is made here and shown once, by the front end; it is in no audit row, no count, no log.

``X-Webhook-Key`` carries one value, so a new key is sent from the next attempt on, whatever the
grace asked for; the plan says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ..contract.signing import generate_secret
from ..errors import ConfigError
from ..runtime import Runtime
from ..store import endpoint_catalog
from ..store.endpoint_catalog import Retiring, StoredEndpoint
from ..times import format_utc, utcnow
from ..vocabulary import AuditAction
from .bulk import Progress
from .door import Door, Plan
from .endpoints import checked, plain, stored_endpoint, taken

DEFAULT_GRACE_SECONDS = 86400
"""How long an old signing secret signs beside the new one unless told: a day."""


def _grace_checked(grace_seconds: int | None) -> int:
    if grace_seconds is None:
        return 0
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int) or grace_seconds < 0:
        raise ConfigError("grace", f"must be a whole number of seconds, 0 or more, got {grace_seconds!r}")
    return grace_seconds


def signing_secrets(definition: Mapping[str, Any]) -> list[str]:
    """The signing secrets a stored mapping holds (one, a list, or none)."""
    value = definition.get("signing_secret")
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(s) for s in value]


@dataclass(frozen=True)
class KeyRotated:
    """What :class:`RotateKey` did: the endpoint whose key is new (sent from the next attempt)."""

    name: str

    def counts(self) -> Mapping[str, Any]:
        return {"rotated": 1}

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.name, "key_rotated": True, "sent_from": "the next attempt"}


@dataclass(frozen=True)
class RotateKey(Door[KeyRotated]):
    """Gives an endpoint a new ``X-Webhook-Key``, checked as the file's ``key`` is. The header
    carries one value, so the new key is sent at once; ``grace_seconds`` is accepted (the
    front ends offer one grace for both rotations) and the plan says it does not apply."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_ROTATE_KEY
    name: str
    key: str = field(repr=False)
    grace_seconds: int | None = None

    def _rotated(self, runtime: Runtime) -> tuple[dict[str, Any], datetime]:
        """The stored mapping with the new key, and when the stored one was last changed."""
        _grace_checked(self.grace_seconds)
        row = stored_endpoint(runtime, self.name)
        definition = plain(row.definition)
        if definition.get("key") == self.key:
            raise ConfigError("key", "is the key in use now; give a new one")
        definition["key"] = self.key
        checked(runtime, definition, row.retiring_at(utcnow()))
        return definition, row.updated_at

    def plan(self, runtime: Runtime) -> Plan:
        self._rotated(runtime)
        notes = ["X-Webhook-Key carries one value: the new key is sent from the next attempt on."]
        if self.grace_seconds:
            notes.append("The grace does not apply to the key (it applies to signing secrets).")
        return Plan(
            self.action,
            None,
            f"Give endpoint {self.name} a new key, sent at once: the partner must accept it now.",
            {"endpoint": self.name, "settings": ["key"]},
            notes=tuple(notes),
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> KeyRotated:
        definition, read_at = self._rotated(runtime)
        endpoint_catalog.update(runtime.engine, self.name, definition, read_at=read_at)
        taken(runtime)
        return KeyRotated(self.name)


@dataclass(frozen=True)
class SecretRotated:
    """What :class:`RotateSecret` did: the new secret (to show once; never counted or audited)
    and when the old one stops signing (None: it already has, or there was none)."""

    name: str
    secret: str = field(repr=False)
    retiring_until: datetime | None

    def counts(self) -> Mapping[str, Any]:
        return {"rotated": 1, "retiring": int(self.retiring_until is not None)}

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.name, "signing_secret": self.secret, "retiring_until": self.retiring_until}


def _retiring(
    row: StoredEndpoint, old: list[str], now: datetime, grace: int
) -> tuple[list[Retiring], datetime | None]:
    """The secrets still signing after a rotation: those already retiring keep their own end,
    the ones replaced now sign until ``now + grace``; with no grace, none."""
    if grace == 0:
        return [], None
    until = now + timedelta(seconds=grace)
    kept = [r for r in row.retiring if r.until > now and r.secret not in old]
    added = [Retiring(secret, until) for secret in old]
    return kept + added, until if added else None


@dataclass(frozen=True)
class RotateSecret(Door[SecretRotated]):
    """Gives an endpoint a new signing secret (``whsec_``, random); the ones it replaces keep
    signing beside it for ``grace_seconds`` (0: they stop at once)."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_ROTATE_SECRET
    name: str
    grace_seconds: int = DEFAULT_GRACE_SECONDS

    def plan(self, runtime: Runtime) -> Plan:
        grace = _grace_checked(self.grace_seconds)
        row = stored_endpoint(runtime, self.name)
        old = signing_secrets(row.definition)
        if not old:
            after = "It signs nothing now: the partner must be given the new secret to check signatures."
        elif grace:
            until = format_utc(utcnow() + timedelta(seconds=grace))
            after = f"The current secret signs beside it until {until} (two v1 signatures), then only the new one."
        else:
            after = "The current secret stops signing at once."
        return Plan(
            self.action,
            None,
            f"Give endpoint {self.name} a new signing secret, shown once. {after}",
            {"endpoint": self.name, "settings": ["signing_secret"], "grace_seconds": grace},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> SecretRotated:
        grace = _grace_checked(self.grace_seconds)
        row = stored_endpoint(runtime, self.name)
        definition = plain(row.definition)
        secret = generate_secret()
        now = utcnow()
        retiring, until = _retiring(row, signing_secrets(definition), now, grace)
        definition["signing_secret"] = secret
        checked(runtime, definition, [r.secret for r in retiring])
        endpoint_catalog.update(runtime.engine, self.name, definition, retiring, read_at=row.updated_at)
        taken(runtime)
        return SecretRotated(self.name, secret, until)
