"""Every error the gateway raises on purpose, so that one place can map them to HTTP.

    GravelError
     ├── InputError            the client sent something we refuse (HTTP 400)
     │    ├── ParseError       a body that does not parse; names the line
     │    ├── ClearModeError   a clear_mode value that is not a mode
     │    ├── GroupingKeyError a bad /metrics/job/... path
     │    ├── DecodeError      a body that does not decompress / decode
     │    └── ConflictError    a push that contradicts the store (type, ownership)
     ├── BodyTooLarge          (HTTP 413)
     ├── UnsupportedMediaType  (HTTP 415)
     ├── LimitError            the store is full (HTTP 400 for text, 429 for OTLP)
     ├── StateUnavailable      the state cannot take a record now (HTTP 503, Retry-After)
     ├── IdempotencyConflict   an Idempotency-Key already used for another request (HTTP 422)
     ├── AuthError             who is asking, and what they may do
     │    ├── Unauthenticated  no credentials or wrong ones (HTTP 401 with WWW-Authenticate)
     │    ├── Forbidden        right credentials, a job the user may not write (HTTP 403)
     │    └── AuthBusy         too many credential checks waiting (HTTP 503 with Retry-After)
     └── ConfigError           invalid configuration; names the key path
"""
from __future__ import annotations


class GravelError(Exception):
    pass


class InputError(GravelError):
    pass


class ParseError(InputError):
    """A body that does not parse. ``line`` is 1-based, or None when no line applies."""

    def __init__(self, reason: str, line: int | None = None):
        self.reason = reason
        self.line = line
        super().__init__(f"line {line}: {reason}" if line is not None else reason)


class ClearModeError(InputError):
    pass


class GroupingKeyError(InputError):
    pass


class DecodeError(InputError):
    pass


class ConflictError(InputError):
    pass


class BodyTooLarge(GravelError):
    pass


class UnsupportedMediaType(GravelError):
    pass


class LimitError(GravelError):
    pass


class AuthError(GravelError):
    pass


class Unauthenticated(AuthError):
    """``challenge`` is the ``WWW-Authenticate`` value, e.g. ``Basic realm="otelgravel"``."""

    def __init__(self, challenge: str, message: str = "401: credentials required"):
        self.challenge = challenge
        super().__init__(message)


class Forbidden(AuthError):
    pass


class AuthBusy(AuthError):
    pass


class StateUnavailable(GravelError):
    """The backend could not make a record durable (disk error, Redis down); nothing applied."""

    retry_after = 1


class IdempotencyConflict(GravelError):
    """The request's Idempotency-Key was applied before with another fingerprint (the IETF
    draft's 422); nothing of this request was applied."""


class ConfigError(GravelError):
    """One or more configuration problems, each ``key::path: message``."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))
