"""Server TLS contexts from a ``tls`` block, swappable on SIGHUP without dropping connections.

The listening socket keeps the context it was created with (the "front"); its SNI callback, which
OpenSSL calls for every ClientHello (with or without a server name), moves each *new* connection
onto the latest context. Connections already open keep the certificate they were handshaken with.
"""
from __future__ import annotations

import logging
import ssl

from .config import TlsConfig

log = logging.getLogger("otelgravel.tls")

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def build_context(tls: TlsConfig) -> ssl.SSLContext:
    """Raises ValueError naming the key path of the file that does not load."""
    for key, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file),
                      ("client_ca_file", tls.client_ca_file)):
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ValueError(f"{tls.path}::{key}: cannot read {path}: {exc.strerror}") from exc
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[tls.min_version]
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as exc:
        raise ValueError(f"{tls.path}::cert_file: {tls.cert_file} and {tls.key_file} are not a "
                         f"PEM certificate and its private key ({exc.reason or exc})") from exc
    if tls.client_ca_file:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except ssl.SSLError as exc:
            raise ValueError(f"{tls.path}::client_ca_file: {tls.client_ca_file} holds no PEM "
                             f"CA certificate ({exc.reason or exc})") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class ReloadableTls:
    def __init__(self, tls: TlsConfig):
        self.config = tls
        self.front = build_context(tls)
        self.current = self.front
        self.front.sni_callback = self._select

    def _select(self, connection, server_name, front) -> None:
        current = self.current
        if current is not front:
            connection.context = current

    def reload(self) -> None:
        try:
            context = build_context(self.config)
        except ValueError as exc:
            log.error("certificate not reloaded, keeping the previous one",
                      extra={"fields": {"error": exc}})
            return
        self.current = context
        log.info("certificate reloaded", extra={"fields": {"tls": self.config.path}})
