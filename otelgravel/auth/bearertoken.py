"""``bearertokenauth``: ``Authorization: Bearer <token>`` against a token or a file of tokens.

Tokens are compared as SHA-256 digests with ``hmac.compare_digest``, against every configured token
(no early exit), so neither the time nor the length of a token leaks.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time

from . import Authenticator, Failures, Principal

log = logging.getLogger("otelgravel.auth")

CHALLENGE = 'Bearer realm="otelgravel"'


def parse_tokens(text: str) -> list[str]:
    """One token per line; blank lines skipped. ValueError when there is none."""
    tokens = [line.strip() for line in text.splitlines() if line.strip()]
    if not tokens:
        raise ValueError("holds no token")
    return tokens


class BearerTokenAuth(Authenticator):
    challenge = CHALLENGE

    def __init__(self, name: str, tokens: list[str], jobs: re.Pattern | None, load=None):
        self.name = name
        self._load = load
        self._principal = Principal(name, jobs)
        self.failures = Failures(name, log, time.monotonic)
        self._apply(tokens)

    def _apply(self, tokens: list[str]) -> None:
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens]

    async def authenticate(self, request) -> Principal | None:
        header = request.headers.get("Authorization")
        if header is None:
            self.failures.count("no credentials", request.remote)
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.failures.count("not a bearer token", request.remote)
            return None
        digest = hashlib.sha256(token.strip().encode()).digest()
        match = False
        for known in self._digests:
            match |= hmac.compare_digest(known, digest)
        if match:
            return self._principal
        self.failures.count("wrong token", request.remote)
        return None
