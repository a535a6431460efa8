"""A handful of flat exception classes; each maps to one error code on the wire."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration cannot start (missing secret, bad number...)."""


class TelemedError(Exception):
    """An error the client is told about, as ``{"code": ..., "message": ...}``."""

    code = "error"
    http_status = 500

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class BadRequest(TelemedError):
    """The payload does not match the event's schema."""

    code = "bad_request"
    http_status = 400


class Unauthorized(TelemedError):
    """No token, or a token that is expired, tampered with or revoked."""

    code = "unauthorized"
    http_status = 401


class Forbidden(TelemedError):
    """A valid token whose role, clinic or visit does not allow the action."""

    code = "forbidden"
    http_status = 403


class NotFound(TelemedError):
    code = "not_found"
    http_status = 404


class Conflict(TelemedError):
    """The action is illegal in the visit's current state (e.g. admit an ended visit)."""

    code = "conflict"
    http_status = 409


class TooEarly(TelemedError):
    """A scheduled visit's check-in is not open yet (details: ``scheduled_at``, ``check_in_from``)."""

    code = "too_early"
    http_status = 409


class RateLimited(TelemedError):
    code = "rate_limited"
    http_status = 429


class Unavailable(TelemedError):
    """Redis (or another dependency) cannot be reached right now; retry."""

    code = "unavailable"
    http_status = 503
