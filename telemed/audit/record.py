"""What an audit record is: its fields and their checks, its hash, where the
log, its head witness and its lock file live, and the lock itself. Shared by
the writer (:mod:`telemed.audit.log`) and the verifier
(:mod:`telemed.audit.verifier`)."""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telemed.tokens import ID_PATTERN, Role

#: ``prev`` of the first record.
GENESIS = "0" * 64

#: Who can act: the token roles, plus the server itself (sweepers, purges).
ROLES = frozenset({role.value for role in Role} | {"system", "anonymous"})

#: ``target``: a chart file name, an export format, a purge cutoff. No spaces,
#: no ``@``, no newlines, so a name, an e-mail address or free text is refused.
_TARGET = re.compile(r"[A-Za-z0-9_.:/=+-]{1,200}")
#: ``code``: an error code as sent to clients (``forbidden``, ``not_found``).
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
HEX64 = re.compile(r"[0-9a-f]{64}")


class Action(enum.StrEnum):
    ADMIT = "admit"
    END = "end"
    CHART_READ = "chart_read"
    FILE_DOWNLOAD = "file_download"
    FHIR_READ = "fhir_read"
    EXPORT = "export"
    PURGE = "purge"
    REFUSED = "refused"
    VERIFY = "verify"
    #: A clinic's admin changed its run-time settings; ``target`` lists them
    #: (``walk_in=0+no_show_after=300``).
    SETTINGS = "settings"
    #: A clinic's admin signed a staff member out; ``target`` is the token id.
    REVOKE = "revoke"
    #: The chart browser: a page of the clinic's list (``target`` ``page=N``, never
    #: the search text), a chart's integrity checked on open (``ok``/``problems``),
    #: a link with a ticket to one file (``target`` the file).
    CHART_LIST = "chart_list"
    CHART_VERIFY = "chart_verify"
    CHART_LINK = "chart_link"
    #: A patient link was issued for a visit: ``target`` ``new`` (the invitation)
    #: or ``resend`` (a fresh link for the same visit).
    INVITE = "invite"
    #: A chart was sealed; ``target`` is ``sha256:<hex>`` of its manifest file,
    #: so a manifest recomputed after the fact does not match.
    SEAL = "seal"
    #: Written by :meth:`AuditLog.append` itself when the head witness disagrees
    #: with the file (records were cut off or rewritten since the last append).
    HEAD_MISMATCH = "head_mismatch"


#: What callers may log; head_mismatch is the log's own.
_CALLER_ACTIONS = frozenset(a.value for a in Action if a is not Action.HEAD_MISMATCH)


class Outcome(enum.StrEnum):
    OK = "ok"
    REFUSED = "refused"


class AuditLogCorrupt(Exception):
    """The last complete record cannot be read, so the chain cannot be continued."""


@dataclass(frozen=True)
class Head:
    """A point in the chain: what ``audit.head`` holds and what operators compare."""

    seq: int
    hash: str
    at: float


def canonical(record: dict[str, Any]) -> str:
    """The exact text hashed and written: stable across writers and Python versions."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def default_path(recordings_dir: Path) -> Path:
    """Where the trail is kept unless configured: beside the charts, in a folder
    no clinic id can name (ids do not start with a dot)."""
    return recordings_dir / ".audit" / "audit.jsonl"


def head_path(path: Path) -> Path:
    """``audit.jsonl`` → ``audit.head``, next to it."""
    return path.with_suffix(".head")


def lock_path(path: Path) -> Path:
    """``audit.jsonl`` → ``.audit.lock``, next to it."""
    return path.with_name(f".{path.stem}.lock")


def _check_id(value: object, what: str) -> str:
    # The message never repeats the value: it could be the health data refused.
    if not isinstance(value, str) or (value and not ID_PATTERN.fullmatch(value)):
        raise ValueError(f"audit {what} must be empty or an id (1-64 of A-Z a-z 0-9 _ . -)")
    return value


def checked_fields(
    action: Action | str,
    outcome: Outcome | str,
    actor_role: Role | str,
    actor_sub: str,
    clinic: str,
    visit: str,
    target: str,
    code: str,
) -> dict[str, Any]:
    """The caller's part of a record, checked so no health data or newline gets in."""
    if not isinstance(action, str) or action not in _CALLER_ACTIONS:
        raise ValueError("audit action must be one of " + ", ".join(sorted(_CALLER_ACTIONS)))
    if not isinstance(outcome, str) or outcome not in set(Outcome):
        raise ValueError("audit outcome must be 'ok' or 'refused'")
    if not isinstance(actor_role, str) or actor_role not in ROLES:
        raise ValueError("audit actor_role must be one of " + ", ".join(sorted(ROLES)))
    if not isinstance(target, str) or (target and not _TARGET.fullmatch(target)):
        raise ValueError("audit target must be empty or 1-200 of A-Z a-z 0-9 _ . : / = + -")
    if not isinstance(code, str) or (code and not _CODE.fullmatch(code)):
        raise ValueError("audit code must be empty or an error code (a-z 0-9 _)")
    if (outcome == Outcome.REFUSED) != bool(code):
        raise ValueError("audit code is required for a refusal, and only for one")
    if action == Action.REFUSED and outcome != Outcome.REFUSED:
        raise ValueError("audit action 'refused' needs outcome 'refused'")
    return {
        "action": str(action),
        "outcome": str(outcome),
        "actor": {"role": str(actor_role), "sub": _check_id(actor_sub, "actor_sub")},
        "clinic": _check_id(clinic, "clinic"),
        "visit": _check_id(visit, "visit"),
        "target": target,
        "code": code,
    }


def load_head(path: Path) -> Head | None:
    """The witness, or None when absent; ValueError when unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    seq, hash_, at = data.get("seq"), data.get("hash"), data.get("at")
    if type(seq) is not int or seq < 1 or not isinstance(hash_, str) or not HEX64.fullmatch(hash_):
        raise ValueError("no seq/hash")
    return Head(seq, hash_, float(at) if isinstance(at, int | float) else 0.0)


@contextlib.contextmanager
def locked(path: Path, operation: int, *, create: bool) -> Iterator[None]:
    # A fresh open per use: flock belongs to the open file description, so two
    # threads (asyncio.to_thread) or a forked child never share one by accident.
    try:
        fd = os.open(path, (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        if create:
            raise
        yield
        return
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # releases the lock
