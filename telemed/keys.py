"""Every Redis key and TTL the project uses, in one place.

All keys start with ``tm:`` so a shared Redis can be inspected (and flushed in
tests) by prefix. Keys of one visit carry the visit id in braces so a Redis
Cluster would keep them in one slot.
"""

from __future__ import annotations

PREFIX = "tm:"

# -- lifetimes -----------------------------------------------------------------

#: How long a visit (its hash and chat stream) is kept after it ended. The chart
#: on disk is the record; Redis keeps the live copy long enough for a late
#: export, a nurse scrolling back, or a restarted worker to finish the chart.
ENDED_VISIT_TTL = 7 * 24 * 3600

#: A visit that never started (link never used) expires with its link plus a day.
UNUSED_VISIT_SLACK = 24 * 3600

#: Visit lengths kept for the rolling mean of the wait estimate.
DURATION_SAMPLES = 50

#: Window of the per-address walk-in rate limit.
WALK_IN_WINDOW = 60


# -- keys ----------------------------------------------------------------------


def visit(visit_id: str) -> str:
    """Hash: clinic, state, reason, consent, acuity, triage note, times, doctor."""
    return f"{PREFIX}visit:{{{visit_id}}}"


def visit_history(visit_id: str) -> str:
    """List of JSON entries {at, from, to, action, by}: the visit's state history."""
    return f"{PREFIX}visithist:{{{visit_id}}}"


def chat(visit_id: str) -> str:
    """Stream: the visit's chat messages."""
    return f"{PREFIX}chat:{{{visit_id}}}"


def chat_ids(visit_id: str) -> str:
    """Hash: client message id -> stream id, so a retried send is stored once."""
    return f"{PREFIX}chatids:{{{visit_id}}}"


def call_quality(visit_id: str) -> str:
    """Hash: what the pages reported of the visit's calls (:mod:`telemed.call_quality`):
    times to first media, ICE failures, relay or direct, audio-only fallbacks; per
    side and call, no health data. Expires :data:`ENDED_VISIT_TTL` after its last
    report, so it outlives the visit's end long enough for the chart to read it."""
    return f"{PREFIX}callq:{{{visit_id}}}"


def guests(visit_id: str) -> str:
    """Sorted set: the visit's guest ids by invitation time (:mod:`telemed.guests`)."""
    return f"{PREFIX}guests:{{{visit_id}}}"


def guest(visit_id: str, guest_id: str) -> str:
    """Hash: one guest of a visit (kind, name, language, state, consent, times).
    The guests' set name and the id, so the invite script finds each guest of the
    set (same hash slot as the visit)."""
    return f"{guests(visit_id)}:{guest_id}"


def queue(clinic: str) -> str:
    """Sorted set of the clinic's queued visits; score = acuity * 1e15 + place (see _scripts.CHECK_IN)."""
    return f"{PREFIX}queue:{clinic}"


def queue_seq(clinic: str) -> str:
    """The last arrival's place (FIFO within an acuity level, see _scripts.CHECK_IN)."""
    return f"{PREFIX}queueseq:{clinic}"


def queue_version(clinic: str) -> str:
    """Counter bumped by every change of the queue; clients drop older updates."""
    return f"{PREFIX}queuever:{clinic}"


def expected(clinic: str) -> str:
    """Sorted set visit -> appointment (epoch s, 0 = none): the clinic's visits created
    and not checked in yet. Kept by create, check-in and end; no TTL: an entry whose
    unused visit expired is dropped when the list is read."""
    return f"{PREFIX}expected:{clinic}"


def no_shows(clinic: str) -> str:
    """Sorted set visit -> when (epoch s) it was marked a no-show, for the staff's
    "missed" list; entries older than :data:`NO_SHOWS_KEPT` are trimmed at each
    addition (so no TTL: a clinic without no-shows keeps no key)."""
    return f"{PREFIX}noshows:{clinic}"


#: How long staff see a no-show in the expected list's "missed" part.
NO_SHOWS_KEPT = 12 * 3600


#: Sorted set visit -> appointment (epoch s) of every scheduled visit not checked in
#: yet, for the no-show sweep; kept with :func:`expected`, dropped by the sweep
#: once the visit is gone. No TTL for the same reason.
APPOINTMENTS_DUE = f"{PREFIX}appointments:due"


def durations(clinic: str) -> str:
    """List of the last visit lengths in seconds (rolling mean for the wait estimate)."""
    return f"{PREFIX}durations:{clinic}"


def in_visit(clinic: str) -> str:
    """Set of the clinic's visits in progress (staff see them beside the queue)."""
    return f"{PREFIX}invisit:{clinic}"


def doctor_names(clinic: str) -> str:
    """Hash doctor sub -> display name, for the nurses' routing choices."""
    return f"{PREFIX}doctornames:{clinic}"


def doctors_on_duty(clinic: str) -> str:
    """Sorted set doctor sub -> last seen (ms); on duty if seen within ``TELEMED_ON_DUTY``
    (:mod:`telemed.duty`). Members older than a day are trimmed at each refresh."""
    return f"{PREFIX}doctors:{clinic}"


def doctor_visits(clinic: str, sub: str) -> str:
    """Set of the visits a doctor of a clinic is in (restored to a reconnecting doctor).
    Keyed by clinic too: ``sub`` is an id in the clinic's own system."""
    return f"{PREFIX}doctorvisits:{clinic}:{sub}"


def roster(clinic: str) -> str:
    """Hash staff sub -> JSON {name, role}: the clinic's nurses, doctors and admins
    as they last signed in. No TTL: it is the clinic's staff list (one field per
    person, overwritten at each sign-in), read to show names instead of ids."""
    return f"{PREFIX}roster:{clinic}"


def staff_seen(clinic: str) -> str:
    """Sorted set staff sub -> last time (ms) a socket of theirs was seen. No TTL:
    one member per roster entry, so "last seen" survives a quiet night."""
    return f"{PREFIX}staffseen:{clinic}"


def triage_claims(clinic: str) -> str:
    """Hash ``<visit>|<nurse sub>`` -> when (ms) that nurse opened the patient.
    No TTL: a field is deleted on close, on the nurse's disconnect, or when read
    while its nurse is off duty (a node that died cannot leave one behind)."""
    return f"{PREFIX}claims:{clinic}"


#: Hash visit -> clinic: visits routed to a named doctor, watched by the
#: off-duty sweep. A field is removed once the visit is no longer routed
#: (returned, admitted, ended, re-routed to any doctor): no TTL needed.
ROUTED = f"{PREFIX}routed"

#: Sorted set visit -> when (ms) the last socket of its patient closed; removed
#: when one connects again. With :data:`PATIENTS_SEEN` it tells staff whether a
#: patient is online. No TTL: entries older than the grace period (the visit has
#: been ended as absent by then) are trimmed by every presence refresh.
PATIENTS_OFFLINE = f"{PREFIX}patients:offline"


def clinic_settings(clinic: str) -> str:
    """Hash of run-time clinic settings (walk_in = 1/0, ...: telemed.clinic_config); no TTL:
    an admin's choice lasts until changed."""
    return f"{PREFIX}clinic:{clinic}"


def staff_sessions(clinic: str) -> str:
    """Hash socket id -> JSON {jti, sub, name, role, since, node, exp, seen}: the clinic's
    live staff sockets (the admin console's "active sessions"). Each node rewrites its
    own entries every presence interval; an entry not refreshed for
    :data:`STAFF_SESSION_STALE_INTERVALS` intervals (its node died) is dropped when read."""
    return f"{PREFIX}staffsessions:{clinic}"


#: Presence intervals after which a staff session nobody refreshed counts as gone.
STAFF_SESSION_STALE_INTERVALS = 3

#: The whole staff-session hash expires this long after the last refresh by any node,
#: so a clinic whose nodes all stopped leaves nothing behind.
STAFF_SESSIONS_TTL = 3600


#: Sorted set visit -> last time (ms) a socket of its patient was seen.
PATIENTS_SEEN = f"{PREFIX}patients:seen"

#: Sorted set visit -> when a node may take it: ended visits whose chart is
#: not written yet. The end script adds a visit; the node that writes the
#: chart claims it (score = now + lease) and removes it when done, so a node
#: that dies half-way leaves it for another.
CHARTS_PENDING = f"{PREFIX}charts:pending"

#: Held (SET NX EX) by the node running the retention purge.
CHARTS_PURGE_LOCK = f"{PREFIX}charts:purge"


# The chart browser's index (telemed/chart/index.py). No TTL: an entry lives
# as long as its chart folder (removed with it by retention), and the folder is
# the record: a lost index is rebuilt from the folders. The clinic in braces:
# one script reads two of them (a Redis Cluster keeps them in one slot).


def chart_summaries(clinic: str) -> str:
    """Hash visit -> JSON summary of the clinic's written charts (names, state, times)."""
    return f"{PREFIX}chartidx:{{{clinic}}}"


def chart_times(clinic: str) -> str:
    """Sorted set visit -> when it ended (else was created), seconds: the list's order and date range."""
    return f"{PREFIX}charttimes:{{{clinic}}}"


def chart_search(clinic: str) -> str:
    """Hash visit -> "state|doctor sub|patient name, lower case": filtered without decoding summaries."""
    return f"{PREFIX}chartsearch:{{{clinic}}}"


def chart_doctors(clinic: str) -> str:
    """Hash doctor sub -> name of every doctor in the clinic's charts (the list's doctor filter)."""
    return f"{PREFIX}chartdoctors:{{{clinic}}}"


def revoked(jti: str) -> str:
    """Marker of a revoked token id; expires with the token."""
    return f"{PREFIX}revoked:{jti}"


def connections(jti: str, namespace: str) -> str:
    """Sorted set sid -> last seen (ms): the live sockets of one token in one namespace."""
    return f"{PREFIX}conns:{jti}:{namespace}"


def call_sockets(room: str) -> str:
    """Hash socket id -> token id: one party's ``/call`` sockets, by the party's
    ``/call`` room (a patient's, a link guest's, a staff member's). A socket counts
    while its token's connection entry is fresh (:func:`connections`, refreshed by
    its node), so a dead node's sockets stop counting; expires with the tokens."""
    return f"{PREFIX}callsocks:{room}"


def call_left(visit_id: str) -> str:
    """Set of the parties of a visit who left its call but not the visit (``leave_call``)."""
    return f"{PREFIX}callleft:{{{visit_id}}}"


#: A visit's "left the call" set outlives any visit in progress.
CALL_LEFT_TTL = 24 * 3600


def clinician_guest_of(clinic: str, sub: str) -> str:
    """Set of visit ids a staff member was invited into as a clinician guest: a hint,
    each entry checked against the visit's guests when read; expires with the records."""
    return f"{PREFIX}guestof:{clinic}:{sub}"


def auth_failures(address: str) -> str:
    """Counter of refused tokens from one address in the current window."""
    return f"{PREFIX}authfail:{address}"


#: Window of the failed-token limit per address.
AUTH_FAILURE_WINDOW = 60


def walk_in_rate(address: str) -> str:
    """Counter of walk-in check-ins from one address in the current window."""
    return f"{PREFIX}walkin:{address}"


#: Channel prefix python-socketio's AsyncRedisManager publishes on.
SOCKETIO_CHANNEL = f"{PREFIX}socketio"

#: Counter incremented before every replicas' confirmation (``WAIT``): a write on
#: the confirming connection that comes after everything written before it
#: (telemed/replication.py). Never read; never expires (one small integer).
REPLICATION_BARRIER = f"{PREFIX}replication:barrier"
