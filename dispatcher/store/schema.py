"""The tables: one row per delivery, one per attempt, one per endpoint ever disabled.

* ``webhook_deliveries`` (:data:`DELIVERIES`, also :data:`Delivery`): one row per request_id,
  the source of truth for status.
* ``webhook_event_transaction_log`` (:data:`ATTEMPTS`, also :data:`WebhookEventTransactionLog`):
  one row per attempt.
* ``webhook_endpoint_state`` (:data:`ENDPOINT_STATE`, also :data:`EndpointState`): an
  endpoint's health, shared by workers.
* ``webhook_status_counts`` (:data:`STATUS_COUNTS`): final deliveries per status, kept as they
  change.
* ``webhook_audit`` (:data:`AUDIT`): one row per operator action that changes or reveals the log.
* ``webhook_idempotency`` (:data:`IDEMPOTENCY`): what a dispatch with an idempotency key stored.
* ``webhook_business_ids`` (:data:`BUSINESS_IDS`): a delivery's business ids as keyed hashes, to
  find it by one (:mod:`dispatcher.store.search`).
* ``webhook_endpoints`` (:data:`ENDPOINTS`) and ``webhook_endpoint_catalog``
  (:data:`ENDPOINT_CATALOG`): the endpoints, once imported from the file, and their generation.
* ``webhook_alerts`` (:data:`ALERTS`) and ``webhook_alert_sends`` (:data:`ALERT_SENDS`): alert
  occurrences and their sending to each channel.
* ``webhook_api_tokens`` (:data:`API_TOKENS`): the HTTP API's tokens, each by name with the hash
  of its token and its scopes (:mod:`dispatcher.store.api_tokens`).

The PHI columns -- a delivery's ``payload``, an attempt's ``request_payload``, ``response_body``
and ``error`` (what a partner answers is PHI too) -- are :class:`~dispatcher.store.sealing.SealedText`: encrypted with the
storage keys when any are configured. A payload is NULL once erased (``payload_erased_at``).

This module describes the newest schema only; how a database gets there is the migrations'
(:mod:`dispatcher.store.migrations`, :mod:`dispatcher.store.versioning`).

Statuses of a delivery: ``queued`` -> ``in_flight`` (a worker holds it) -> ``delivered`` |
``retrying`` | ``failed`` (:class:`dispatcher.vocabulary.DeliveryStatus`).

The tables are SQLAlchemy Core (no ORM classes): every query here is Core, and a command that
reads the log starts without the ORM or pydantic. A caller's SQLAlchemy or SQLModel session can
select from them (``select(WebhookEventTransactionLog)``) and the outbox writes through one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from .sealing import SealedText


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


METADATA = sa.MetaData()
ORDERED_PENDING = "ordering_key IS NOT NULL AND status IN ('queued', 'in_flight', 'retrying')"
"""The predicate of the pending-only ordering index: the same words as PENDING_STATUSES, so a
query's ``status IN (...)`` is matched to it (a test keeps the two equal)."""


def _time(name: str, nullable: bool = False, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, UTCDateTime(), nullable=nullable, index=index)


DELIVERIES = sa.Table(
    "webhook_deliveries",
    METADATA,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("event", sa.String(64), nullable=False, index=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("url", sa.String(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("attempt_limit", sa.Integer(), nullable=False),
    sa.Column("last_http_status", sa.Integer()),
    sa.Column("payload", SealedText()),
    sa.Column("reason", sa.String()),
    sa.Column("worker", sa.String(255)),
    sa.Column("replay_of", sa.String(36)),
    _time("attempt_started_at", nullable=True),
    _time("next_attempt_at", nullable=True),
    _time("created_at", index=True),
    _time("updated_at", index=True),
    _time("payload_erased_at", nullable=True),
    sa.Column("patient_key", sa.String(64)),
    sa.Column("encounter_key", sa.String(64)),
    sa.Index("ix_webhook_deliveries_patient", "patient_key", "encounter_key"),
    # Newest first within a status and an endpoint, or within an endpoint: the console's and
    # retry --failed's pages, and reconcile's scans by status (migration 0006).
    sa.Index("ix_webhook_deliveries_status", "status", "endpoint", "created_at", "request_id"),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint", "created_at", "request_id"),
    sa.Column("ordering_key", sa.String(64)),
    sa.Column("ordering_seq", sa.BigInteger()),
    # Every delivery of a key, for the last number given (a key's endpoints share its entries:
    # a few apart). Without the endpoint, so that it never ties with the next one (migration 0007).
    sa.Index(
        "ix_webhook_deliveries_ordering",
        "ordering_key",
        "ordering_seq",
        postgresql_where=sa.text("ordering_key IS NOT NULL"),
        sqlite_where=sa.text("ordering_key IS NOT NULL"),
    ),
    # The pending deliveries of each key alone: the claim's "nothing earlier pending" and the
    # heads are a seek, however long the key's history (migration 0007).
    sa.Index(
        "ix_webhook_deliveries_ordering_pending",
        "endpoint",
        "ordering_key",
        "ordering_seq",
        postgresql_where=sa.text(ORDERED_PENDING),
        sqlite_where=sa.text(ORDERED_PENDING),
    ),
    sa.Index(
        "ix_webhook_deliveries_unerased",
        "updated_at",
        postgresql_where=sa.text("payload_erased_at IS NULL"),
        sqlite_where=sa.text("payload_erased_at IS NULL"),
    ),
)
"""One delivery of one event to one endpoint. ``patient_key`` and ``encounter_key`` are keyed
hashes of the event's ids (:meth:`~dispatcher.store.sealing.Keyring.index`), ``-`` for an event
that names no patient. ``ordering_key`` (a keyed hash) and ``ordering_seq`` place a delivery to an
ordered endpoint in its key's order (:mod:`dispatcher.store.ordering`); NULL for the others."""

ATTEMPTS = sa.Table(
    "webhook_event_transaction_log",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(36), nullable=False, index=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("url", sa.String(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("retry", sa.Boolean(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("http_status", sa.Integer()),
    sa.Column("error", SealedText()),
    sa.Column("response_body", SealedText()),
    sa.Column("duration_ms", sa.Integer()),
    _time("next_attempt_at", nullable=True),
    sa.Column("request_payload", SealedText()),
    sa.Column("request_headers", sa.String()),
    _time("created_at", index=True),
    sa.Column("failure", sa.String(32)),
)
"""One row per attempt (and one ``interrupted`` row per attempt cut short by a dead worker).

``error`` is PHI: a partner's answer shapes it (its reason phrase, an exception quoting what it
sent), so it is sealed like the body and emptied when the delivery is erased. What anyone may
read of an attempt is ``outcome``, ``http_status`` and ``failure`` -- the
:class:`~dispatcher.vocabulary.FailureKind` of an attempt that got no answer, NULL otherwise
(and on rows written before migration 0009)."""

ENDPOINT_STATE = sa.Table(
    "webhook_endpoint_state",
    METADATA,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("disabled", sa.Boolean(), nullable=False, default=False),
    sa.Column("reason", sa.String()),
    _time("disabled_at", nullable=True),
    _time("updated_at"),
    sa.Column("paused", sa.Boolean(), nullable=False, default=False, server_default=sa.false()),
    _time("paused_at", nullable=True),
)
"""An endpoint's health, shared by every worker: disabled by a 410 or by failing for a window;
paused by an operator (its deliveries wait, using no attempt)."""

STATUS_COUNTS = sa.Table(
    "webhook_status_counts",
    METADATA,
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("shard", sa.Integer(), primary_key=True),
    sa.Column("count", sa.BigInteger(), nullable=False, default=0),
)
"""Final deliveries per status, kept as they change (:mod:`dispatcher.store.counts`)."""

AUDIT = sa.Table(
    "webhook_audit",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    _time("at", index=True),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("selection", sa.Text(), nullable=False),
    sa.Column("counts", sa.Text(), nullable=False),
)
"""Who did what to the log, when, on which selection (JSON), with what counts (JSON); no PHI."""

IDEMPOTENCY = sa.Table(
    "webhook_idempotency",
    METADATA,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("request_ids", sa.Text(), nullable=False),
    _time("created_at", index=True),
)
"""One row per idempotency key (:mod:`dispatcher.store.idempotency`): the key and the event's
fingerprint as keyed hashes, and the request ids the first dispatch stored."""

WORKER_LEASES = sa.Table(
    "webhook_worker_leases",
    METADATA,
    sa.Column("worker", sa.String(255), primary_key=True),
    _time("renewed_at"),
    _time("expires_at", index=True),
)
"""One row per running worker, renewed with its heartbeat: a worker whose lease has not expired
is alive whatever Redis says, so a Redis flush never makes a live worker's claims look abandoned
(:mod:`dispatcher.store.leases`)."""

BUSINESS_IDS = sa.Table(
    "webhook_business_ids",
    METADATA,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    # A search is a seek on the digest that yields the request ids without visiting the table.
    sa.Index("ix_webhook_business_ids_digest", "digest", "request_id"),
)
"""One row per business id of a delivery (an order number, a prescription's, encounter's or
patient's id): its HMAC-SHA256 under ``search_key`` as hex, never the id
(:mod:`dispatcher.store.search`). Written with the delivery, deleted with it or when its payload
is erased; none without ``search_key``."""

ENDPOINTS = sa.Table(
    "webhook_endpoints",
    METADATA,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("definition", SealedText(), nullable=False),
    sa.Column("retiring", SealedText()),
    _time("created_at"),
    _time("updated_at"),
)
"""The endpoints, once imported from the file: each as the file writes it (JSON, its secrets
included, so sealed with the storage keys when set), in the order listed (``position``); and
the signing secrets it is retiring, each until the end of its grace (JSON, sealed)
(:mod:`dispatcher.store.endpoint_catalog`)."""

ENDPOINT_CATALOG = sa.Table(
    "webhook_endpoint_catalog",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("generation", sa.BigInteger(), nullable=False),
    _time("imported_at"),
    _time("changed_at"),
)
"""One row (id 1) once the file's endpoints were imported: from then on the database holds the
endpoints. ``generation`` goes up with every change, so a process sees one by reading one row."""

ALERTS = sa.Table(
    "webhook_alerts",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("occurrence", sa.String(255), nullable=False, unique=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(128)),
    _time("occurred_at", index=True),
    sa.Column("count", sa.Integer()),
    sa.Column("request_ids", sa.Text()),
    sa.Column("detail", sa.Text(), nullable=False),
    _time("resolved_at", nullable=True),
    sa.Column("cursor", sa.BigInteger()),
)
"""One row per alert occurrence, unique by ``occurrence`` (so an occurrence is raised once
whoever sees it): its kind, endpoint, count and request ids (JSON), a detail in words, no PHI;
a condition that lasts (a backlog, no worker alive) is ``resolved_at`` once it ends; a
``delivery.failed`` alert's ``cursor`` is the last failed attempt row it counted, where the next
one starts (:mod:`dispatcher.store.alerts`)."""

ALERT_SENDS = sa.Table(
    "webhook_alert_sends",
    METADATA,
    sa.Column("alert_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("channel", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    _time("next_at", index=True),
    sa.Column("answer", sa.Text()),
    _time("sent_at", nullable=True),
)
"""One row per alert and channel it goes to: ``pending`` (due at ``next_at``), ``sent`` or
``failed`` (out of tries), with the channel's last answer in one line."""

API_TOKENS = sa.Table(
    "webhook_api_tokens",
    METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.Text(), nullable=False),
    _time("created_at"),
    _time("last_used_at", nullable=True),
)
"""One row per HTTP API token: its name, the SHA-256 of the whole token as hex (never the token),
its scopes comma-separated in a fixed order, when it was made and when it was last used (NULL:
never). Revoking a token deletes its row."""

TABLES = [
    DELIVERIES,
    ATTEMPTS,
    ENDPOINT_STATE,
    STATUS_COUNTS,
    AUDIT,
    IDEMPOTENCY,
    WORKER_LEASES,
    BUSINESS_IDS,
    ENDPOINTS,
    ENDPOINT_CATALOG,
    ALERTS,
    ALERT_SENDS,
    API_TOKENS,
]

Delivery = DELIVERIES
WebhookEventTransactionLog = ATTEMPTS
EndpointState = ENDPOINT_STATE
