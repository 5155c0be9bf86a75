"""Content negotiation as pure functions of header values.

- ``scrape_format(accept)``: ``"openmetrics"`` when the Accept header prefers OpenMetrics
  (q-values honoured, most specific range first on a tie, then header order), else ``"text"``.
  Ranges we cannot serve (protobuf, OpenMetrics 2.x, JSON) are skipped; nothing acceptable at
  all still gets text, as Prometheus client libraries do rather than answer 406.
- ``push_format(content_type)``: ``"protobuf"`` for delimited MetricFamily protobuf,
  ``"openmetrics"`` for ``application/openmetrics-text``, ``"text"`` for anything else, a
  missing header included (the Pushgateway's fallback). A protobuf body we cannot read raises
  ``UnsupportedMediaType``.
- ``wants_gzip(accept_encoding)``: gzip is acceptable (``gzip``, ``x-gzip`` or ``*``, q > 0).
"""
from __future__ import annotations

from ..errors import UnsupportedMediaType

OPENMETRICS = "openmetrics"
TEXT = "text"
PROTOBUF = "protobuf"

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_OPENMETRICS_TYPE = "application/openmetrics-text"
_PROTOBUF_TYPE = "application/vnd.google.protobuf"
_METRIC_FAMILY = "io.prometheus.client.MetricFamily"
_OPENMETRICS_VERSIONS = frozenset({"", "0.0.1", "1.0.0"})


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


def scrape_format(accept: str | None) -> str:
    if not accept:
        return TEXT
    ranges = []
    for index, item in enumerate(accept.split(",")):
        kind, params = _media_type(item)
        q = _quality(params)
        if q <= 0.0 or "/" not in kind:
            continue
        major, minor = kind.split("/", 1)
        specificity = 0 if major == "*" else (1 if minor == "*" else 2)
        ranges.append((-q, -specificity, index, kind, params))
    ranges.sort(key=lambda r: r[:3])
    for _, _, _, kind, params in ranges:
        if kind == _OPENMETRICS_TYPE:
            if params.get("version", "") in _OPENMETRICS_VERSIONS:
                return OPENMETRICS
        elif kind in ("text/plain", "text/*", "*/*"):
            return TEXT
    return TEXT


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
