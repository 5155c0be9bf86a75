"""``basicauth``: HTTP Basic against htpasswd entries (bcrypt only), checked off the event loop.

bcrypt costs tens of milliseconds a check on purpose, so:
- checks run in a small thread pool (bcrypt releases the GIL), never on the event loop;
- a verified credential is remembered (bounded LRU) under an HMAC of user, password *and the stored
  hash* with a per-process key: the plain password is never kept, and a password changed in the
  file (new hash) misses the memory at once, also for connections opened before the reload;
- identical checks in flight share one bcrypt run (a cold start of many invocations);
- at most ``MAX_PENDING`` different checks wait: beyond that a request is shed with 503 and
  ``Retry-After`` (not 401: its password may be right). So a flood of wrong passwords costs bounded
  CPU, and pushes whose credentials were verified before never wait for it;
- an unknown user costs a bcrypt check too (against a dummy hash of the same cost), so response time
  does not tell which users exist.
Passwords are compared on their first 72 bytes, as bcrypt (and ``htpasswd -B``) always did.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import os
import re
import secrets
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from ..errors import AuthBusy
from . import Authenticator, Failures, Principal

log = logging.getLogger("otelgravel.auth")

BCRYPT_HASH = re.compile(rb"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
MAX_PENDING = 32          # different bcrypt checks waiting or running, over all basicauth extensions
REMEMBERED = 10_000       # verified credentials kept (LRU)
CHALLENGE = 'Basic realm="otelgravel"'


def parse_htpasswd(text: str) -> dict[str, bytes]:
    """``user:hash`` lines, ``#`` comments and blank lines; every hash must be bcrypt.

    Raises ValueError naming the line (never its hash: a hash is half a secret).
    """
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise ValueError(f"line {number}: expected user:bcrypt-hash")
        hashed_bytes = hashed.strip().encode()
        if BCRYPT_HASH.fullmatch(hashed_bytes) is None:
            raise ValueError(f"line {number}: the hash of user {user!r} is not bcrypt "
                             "($2a$, $2b$ or $2y$; make one with htpasswd -nbB)")
        if user in users:
            raise ValueError(f"line {number}: user {user!r} appears twice")
        users[user] = hashed_bytes
    return users


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:72], hashed)
    except ValueError:  # a malformed stored hash was refused at load; be safe anyway
        return False


class BcryptChecker:
    """The bounded pool of bcrypt checks, shared by every basicauth extension of the process."""

    def __init__(self, workers: int | None = None, max_pending: int = MAX_PENDING):
        # Half the cores: on a loaded machine the event loop keeps a core for the pushes whose
        # credentials are already verified.
        self._workers = workers or max(1, (os.cpu_count() or 2) // 2)
        self._executor: ThreadPoolExecutor | None = None
        self._pending: dict[bytes, asyncio.Future] = {}
        self.max_pending = max_pending
        self.shed = 0

    async def check(self, key: bytes, password: bytes, hashed: bytes) -> bool | None:
        """True/False, or None when too many checks wait already (the caller sheds the request)."""
        future = self._pending.get(key)
        if future is None:
            if len(self._pending) >= self.max_pending:
                self.shed += 1
                return None
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="bcrypt")
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, _checkpw, password, hashed)
            self._pending[key] = future
            future.add_done_callback(lambda _f, key=key: self._pending.pop(key, None))
        # shielded: a client that goes away must not cancel a check that others share
        return await asyncio.shield(future)


CHECKER = BcryptChecker()


class BasicAuth(Authenticator):
    challenge = CHALLENGE

    def __init__(self, name: str, users: dict[str, bytes], jobs: dict[str, re.Pattern],
                 load=None, checker: BcryptChecker = CHECKER):
        self.name = name
        self._jobs = jobs
        self._load = load  # () -> users, for SIGHUP; raises OSError/ValueError
        self._checker = checker
        self._key = secrets.token_bytes(32)
        self._remembered: OrderedDict[bytes, None] = OrderedDict()
        self.failures = Failures(name, log, time.monotonic)
        self._apply(users)

    def _apply(self, users: dict[str, bytes]) -> None:
        self._users = users
        self._principals = {user: Principal(user, self._jobs.get(user)) for user in users}
        cost = int(BCRYPT_HASH.fullmatch(next(iter(users.values()))).group(1)) if users else 4
        self._dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(max(cost, 4)))
        # Keyed by the stored hash already (a changed password misses); clearing frees the rest.
        self._remembered.clear()

    async def authenticate(self, request) -> Principal | None:
        header = request.headers.get("Authorization")
        remote = request.remote
        if header is None:
            self.failures.count("no credentials", remote)
            return None
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            self.failures.count("not basic authentication", remote)
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            self.failures.count("malformed basic credentials", remote)
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            self.failures.count("malformed basic credentials", remote)
            return None
        hashed = self._users.get(user)
        known = hashed is not None
        password_bytes = password.encode()
        key = hmac.digest(self._key, b"\0".join((user.encode(), password_bytes, hashed or b"")),
                          "sha256")  # the one-shot C path
        if known and key in self._remembered:
            self._remembered.move_to_end(key)
            return self._principals[user]
        users = self._users
        ok = await self._checker.check(key, password_bytes, hashed if known else self._dummy)
        if ok is None:
            raise AuthBusy("503: too many credential checks waiting, retry shortly")
        if ok and known and self._users is users:  # not reloaded meanwhile
            self._remembered[key] = None
            if len(self._remembered) > REMEMBERED:
                self._remembered.popitem(last=False)
            return self._principals[user]
        if ok and known:  # reloaded while checking: the check was against the old hash
            return await self.authenticate(request)
        self.failures.count("wrong password" if known else "unknown user", remote,
                            user if known else None)
        return None
