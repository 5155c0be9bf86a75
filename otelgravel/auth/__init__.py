"""Who may push, delete and scrape: Collector-style authenticator extensions at the HTTP edge.

    Authenticator.authenticate(request) -> Principal | None     (basicauth.py, bearertoken.py)
    Principal.may_write(job) -> bool                              (the per-user ``jobs`` regexes)

``guard.py`` puts an endpoint's authenticator in front of its routes (the core never sees a
credential); ``tls.py`` builds the TLS contexts; ``security.py`` assembles both from the config and
reloads the files on SIGHUP; ``config.py`` validates the config keys of SPEC section 6.
"""
from __future__ import annotations

import abc
import logging
import re

log = logging.getLogger("otelgravel.auth")


class Principal:
    """An authenticated caller: a user name (or the token authenticator's name) and its jobs.

    ``jobs`` is one compiled full-match pattern, or None for "any job" (which also allows the
    admin wipe).
    """

    __slots__ = ("name", "jobs")

    def __init__(self, name: str, jobs: re.Pattern | None = None):
        self.name = name
        self.jobs = jobs

    @property
    def unrestricted(self) -> bool:
        return self.jobs is None

    def may_write(self, job: str) -> bool:
        return self.jobs is None or self.jobs.fullmatch(job) is not None

    def __repr__(self) -> str:
        return f"Principal({self.name!r})"


def jobs_pattern(regexes: list[str] | None) -> re.Pattern | None:
    """``["checkout", "checkout-.*"]`` -> one pattern that full-matches any of them."""
    if regexes is None:
        return None
    return re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else re.compile(r"(?!)")


class Authenticator(abc.ABC):
    """One extension (``basicauth/functions``): checks a request's credentials.

    ``authenticate`` returns the Principal, or None for missing or wrong credentials (the guard
    answers 401 with ``challenge``); it may raise ``AuthBusy`` when it cannot check now.
    ``reload`` re-reads the extension's files (SIGHUP); a file that fails to load keeps the
    previous credentials and the failure is logged.
    """

    name = ""
    challenge = ""
    _load = None  # () -> the credentials, re-read from their files; raises OSError/ValueError

    @abc.abstractmethod
    async def authenticate(self, request) -> Principal | None:
        ...

    @abc.abstractmethod
    def _apply(self, credentials) -> None:
        """Take freshly loaded credentials (at start and on every successful reload)."""

    def reload(self) -> None:
        if self._load is None:
            return
        try:
            credentials = self._load()
        except (OSError, ValueError) as exc:
            log.error("credentials not reloaded, keeping the previous ones",
                      extra={"fields": {"authenticator": self.name, "error": exc}})
            return
        self._apply(credentials)
        log.info("credentials reloaded", extra={"fields": {"authenticator": self.name,
                                                           "entries": len(credentials)}})


class Failures:
    """Counts refused credentials and logs them without secrets, at most one line a second.

    A flood of wrong passwords must not also flood the log: the line says how many failures were
    not logged since the previous one.
    """

    def __init__(self, authenticator: str, log, clock):
        self.authenticator = authenticator
        self.total = 0
        self._log = log
        self._clock = clock
        self._last = float("-inf")
        self._unlogged = 0

    def count(self, reason: str, remote: str | None, user: str | None = None) -> None:
        self.total += 1
        now = self._clock()
        if now - self._last < 1.0:
            self._unlogged += 1
            return
        fields = {"authenticator": self.authenticator, "reason": reason, "remote": remote or ""}
        if user is not None:
            fields["user"] = user
        fields["failures_total"] = self.total
        if self._unlogged:
            fields["not_logged_since_last"] = self._unlogged
        self._last, self._unlogged = now, 0
        self._log.warning("authentication failed", extra={"fields": fields})
