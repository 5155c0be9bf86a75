"""The security edge, assembled from the config once: authenticators by name, the guard of each
component's routes, the TLS context of each endpoint; ``reload`` re-reads their files (SIGHUP).

Files are read here, at start, so that a missing file or a hash that is not bcrypt stops the
gateway with a config error naming the key, before it listens.
"""
from __future__ import annotations

import ssl

from ..errors import ConfigError
from . import Authenticator, jobs_pattern
from .basicauth import BasicAuth, parse_htpasswd
from .bearertoken import BearerTokenAuth, parse_tokens
from .config import BasicAuthConfig, BearerTokenConfig
from .guard import guard_routes
from .tls import ReloadableTls


def _read(path: str, key: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{key}: cannot read {path}: {reason}") from exc


def _htpasswd_loader(ext: BasicAuthConfig):
    key = f"extensions::{ext.name}::htpasswd"

    def load() -> dict[str, bytes]:
        users: dict[str, bytes] = {}
        if ext.file:
            text = _read(ext.file, f"{key}::file")
            try:
                users = parse_htpasswd(text)
            except ValueError as exc:
                raise ValueError(f"{key}::file: {ext.file} {exc}") from exc
        try:
            inline = parse_htpasswd(ext.inline)
        except ValueError as exc:
            raise ValueError(f"{key}::inline: {exc}") from exc
        both = sorted(set(users) & set(inline))
        if both:
            raise ValueError(f"{key}::inline: user {both[0]!r} is also in the file")
        users.update(inline)
        return users

    return load


def _tokens_loader(ext: BearerTokenConfig):
    def load() -> list[str]:
        if ext.token:
            return [ext.token]
        key = f"extensions::{ext.name}::filename"
        text = _read(ext.filename, key)
        try:
            return parse_tokens(text)
        except ValueError as exc:
            raise ValueError(f"{key}: {ext.filename} {exc}") from exc

    return load


def build_authenticator(ext) -> Authenticator:
    """Raises ValueError naming the key."""
    if isinstance(ext, BasicAuthConfig):
        load = _htpasswd_loader(ext)
        users = load()
        for user in ext.jobs:
            if user not in users:  # a typo here would leave the real user unrestricted
                raise ValueError(f"extensions::{ext.name}::jobs::{user}: no such user in the "
                                 "htpasswd entries")
        return BasicAuth(ext.name, users, {u: jobs_pattern(r) for u, r in ext.jobs.items()}, load)
    load = _tokens_loader(ext)
    return BearerTokenAuth(ext.name, load(), jobs_pattern(ext.jobs),
                           load if ext.filename else None)


class Security:
    def __init__(self, config):
        problems: list[str] = []
        self.authenticators: dict[str, Authenticator] = {}
        for name, ext in config.extensions.items():
            try:
                self.authenticators[name] = build_authenticator(ext)
            except ValueError as exc:
                problems.append(str(exc))
        scrape = config.prometheus.auth
        self._auth = {"prometheus": scrape, "status": scrape,
                      "pushgateway": config.pushgateway.auth if config.pushgateway else None,
                      "otlp": config.otlp.auth if config.otlp else None}
        self._tls: dict = {}  # endpoint -> ReloadableTls
        for component in (config.pushgateway, config.prometheus, config.otlp):
            if component is None or component.tls is None or component.endpoint in self._tls:
                continue
            try:
                self._tls[component.endpoint] = ReloadableTls(component.tls)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError(problems)

    def guard(self, component: str, routes: list, stats=None) -> list:
        """The component's routes behind its authenticator; the status page and API ask for the
        exporter's, like ``/metrics``; components without ``auth`` are left open."""
        auth = self._auth.get(component)
        return guard_routes(component, routes, self.authenticators[auth] if auth else None, stats)

    def ssl_context(self, endpoint) -> ssl.SSLContext | None:
        tls = self._tls.get(endpoint)
        return tls.front if tls is not None else None

    def reload(self) -> None:
        for authenticator in self.authenticators.values():
            authenticator.reload()
        for tls in self._tls.values():
            tls.reload()
