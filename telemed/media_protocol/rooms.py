"""Socket.IO rooms and the namespace of the media events.

The node puts sockets in these rooms; the workers emit to them through
python-socketio's Redis emitter, so a worker needs no sockets of its own.
"""

from __future__ import annotations

#: Namespace of the media events (``leg_answer``, ``recording``, ``caption``, ``captions``).
NAMESPACE = "/media"


def room_leg(job_id: str) -> str:
    """The requesting browser's socket, joined by the node when it queued the job."""
    return f"leg:{job_id}"


def room_media(visit_id: str) -> str:
    """Both parties' ``/media`` sockets of a visit: recording started / stopped."""
    return f"media:{visit_id}"


def room_captions(visit_id: str) -> str:
    """The ``/media`` sockets that get a visit's live captions: the doctor's, and
    the patient's once they turned captions on (``captions`` event). When the
    clinic shows captions to patients, the worker sends them to :func:`room_media`."""
    return f"media:{visit_id}:captions"
