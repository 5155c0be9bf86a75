"""The one place that turns the gateway's exceptions into HTTP answers."""
from __future__ import annotations

from aiohttp import web

from .errors import (AuthBusy, BodyTooLarge, Forbidden, GravelError, IdempotencyConflict,
                     InputError, LimitError, StateUnavailable, Unauthenticated,
                     UnsupportedMediaType)

_STATUS = (
    (StateUnavailable, 503),
    (BodyTooLarge, 413),
    (UnsupportedMediaType, 415),
    (IdempotencyConflict, 422),
    (LimitError, 400),
    (InputError, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (AuthBusy, 503),
)


def status_for(exc: GravelError, *, otlp: bool = False) -> int:
    if otlp and isinstance(exc, LimitError):
        return 429  # OTLP/HTTP: retryable, the client may back off
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def error_response(exc: GravelError, *, otlp: bool = False) -> web.Response:
    headers = None
    if isinstance(exc, StateUnavailable):  # clients (and OTLP SDKs) retry after this
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, Unauthenticated):
        headers = {"WWW-Authenticate": exc.challenge}
    elif isinstance(exc, AuthBusy):
        headers = {"Retry-After": "1"}
    # backslashreplace: a message may quote a client's lone surrogate ("\ud800" in OTLP JSON)
    body = (str(exc) + "\n").encode("utf-8", "backslashreplace")
    return web.Response(status=status_for(exc, otlp=otlp), body=body,
                        content_type="text/plain", charset="utf-8", headers=headers)
