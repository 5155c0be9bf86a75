"""The config keys of SPEC section 6: ``extensions``, ``service::extensions``, and each HTTP
endpoint's ``tls`` and ``auth`` blocks. Shape only (pure): the files they name are read when the
service starts (``security.py``), where an unreadable file is also a config error naming its key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS = ("basicauth", "bearertokenauth")
TLS_VERSIONS = ("1.2", "1.3")


@dataclass(frozen=True)
class TlsConfig:
    cert_file: str
    key_file: str
    client_ca_file: str = ""
    min_version: str = "1.2"
    path: str = field(default="", compare=False)  # the key path, for errors


@dataclass
class BasicAuthConfig:
    name: str
    file: str = ""
    inline: str = ""
    jobs: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BearerTokenConfig:
    name: str
    token: str = ""
    filename: str = ""
    jobs: list[str] | None = None


def check_extensions(c, node, listed) -> dict:
    """``extensions:`` and ``service::extensions``; returns the listed ones by name."""
    if node is not None and not isinstance(node, dict):
        c.fail("extensions", f"must be a mapping (got {node!r})")
        node = {}
    node = node or {}
    configured = {}
    for name, body in node.items():
        path = f"extensions::{name}"
        kind = str(name).partition("/")[0]
        if kind == "basicauth":
            configured[name] = _basicauth(c, body, path, name)
        elif kind == "bearertokenauth":
            configured[name] = _bearertoken(c, body, path, name)
        else:
            c.fail(path, f"unknown extension (expected {' or '.join(k + '[/name]' for k in KINDS)})")
    if listed is None:
        listed = []
    if not isinstance(listed, list):
        c.fail("service::extensions", f"must be a list (got {listed!r})")
        listed = []
    running = {}
    for name in listed:
        if name not in configured:
            if name not in node:
                c.fail("service::extensions", f'references extension "{name}" which is not configured')
            continue
        running[name] = configured[name]
    return running


def _regexes(c, value, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        c.fail(path, f"must be a list of regular expressions (got {value!r})")
        return []
    for regex in value:
        try:
            re.compile(regex)
        except re.error as exc:
            c.fail(path, f'invalid regular expression "{regex}": {exc}')
    return value


def _text(c, value, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        c.fail(path, "must be a string")  # never echo it: it may be a secret
        return ""
    return value


def _basicauth(c, body, path: str, name: str) -> BasicAuthConfig:
    body = c.mapping(body, path, ("htpasswd", "jobs"))
    htpasswd = c.mapping(body.get("htpasswd"), f"{path}::htpasswd", ("file", "inline"))
    file = _text(c, htpasswd.get("file"), f"{path}::htpasswd::file")
    inline = _text(c, htpasswd.get("inline"), f"{path}::htpasswd::inline")
    if not file and not inline:
        c.fail(f"{path}::htpasswd", "needs a file or inline entries")
    jobs_node = body.get("jobs")
    jobs: dict[str, list[str]] = {}
    if jobs_node is not None:
        if not isinstance(jobs_node, dict):
            c.fail(f"{path}::jobs", f"must map a user to a list of job regexes (got {jobs_node!r})")
        else:
            for user, regexes in jobs_node.items():
                jobs[str(user)] = _regexes(c, regexes, f"{path}::jobs::{user}")
    return BasicAuthConfig(name, file, inline, jobs)


def _bearertoken(c, body, path: str, name: str) -> BearerTokenConfig:
    body = c.mapping(body, path, ("token", "filename", "jobs"))
    token = _text(c, body.get("token"), f"{path}::token")
    filename = _text(c, body.get("filename"), f"{path}::filename")
    if bool(token) == bool(filename):
        c.fail(path, "needs exactly one of token or filename")
    jobs = body.get("jobs")
    return BearerTokenConfig(name, token, filename,
                             None if jobs is None else _regexes(c, jobs, f"{path}::jobs"))


def check_tls(c, node, path: str) -> TlsConfig | None:
    if node is None:
        return None
    node = c.mapping(node, path, ("cert_file", "key_file", "client_ca_file", "min_version"))
    cert = _text(c, node.get("cert_file"), f"{path}::cert_file")
    key = _text(c, node.get("key_file"), f"{path}::key_file")
    for value, key_name in ((cert, "cert_file"), (key, "key_file")):
        if not value:
            c.fail(f"{path}::{key_name}", "is required with tls")
    version = str(node.get("min_version", "1.2"))
    if version not in TLS_VERSIONS:
        c.fail(f"{path}::min_version", f'must be "1.2" or "1.3" (got "{version}")')
    return TlsConfig(cert, key, _text(c, node.get("client_ca_file"), f"{path}::client_ca_file"),
                     version, path)


def check_auth(c, node, path: str, extensions: dict) -> str | None:
    if node is None:
        return None
    node = c.mapping(node, path, ("authenticator",))
    name = node.get("authenticator")
    if not isinstance(name, str) or not name:
        c.fail(f"{path}::authenticator", f"must name an extension (got {name!r})")
        return None
    if name.partition("/")[0] not in KINDS:
        c.fail(f"{path}::authenticator", f'unknown authenticator "{name}" '
               f"(expected {' or '.join(k + '/<name>' for k in KINDS)})")
        return None
    if name not in extensions:
        c.fail(f"{path}::authenticator",
               f'"{name}" is not among the running extensions (configure it under extensions '
               "and list it in service::extensions)")
        return None
    return name


def check_shared_tls(c, components) -> None:
    """Components on one endpoint share one server: their tls blocks must agree or be absent.

    ``components`` is ``[(endpoint, tls or None)]`` in config order; fills nothing, only checks.
    """
    first: dict = {}
    for endpoint, tls in components:
        if tls is None:
            continue
        seen = first.setdefault(endpoint, tls)
        if seen != tls:
            c.fail(tls.path, f"must be the same as {seen.path} or absent "
                   f"(both are served on {endpoint})")
