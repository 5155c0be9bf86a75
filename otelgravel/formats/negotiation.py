"""Content negotiation as pure functions of header values.

- ``negotiate(accept) -> Scrape``: the scrape format Prometheus asked for, as client_golang's
  ``expfmt.NegotiateAccept`` picks it: ranges by q-value (most specific first on a tie, then
  header order), the first we serve wins: PrometheusProto (delimited ``MetricFamily``),
  OpenMetrics 1.0.0 or 0.0.1 (no version means 0.0.1, as in expfmt), text 1.0.0 or 0.0.4 (no
  version means 0.0.4). ``*/*``, ``text/*`` or nothing acceptable at all get text 0.0.4, as
  Prometheus client libraries answer rather than 406. The ``escaping`` parameter (``allow-utf-8``,
  ``underscores``, ``dots``, ``values``) is taken, as expfmt does, from the ranges read up to the
  chosen one (an unknown value is ignored); without one names are escaped with ``underscores``.
  ``Scrape.content_type`` names what was chosen, with ``escaping=`` when the request named one.
- ``scrape_format(accept)``: the kind alone (``"protobuf"``, ``"openmetrics"`` or ``"text"``).
- ``push_format(content_type)``: ``"protobuf"`` for delimited MetricFamily protobuf,
  ``"openmetrics"`` for ``application/openmetrics-text``, ``"text"`` for anything else, a
  missing header included (the Pushgateway's fallback). A protobuf body we cannot read raises
  ``UnsupportedMediaType``.
- ``wants_gzip(accept_encoding)``: gzip is acceptable (``gzip``, ``x-gzip`` or ``*``, q > 0).
"""
from __future__ import annotations

from typing import NamedTuple

from ..errors import UnsupportedMediaType

OPENMETRICS = "openmetrics"
TEXT = "text"
PROTOBUF = "protobuf"

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROTOBUF_CONTENT_TYPE = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                         "encoding=delimited")

# The name escaping schemes of prometheus/common model (EscapingScheme.String()).
ALLOW_UTF8 = "allow-utf-8"
UNDERSCORES = "underscores"
DOTS = "dots"
VALUES = "values"
ESCAPINGS = frozenset({ALLOW_UTF8, UNDERSCORES, DOTS, VALUES})

_OPENMETRICS_TYPE = "application/openmetrics-text"
_PROTOBUF_TYPE = "application/vnd.google.protobuf"
_METRIC_FAMILY = "io.prometheus.client.MetricFamily"


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """``"Text/Plain; Version=0.0.4"`` → ``("text/plain", {"version": "0.0.4"})``."""
    kind, *params = value.split(";")
    parsed = {}
    for param in params:
        key, sep, val = param.partition("=")
        if sep:
            parsed[key.strip().lower()] = val.strip().strip('"')
    return kind.strip().lower(), parsed


def _quality(params: dict[str, str]) -> float:
    try:
        q = float(params.get("q", "1"))
    except ValueError:
        return 0.0  # as goautoneg: an unreadable q makes the range unacceptable
    return q if 0.0 <= q <= 1.0 else (1.0 if q > 1.0 else 0.0)


class Scrape(NamedTuple):
    """A negotiated scrape: ``kind`` (PROTOBUF, OPENMETRICS, TEXT), the format ``version``
    ("" for protobuf), the name ``escaping`` scheme, and the ``content_type`` to answer with."""
    kind: str
    version: str
    escaping: str
    content_type: str


# (kind, version) -> Content-Type without escaping, as expfmt spells them
_CONTENT_TYPES = {
    (PROTOBUF, ""): PROTOBUF_CONTENT_TYPE,
    (OPENMETRICS, "1.0.0"): OPENMETRICS_CONTENT_TYPE,
    (OPENMETRICS, "0.0.1"): "application/openmetrics-text; version=0.0.1; charset=utf-8",
    (TEXT, "1.0.0"): "text/plain; version=1.0.0; charset=utf-8",
    (TEXT, "0.0.4"): TEXT_CONTENT_TYPE,
}


def _served(kind: str, params: dict[str, str]) -> tuple[str, str] | None:
    """The (kind, version) we answer a media range with, or None when we serve none of it."""
    if kind == _PROTOBUF_TYPE:
        if params.get("proto") == _METRIC_FAMILY and params.get("encoding") == "delimited":
            return PROTOBUF, ""
        return None
    if kind == _OPENMETRICS_TYPE:
        version = params.get("version") or "0.0.1"
        return (OPENMETRICS, version) if version in ("0.0.1", "1.0.0") else None
    if kind == "text/plain":
        version = params.get("version") or "0.0.4"
        return (TEXT, version) if version in ("0.0.4", "1.0.0") else None
    if kind in ("text/*", "*/*"):
        return TEXT, "0.0.4"
    return None


def negotiate(accept: str | None) -> Scrape:
    ranges = []
    for index, item in enumerate((accept or "").split(",")):
        kind, params = _media_type(item)
        q = _quality(params)
        if q <= 0.0 or "/" not in kind:
            continue
        major, minor = kind.split("/", 1)
        specificity = 0 if major == "*" else (1 if minor == "*" else 2)
        ranges.append((-q, -specificity, index, kind, params))
    ranges.sort(key=lambda r: r[:3])
    escaping = None
    chosen = (TEXT, "0.0.4")
    for _, _, _, kind, params in ranges:
        asked = params.get("escaping")
        if asked in ESCAPINGS:
            escaping = asked
        served = _served(kind, params)
        if served is not None:
            chosen = served
            break
    content_type = _CONTENT_TYPES[chosen]
    if escaping is not None:
        content_type += "; escaping=" + escaping
    return Scrape(chosen[0], chosen[1], escaping or UNDERSCORES, content_type)


def scrape_format(accept: str | None) -> str:
    return negotiate(accept).kind


def push_format(content_type: str | None) -> str:
    if not content_type:
        return TEXT
    kind, params = _media_type(content_type)
    if kind == _OPENMETRICS_TYPE:
        return OPENMETRICS
    if kind != _PROTOBUF_TYPE:
        return TEXT
    proto = params.get("proto", "")
    encoding = params.get("encoding", "").lower()
    if proto != _METRIC_FAMILY:
        raise UnsupportedMediaType(
            f"unsupported protobuf message proto={proto!r}: only "
            f"proto={_METRIC_FAMILY}; encoding=delimited is accepted")
    if encoding != "delimited":
        raise UnsupportedMediaType(
            f"unsupported protobuf encoding={encoding!r}: only "
            f"proto={_METRIC_FAMILY}; encoding=delimited is accepted")
    return PROTOBUF


def wants_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    gzip_q = star_q = None
    for item in accept_encoding.split(","):
        coding, params = _media_type(item)
        q = _quality(params)
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0.0
    return star_q is not None and star_q > 0.0
