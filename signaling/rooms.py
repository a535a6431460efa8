"""Socket.IO room names. Rooms are per namespace; the same names are used in each."""

from __future__ import annotations


def patient(visit_id: str) -> str:
    """The patient's sockets of one visit."""
    return f"patient:{visit_id}"


def staff(clinic: str) -> str:
    """Every staff socket of a clinic (queue updates, chat of all its visits)."""
    return f"staff:{clinic}"


def user(clinic: str, sub: str) -> str:
    """Every socket of one staff member (call signaling reaches the doctor here).
    Keyed by clinic too: ``sub`` is an id in the clinic's own system."""
    return f"user:{clinic}:{sub}"


def call_guest(visit_id: str, guest_id: str) -> str:
    """A link guest's ``/call`` sockets (a clinician guest's are at :func:`user`)."""
    return f"call-guest:{visit_id}:{guest_id}"


def guest_pages(visit_id: str) -> str:
    """The ``/guest`` sockets of a visit's admitted guests (participant pushes)."""
    return f"guests:{visit_id}"


def guest_page(visit_id: str, guest_id: str) -> str:
    """One guest's ``/guest`` sockets (their own state, the visit's end)."""
    return f"guest:{visit_id}:{guest_id}"
