"""The store room: the transaction log's tables and every query on them. All SQL lives here.

Owns: the schema (:mod:`.schema`), the engine and its error words (:mod:`.engine`), the
delivery hot path -- insert, claim, re-open (:mod:`.deliveries`) and record (:mod:`.records`),
the counts of final deliveries kept as they change (:mod:`.counts`), endpoint state
(:mod:`.endpoints`), reading by :class:`Selection` with one keyset pager (:mod:`.selection`),
reports (:mod:`.reports`) and deletion (:mod:`.maintenance`); the schema's revisions
(:mod:`.migrations`, :mod:`.versioning`); encryption at rest and the patient index
(:mod:`.sealing`), erasing PHI (:mod:`.erasure`), sealing rows already stored
(:mod:`.resealing`), the audit trail (:mod:`.audit`), per-key ordering (:mod:`.ordering`),
idempotent dispatch (:mod:`.idempotency`) and the business-id index (:mod:`.search`: keyed
hashes of order, prescription, encounter and patient ids, to find a delivery by one), the
endpoints once imported from the file (:mod:`.endpoint_catalog`), alert occurrences and their
sending (:mod:`.alerts`, the failures they count in :mod:`.alert_failures`) and the HTTP API's
tokens, stored as hashes (:mod:`.api_tokens`).

May import: ``policy`` (the status after an outcome), ``config``, and the shared kernel. Knows
nothing of HTTP, Redis or RQ.

Invariants: a delivery's status moves only by conditional UPDATEs (a claim is taken by one
worker at a time, and only its holder records the attempt); timestamps are timezone-aware UTC
on every backend; a read never takes SQLite's write lock; with storage keys, no PHI column is
written unsealed; opening a database never changes one that is not empty.
"""

from .audit import AuditEntry
from .deliveries import (
    Claim,
    NewDelivery,
    Stored,
    claim,
    claim_many,
    claims_held_by,
    delivery_rows,
    existing_deliveries,
    fail_delivery,
    grant_retries,
    grant_retry,
    insert_deliveries,
    insert_in_session,
    release_claim,
)
from .endpoints import (
    CACHE_SECONDS,
    DisabledCache,
    disable,
    disabled_endpoints,
    enable,
    endpoint_states,
    failures_without_success,
    held_back,
    set_endpoint_disabled,
)
from .engine import create_store_engine, describe_error, is_transient, reading, safe_url, storable_text
from .maintenance import delete_final
from .records import AttemptRecord, record_attempt, record_attempts
from .reports import ROW_KINDS, TIME_COLUMNS, GroupStats, Stats, count_rows, delivery_stats, export_rows
from .schema import (
    ATTEMPTS,
    AUDIT,
    BUSINESS_IDS,
    DELIVERIES,
    ENDPOINT_STATE,
    IDEMPOTENCY,
    METADATA,
    STATUS_COUNTS,
    TABLES,
    Delivery,
    EndpointState,
    WebhookEventTransactionLog,
)
from .selection import (
    ATTEMPT_FIELDS,
    ATTEMPT_RESULT,
    DELIVERY_FIELDS,
    DELIVERY_STATE,
    PAGE_SIZE,
    Selection,
    count,
    count_by_status,
    endpoints_of,
    first_rows,
    get_delivery,
    list_attempts,
    list_deliveries,
    pages,
    rows,
    status_counts,
)

__all__ = [
    "ATTEMPTS",
    "AUDIT",
    "BUSINESS_IDS",
    "IDEMPOTENCY",
    "ATTEMPT_FIELDS",
    "ATTEMPT_RESULT",
    "CACHE_SECONDS",
    "DELIVERIES",
    "DELIVERY_FIELDS",
    "DELIVERY_STATE",
    "ENDPOINT_STATE",
    "STATUS_COUNTS",
    "METADATA",
    "PAGE_SIZE",
    "ROW_KINDS",
    "TABLES",
    "TIME_COLUMNS",
    "AttemptRecord",
    "AuditEntry",
    "Claim",
    "Delivery",
    "DisabledCache",
    "EndpointState",
    "GroupStats",
    "NewDelivery",
    "Stored",
    "Selection",
    "Stats",
    "WebhookEventTransactionLog",
    "claim",
    "claim_many",
    "claims_held_by",
    "count",
    "count_by_status",
    "count_rows",
    "create_store_engine",
    "delete_final",
    "delivery_rows",
    "delivery_stats",
    "describe_error",
    "disable",
    "disabled_endpoints",
    "enable",
    "endpoint_states",
    "existing_deliveries",
    "export_rows",
    "fail_delivery",
    "failures_without_success",
    "first_rows",
    "endpoints_of",
    "get_delivery",
    "grant_retries",
    "grant_retry",
    "held_back",
    "insert_deliveries",
    "insert_in_session",
    "is_transient",
    "list_attempts",
    "list_deliveries",
    "pages",
    "reading",
    "record_attempt",
    "record_attempts",
    "release_claim",
    "rows",
    "safe_url",
    "set_endpoint_disabled",
    "status_counts",
    "storable_text",
]
