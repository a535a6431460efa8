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
