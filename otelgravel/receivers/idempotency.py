"""The ``Idempotency-Key`` request header (draft-ietf-httpapi-idempotency-key-header), read at the edge.

A client that retries a push (a connection that broke before the answer, a 503, a serverless
platform's own retry) sends the same key with every attempt; the state applies the first record
with that key and answers the others as the first was (``state/keys.py``, decided in log order).

The key is 1 to 255 visible ASCII characters (0x21-0x7E), sent bare (``Idempotency-Key: abc``,
as Stripe's clients do) or as the draft's Structured Field string (``Idempotency-Key: "abc"``;
both name the same key). Anything else, or the header twice, is a 400 naming the header. With
authentication on, keys are scoped by the principal: one user's key never answers, or blocks,
another's push.

The fingerprint that tells a retry from a reused key is a hash of the method, the path, the
Content-Type and the decoded body (after Content-Encoding: a retry may compress differently).
"""
from __future__ import annotations

from hashlib import blake2b

from aiohttp import web

from ..auth.guard import PRINCIPAL
from ..errors import InputError

HEADER = "Idempotency-Key"
REPLAYED = {"Idempotent-Replayed": "true"}  # on the answer to a request whose key was applied
MAX_LENGTH = 255
_VISIBLE = frozenset(chr(c) for c in range(0x21, 0x7F))


def request_key(request: web.BaseRequest) -> str | None:
    """The request's key, scoped by its principal; None without the header."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if len(request.headers.getall(HEADER)) > 1:
        raise InputError(f"400: {HEADER} header sent more than once")
    key = _unquote(value) if value.startswith('"') else value
    if not key or len(key) > MAX_LENGTH or not _VISIBLE.issuperset(key):
        raise InputError(f"400: {HEADER} header must be 1 to {MAX_LENGTH} visible ASCII "
                         f"characters (got {value[:80]!r})")
    principal = request.get(PRINCIPAL)
    return key if principal is None else f"{principal.name}\x00{key}"


def _unquote(value: str) -> str:
    """The content of a Structured Field string (RFC 8941 3.3.3): ``"a\\"b"`` -> ``a"b``."""
    out = []
    chars = iter(value[1:])
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "")
            if ch not in ('"', "\\"):
                break
        elif ch == '"':
            if next(chars, None) is None:
                return "".join(out)
            break
        out.append(ch)
    raise InputError(f"400: {HEADER} header is not a well-formed quoted string (got {value[:80]!r})")


def fingerprint(request: web.BaseRequest, body: bytes) -> bytes:
    h = blake2b(digest_size=16)
    h.update(request.method.encode())
    h.update(b"\n")
    h.update(request.raw_path.split("?", 1)[0].encode())
    h.update(b"\n")
    h.update(request.headers.get("Content-Type", "").encode())
    h.update(b"\n")
    h.update(body)
    return h.digest()
