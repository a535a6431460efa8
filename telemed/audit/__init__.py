"""The audit trail: an append-only, hash-chained JSON-lines file of who did what
to which visit or chart (ids, codes and short names only, never health data).

- :mod:`telemed.audit.record`: a record's fields and checks, its hash, and where
  the log, its head witness and its lock file live;
- :mod:`telemed.audit.log`: :class:`AuditLog`, the writer (several processes
  append to one file under a lock);
- :mod:`telemed.audit.verifier`: :func:`verify`, the forensic check of a whole log.

``bench/audit.py`` measures appends and a verify on this machine.
"""

from __future__ import annotations

from telemed.audit.log import AuditLog
from telemed.audit.record import (
    GENESIS,
    ROLES,
    Action,
    AuditLogCorrupt,
    Head,
    Outcome,
    canonical,
    default_path,
    head_path,
    lock_path,
    record_hash,
)
from telemed.audit.verifier import AuditReport, Problem, ProblemKind, verify

__all__ = [
    "GENESIS",
    "ROLES",
    "Action",
    "AuditLog",
    "AuditLogCorrupt",
    "AuditReport",
    "Head",
    "Outcome",
    "Problem",
    "ProblemKind",
    "canonical",
    "default_path",
    "head_path",
    "lock_path",
    "record_hash",
    "verify",
]
