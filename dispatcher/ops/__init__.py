"""The ops room: what operators and partners do with the log and the sender, without click.

Owns: re-sending failed deliveries (:mod:`.resend`), replaying a range (:mod:`.replay`),
pruning (:mod:`.prune`), exports (:mod:`.export`), the documents and numbers operators read
(:mod:`.documents`, :mod:`.info`, :mod:`.endpoints`), managing endpoints at runtime
(:mod:`.endpoint_admin`, :mod:`.endpoint_rotation`, :mod:`.endpoint_import`), alerts -- list,
test, check (:mod:`.alerts`) --, the PHI lifecycle -- erasure
(:mod:`.erase`), sealing what is stored (:mod:`.storage`), upgrading the schema
(:mod:`.database`), the audit trail (:mod:`.audit`) --, realistic traffic (:mod:`.simulate`),
the reference receiver (:mod:`.receiver`), the demo and its private Redis (:mod:`.demo`,
:mod:`.redis_server`).

May import: ``worker``, ``intake``, ``alerts``, ``runtime``, ``queue``, ``sending``, ``store``, ``policy``,
``config``, ``contract`` and the shared kernel; never ``cli``. No SQL of its own: every read and
write goes through ``store``.

Invariants: a bulk operation streams its rows in keyset pages (memory flat however many match),
changes a batch per transaction, and reports at most ``bulk.ID_CAP`` ids.
"""
