"""What a near miss is told: the right path or the right port, in the answer itself.

Pure text, called only on the miss path (a 404, a push body that does not parse), so the router's
hit path pays nothing. ``elsewhere`` maps a component ("pushgateway", "otlp", "prometheus") to
the URL it is served at, as bound (the real port when the config said 0).
"""
from __future__ import annotations

import difflib
import re

from .errors import ParseError

_OTLP_PATHS = ("/v1/metrics", "/v1/traces", "/v1/logs")
_PUSH_FORMATS = ("Prometheus text 0.0.4, OpenMetrics text or protobuf delimited "
                 "(application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                 "encoding=delimited)")


def _template(prefix: str) -> str:
    return prefix + "/<JOB>{/<LABEL>/<VALUE>}" if prefix == "/metrics/job" else prefix + "..."


def not_found(path: str, exact: list[str], prefixes: list[str], elsewhere: dict[str, str]) -> str:
    """The text of a 404: what was asked, the likely right place, and what this endpoint serves."""
    out = [f"404: Not Found: {path}"]
    if path in _OTLP_PATHS or path.rstrip("/").endswith("/v1/metrics"):
        if "otlp" in elsewhere:
            out.append(f"OTLP/HTTP is served at {elsewhere['otlp']}/v1/metrics "
                       f"(receivers::otlp::protocols::http::endpoint), not on this endpoint"
                       + ("" if path.rstrip("/").endswith("/v1/metrics") else "; it takes metrics only"))
        else:
            out.append("OTLP/HTTP is not enabled in this gateway's config (receivers::otlp)")
    else:
        guess = _closest(path, exact, prefixes)
        if guess is not None:
            out.append(f"did you mean {guess}?")
        elif path.startswith("/metric") and "/metrics/job" not in prefixes and "pushgateway" in elsewhere:
            out.append(f"the push API is served at {elsewhere['pushgateway']}/metrics/job/<JOB>")
    listed = sorted(set(exact)) + [_template(p) for p in prefixes]
    out.append("this endpoint serves " + ", ".join(listed))
    return "; ".join(out) + "\n"


def _closest(path: str, exact: list[str], prefixes: list[str]) -> str | None:
    """A served path within a typo of the asked one: ``/metric/job/x`` -> ``/metrics/job/x``."""
    segments = path.split("/")
    best, best_ratio = None, 0.0
    for prefix in prefixes:
        n = prefix.count("/") + 1
        head, tail = "/".join(segments[:n]), "/".join(segments[n:])
        ratio = difflib.SequenceMatcher(None, head, prefix).ratio()
        if ratio > best_ratio and head != prefix:
            best, best_ratio = prefix + ("/" + tail if tail else "/<JOB>"), ratio
    for candidate in exact:
        ratio = difflib.SequenceMatcher(None, path, candidate).ratio()
        if ratio > best_ratio:
            best, best_ratio = candidate, ratio
    return best if best_ratio >= 0.75 else None


# A JSON object opens with a key and a colon (or is empty); a text line with a UTF-8 name opens
# with the quoted name and a comma, a brace or an equals sign: {"my.metric","a"="b"} 1
_JSON_OBJECT = re.compile(rb'\{\s*(?:"(?:[^"\\\n]|\\.)*"\s*:|\}\s*$)')


def looks_like_json(body: bytes) -> bool:
    head = body.lstrip()
    return head[:1] == b"[" or _JSON_OBJECT.match(head) is not None


def push_body(exc: ParseError, body: bytes, elsewhere: dict[str, str]) -> ParseError:
    """A push body that does not parse and looks like JSON: say what the push API takes, and where
    JSON (OTLP JSON) belongs. Any other parse error is returned as it is."""
    if not looks_like_json(body):
        return exc
    where = (f"POST it to {elsewhere['otlp']}/v1/metrics (the OTLP receiver's port, "
             "receivers::otlp::protocols::http::endpoint)" if "otlp" in elsewhere
             else "enable receivers::otlp and POST it to /v1/metrics on the OTLP port")
    return ParseError(f"{exc}; the push API takes the Prometheus formats, {_PUSH_FORMATS}; "
                      f"this body looks like JSON: JSON metrics are OTLP JSON, {where}")
