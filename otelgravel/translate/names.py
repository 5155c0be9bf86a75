"""OpenTelemetry names, units and attributes → Prometheus names, units and labels.

Follows the OpenTelemetry "Prometheus and OpenMetrics Compatibility" specification
(section "OTLP Metric points to Prometheus"):

- metric names: characters outside ``[a-zA-Z0-9_:]`` become ``_``, runs of ``_`` collapse into one,
  a leading digit gets a ``_`` prefix;
- units: UCUM abbreviations become words (``ms`` → ``milliseconds``, ``By`` → ``bytes``), the parts
  in curly braces are dropped (``{request}`` → nothing), ``foo/bar`` → ``foo_per_bar``, ``1`` →
  ``ratio`` for gauges only; the unit is appended as a suffix unless the name already ends with it;
- counters: the model names counter families *without* ``_total`` (the writers add it back), so a
  trailing ``_total`` is stripped here and ``_total`` appears exactly once in the output;
- label names: characters outside ``[a-zA-Z0-9_]`` become ``_``, runs of ``_`` collapse into one,
  a leading digit gets a ``key_`` prefix (the Collector's convention); attributes whose names
  collide after sanitising are joined with ``;`` in the lexicographic order of the original keys;
- attribute values that are not strings are rendered as the OTel attribute specification says for
  non-OTLP protocols: booleans ``true``/``false``, integers in decimal, doubles as JSON numbers,
  bytes as base64, arrays and maps as JSON.

With ``receivers.otlp.utf8_names`` (``utf8_metric_name``, ``utf8_labels_from_pairs``) names
keep their characters, as Prometheus 3's ``NoUTF8EscapingWithSuffixes`` OTLP translation does:
``http.server.duration`` with unit ``s`` is ``http.server.duration_seconds`` (the unit and
``_total`` suffixes are still added), attribute ``url.scheme`` is label ``url.scheme``. A scraper
that does not ask for ``escaping=allow-utf-8`` gets them escaped (``http_server_duration_seconds``,
``url_scheme``), which is what the default translation gives for the usual names. An attribute
key starting with ``__`` (reserved) is still sanitised; exemplar attributes always are.

Pure functions, no state; the translator caches what it needs.
"""
from __future__ import annotations

import base64
import json
import math
import re
from functools import lru_cache

_INVALID_METRIC_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_BRACED = re.compile(r"\{[^}]*\}")
_UNIT_LEFTOVER = re.compile(r"[^a-zA-Z0-9]")

# UCUM (as used by the OTel semantic conventions) → the Prometheus base-unit words.
UNIT_WORDS = {
    # time
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds",
    # bytes
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes", "bit": "bits", "Kibit": "kibibits", "Mibit": "mebibits",
    # SI
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    # misc
    "Cel": "celsius", "Hz": "hertz", "%": "percent",
}
# The denominator of ``foo/bar`` units is singular: ``By/s`` → ``bytes_per_second``.
PER_UNIT_WORDS = {
    "s": "second", "m": "minute", "min": "minute", "h": "hour", "d": "day", "w": "week",
    "mo": "month", "y": "year",
}


def _unit_part(text: str, words: dict) -> str:
    text = _BRACED.sub("", text).strip()
    if not text:
        return ""
    word = words.get(text)
    if word is None:
        word = UNIT_WORDS.get(text)
    if word is None:
        # An unknown unit is kept, sanitised (only letters and digits survive).
        word = _UNIT_LEFTOVER.sub("", text)
    return word


@lru_cache(maxsize=4096)
def unit_suffix(unit: str, is_gauge: bool) -> str:
    """The Prometheus unit word for an OTel unit, or "" when the unit adds no suffix.

    >>> unit_suffix("ms", False), unit_suffix("{request}", False), unit_suffix("By/s", False)
    ('milliseconds', '', 'bytes_per_second')
    >>> unit_suffix("1", True), unit_suffix("1", False)
    ('ratio', '')
    """
    unit = unit.strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if is_gauge else ""
    if "/" in unit:
        main, _, per = unit.partition("/")
        main_word = "" if main.strip() == "1" else _unit_part(main, UNIT_WORDS)
        per_word = _unit_part(per, PER_UNIT_WORDS)
        if main_word and per_word:
            return f"{main_word}_per_{per_word}"
        if per_word:
            return f"per_{per_word}"
        return main_word
    return _unit_part(unit, UNIT_WORDS)


def sanitize_metric_name(name: str) -> str:
    """``http.server.duration`` → ``http_server_duration``; "" stays "" (the caller refuses it)."""
    name = _UNDERSCORES.sub("_", _INVALID_METRIC_CHARS.sub("_", name))
    if name and name[0].isdigit():
        name = "_" + name
    return name


@lru_cache(maxsize=8192)
def metric_name(otel_name: str, unit: str, *, counter: bool, gauge: bool) -> tuple[str, str]:
    """(family name, unit word) for an OTel metric; the family name never ends in ``_total``
    for counters (the writers add it). Returns ("", "") for a name that sanitises to nothing.
    """
    name = sanitize_metric_name(otel_name).rstrip("_")
    if counter:
        while name.endswith("_total"):
            name = name[: -len("_total")].rstrip("_")
    if not name:
        return "", ""
    word = unit_suffix(unit, gauge)
    if word and not (name == word or name.endswith("_" + word)):
        name = f"{name}_{word}"
    name = _UNDERSCORES.sub("_", name)
    if not name:
        return "", ""
    return name, word


@lru_cache(maxsize=8192)
def utf8_metric_name(otel_name: str, unit: str, *, counter: bool, gauge: bool) -> tuple[str, str]:
    """``metric_name`` keeping the name's characters: only the counter's ``_total`` comes off
    (the writers add it) and the unit word is appended unless the name already ends with it."""
    name = otel_name
    if counter:
        while name.endswith("_total"):
            name = name[: -len("_total")]
    if not name:
        return "", ""
    word = unit_suffix(unit, gauge)
    if word and not (name == word or name.endswith("_" + word)):
        name = f"{name}_{word}"
    return name, word


def utf8_labels_from_pairs(pairs) -> dict[str, str]:
    """Attributes as labels, keys kept as they are (empty ones dropped). Reserved keys (``__``)
    are sanitised as ``labels_from_pairs`` does, and give way to a key spelled like the result.
    Keys that an escaping scheme writes alike (``a.b``, ``a_b``) stay apart here: the store
    refuses such a series (the export's partial success says why)."""
    out: dict[str, str] = {}
    reserved = None
    for key, value in pairs:
        if key[:2] == "__":
            if reserved is None:
                reserved = []
            reserved.append((key, value))
        elif key:
            out[key] = value
    if reserved:
        for name, value in labels_from_pairs(reserved).items():
            out.setdefault(name, value)
    return out


@lru_cache(maxsize=8192)
def sanitize_label_name(key: str) -> str:
    """``http.route`` → ``http_route``; ``0day`` → ``key_0day``; "" stays ""."""
    name = _UNDERSCORES.sub("_", _INVALID_LABEL_CHARS.sub("_", key))
    if name and name[0].isdigit():
        name = "key_" + name
    return name


def _json_native(value) -> object:
    """An AnyValue as a JSON-able Python value (for arrays and maps)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        d = value.double_value
        if math.isnan(d) or math.isinf(d):
            return str(d)
        return d
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which == "array_value":
        return [_json_native(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _json_native(kv.value) for kv in value.kvlist_value.values}
    return None


def attribute_value(value) -> str:
    """An OTLP ``AnyValue`` as a label value."""
    # Not _json_native + overrides: 3 kinds differ, and a string took 325 ns that way, 170 here.
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        d = value.double_value
        if math.isnan(d):
            return "NaN"
        if math.isinf(d):
            return "+Inf" if d > 0 else "-Inf"
        return json.dumps(d)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which is None:
        return ""
    return json.dumps(_json_native(value), separators=(",", ":"), sort_keys=False)


def labels_from_pairs(pairs) -> dict[str, str]:
    """Sanitise (key, value) pairs of attributes into label names, joining the values of keys
    that collide with ``;`` in the lexicographic order of the original keys. Empty keys drop."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for key, value in pairs:
        name = sanitize_label_name(key)
        if not name:
            continue
        by_name.setdefault(name, []).append((key, value))
    out = {}
    for name, items in by_name.items():
        if len(items) == 1:
            out[name] = items[0][1]
        else:
            items.sort()
            out[name] = ";".join(v for _, v in items)
    return out
