"""Every Redis key, stream and TTL between nodes and media workers (the rest
of the project's keys are in :mod:`telemed.keys`). Keys of one visit carry the
visit id in braces, like the rest, so a Redis Cluster keeps them in one slot.
"""

from __future__ import annotations

from telemed.keys import PREFIX

# -- lifetimes -----------------------------------------------------------------

#: A worker's presence and its legs' ownership expire after this many missed
#: refreshes (a worker beats every 5 s by default, so 15 s): then
#: the worker counts as gone, the node stops routing snapshot requests to it,
#: and the files it left ``recording`` are marked interrupted.
WORKER_TTL_BEATS = 3

#: A reply waits this long for the node that asked (it reads it within a second
#: or two; the TTL only cleans up after a node that died while waiting).
REPLY_TTL = 30

#: The per-participant file counter lives as long as an ended visit's other
#: keys, so a late re-offer never reuses a file number.
SEQ_TTL = 7 * 24 * 3600

#: Control streams are trimmed to about this many entries (requests are
#: consumed within milliseconds; this only bounds a stream nobody reads).
CONTROL_MAXLEN = 1000

#: The job stream is trimmed to about this many entries; answered jobs are
#: deleted, so only a backlog with no worker alive ever grows towards it.
JOBS_MAXLEN = 10_000


# -- keys ----------------------------------------------------------------------

#: Stream of chart-leg offers, fields {job, visit, clinic, role, sub, sdp, consent}.
JOBS = f"{PREFIX}media:jobs"

#: Consumer group of the workers on :data:`JOBS`.
GROUP = "workers"


def worker(worker_id: str) -> str:
    """Hash {pid, host, legs, capacity, started}: the worker is alive (TTL)."""
    return f"{PREFIX}media:worker:{worker_id}"


def control(worker_id: str) -> str:
    """Stream of requests to one worker: {req, op: snapshot|close, visit, role}."""
    return f"{PREFIX}media:ctl:{worker_id}"


def reply(req: str) -> str:
    """List holding the one JSON reply to a control request (BLPOP by the asker)."""
    return f"{PREFIX}media:reply:{req}"


def leg(visit_id: str, role: str) -> str:
    """Hash {worker, job, file, n, started}: who holds a participant's leg (TTL)."""
    return f"{PREFIX}media:leg:{{{visit_id}}}:{role}"


def file_seq(visit_id: str, role: str) -> str:
    """Counter numbering a participant's recordings (``recording-<role>-<n>``)."""
    return f"{PREFIX}media:seq:{{{visit_id}}}:{role}"
