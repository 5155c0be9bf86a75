"""The running config as the status API shows it: every secret replaced by ``<secret>``.

A value is a secret when its key says so (password, token, secret, key_file, htpasswd ``inline``,
...), when it is any setting of an authenticator under ``extensions`` other than the few that
name files or jobs, or when it is the password of a URL (``redis://user:pass@host``). Empty
values stay as they are (they say "not set"). Pure: a new document, the input untouched.
"""
from __future__ import annotations

import re

SECRET = "<secret>"
_SECRET_KEYS = frozenset({"password", "passwd", "token", "tokens", "secret", "key_file", "inline",
                          "api_key", "bearer_token", "client_secret", "credentials", "htpasswd"})
_SECRET_SUFFIXES = ("_password", "_token", "_secret", "_key")
# Under ``extensions``: what an authenticator may show (paths and authorization rules).
_EXTENSION_PLAIN = frozenset({"file", "filename", "jobs", "realm"})
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^@/\s]*@", re.I)


def is_secret_key(key) -> bool:
    key = str(key).lower()
    return key in _SECRET_KEYS or key.endswith(_SECRET_SUFFIXES)


def redact(document: dict) -> dict:
    return {key: _redact(value, key == "extensions", is_secret_key(key))
            for key, value in document.items()}


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _redact(value, in_extensions: bool, secret: bool):
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            if in_extensions and str(key) in _EXTENSION_PLAIN and not isinstance(key, bool):
                out[key] = child
            else:
                out[key] = _redact(child, in_extensions, secret or is_secret_key(key))
        return out
    if isinstance(value, list):
        return [_redact(item, in_extensions, secret) for item in value]
    if (secret or in_extensions) and not _empty(value):
        return SECRET
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{SECRET}@", value)
    return value
