"""Metric and label names outside the legacy character set, and the four ways to write them.

The legacy names are ``[a-zA-Z_:][a-zA-Z0-9_:]*`` (metric) and ``[a-zA-Z_][a-zA-Z0-9_]*``
(label). Prometheus 3 accepts any non-empty UTF-8 name and a scraper says in its Accept header
(``escaping=``) how it wants the others written. The schemes are those of prometheus/common
``model.EscapeName``/``UnescapeName``, exactly; as its ``EscapeMetricFamily`` does, a name that
is already legacy-valid (``[a-zA-Z_:][a-zA-Z0-9_:]*``) is never touched, whatever the scheme:

- ``allow-utf-8``: as it is (the text formats quote it).
- ``underscores``: every character outside the legacy set becomes ``_`` (``my.metric`` →
  ``my_metric``); not reversible.
- ``dots``: ``_`` → ``__``, ``.`` → ``_dot_``, any other character outside the set → ``__``.
- ``values``: ``U__`` then ``_`` → ``__`` and any other character outside the set →
  ``_<hex code point>_`` (``my.metric`` → ``U__my_2e_metric``); reversible. The Pushgateway
  uses this encoding for label names in grouping paths.

Label names are escaped with ``escape_label_name``: the same schemes, except that ``:`` (legal
in a metric name, not in a label name) counts as outside the set, so that what an escaped scrape
shows is always a valid legacy label name (``a:b`` → ``a_b``; prometheus/common would leave
``a:b``, which legacy parsers refuse).
"""
from __future__ import annotations

import re

from .negotiation import ALLOW_UTF8, DOTS, UNDERSCORES, VALUES

_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_HEX = frozenset("0123456789abcdefABCDEF")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def is_legacy_metric(name: str) -> bool:
    return _LEGACY_METRIC.fullmatch(name) is not None


def is_legacy_label(name: str) -> bool:
    return _LEGACY_LABEL.fullmatch(name) is not None


# Label names known to be legacy, and known not to be: the parsers' careful paths test
# ``name in LEGACY_SEEN`` inline (no call per line) and call ``legacy_labels`` only for a name not
# seen yet; the writers call it once per rendering. Names are few; both sets are bounded.
LEGACY_SEEN: set[str] = set()
_NOT_LEGACY: set[str] = set()
_SEEN_MAX = 16384


def legacy_labels(labels) -> bool:
    """Are the names of these (name, value) pairs all legacy label names?"""
    for pair in labels:
        name = pair[0]
        if name not in LEGACY_SEEN:
            if name in _NOT_LEGACY:
                return False
            if _LEGACY_LABEL.fullmatch(name) is None:
                if len(_NOT_LEGACY) >= _SEEN_MAX:
                    _NOT_LEGACY.clear()
                _NOT_LEGACY.add(name)
                return False
            if len(LEGACY_SEEN) >= _SEEN_MAX:
                LEGACY_SEEN.clear()
            LEGACY_SEEN.add(name)
    return True


def exemplars_legacy(p) -> bool:
    """Are the label names of the point's exemplars all legacy (its lines the same in every
    scheme)?"""
    ex = p.exemplar
    if ex is not None and not legacy_labels(ex.labels):
        return False
    bucket_exemplars = p.bucket_exemplars
    if bucket_exemplars:
        return all(legacy_labels(e.labels) for e in bucket_exemplars.values())
    return True


def _legacy_char(c: str, i: int) -> bool:
    return ("a" <= c <= "z" or "A" <= c <= "Z" or c == "_" or c == ":"
            or ("0" <= c <= "9" and i > 0))


def escape_name(name: str, scheme: str) -> str:
    if not name or scheme == ALLOW_UTF8 or _LEGACY_METRIC.fullmatch(name):
        return name
    return _escape(name, scheme, _legacy_char)


def escape_label_name(name: str, scheme: str) -> str:
    if not name or scheme == ALLOW_UTF8 or _LEGACY_LABEL.fullmatch(name):
        return name
    return _escape(name, scheme, _legacy_label_char)


def _legacy_label_char(c: str, i: int) -> bool:
    return c != ":" and _legacy_char(c, i)


def _escape(name: str, scheme: str, legal) -> str:
    if scheme == UNDERSCORES:
        return "".join(c if legal(c, i) else "_" for i, c in enumerate(name))
    if scheme == DOTS:
        out = []
        for i, c in enumerate(name):
            if c == "_":
                out.append("__")
            elif c == ".":
                out.append("_dot_")
            elif legal(c, i):
                out.append(c)
            else:
                out.append("__")
        return "".join(out)
    if scheme == VALUES:
        out = ["U__"]
        for i, c in enumerate(name):
            if c == "_":
                out.append("__")
            elif legal(c, i):
                out.append(c)
            elif 0xD800 <= ord(c) <= 0xDFFF:  # a lone surrogate is not a valid rune
                out.append("_FFFD_")
            else:
                out.append(f"_{ord(c):x}_")
        return "".join(out)
    raise ValueError(f"unknown escaping scheme {scheme!r}")


def unescape_values(name: str) -> str:
    """``values`` escaping undone (``U__my_2e_metric`` → ``my.metric``); a name that does not
    decode (no ``U__`` prefix, a bad hex code, an unclosed escape) comes back unchanged. Exactly
    prometheus/common ``UnescapeName`` (which the Pushgateway uses on grouping paths): at most
    five hex digits per code, so the six-digit codes of U+100000 and above do not decode."""
    if not name.startswith("U__"):
        return name
    body = name[3:]
    out = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "_":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= n:
            return name
        if body[i] == "_":
            out.append("_")
            i += 1
            continue
        end = body.find("_", i)
        digits = body[i:end]
        if end < 0 or len(digits) > 5 or not all(d in _HEX for d in digits):
            return name
        code = int(digits, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return name
        out.append(chr(code))
        i = end + 1
    return "".join(out)


# The schemes that change a name: a scraper uses one of them (or none: allow-utf-8 writes names
# as they are, and the store refuses two families or labels of the same name anyway).
ESCAPING_SCHEMES = (UNDERSCORES, DOTS, VALUES)


def label_problem(labels) -> str | None:
    """Why the label names of ``labels`` (pairs) cannot be written validly in every scheme, or
    None: two names that a scheme writes alike (``a.b`` and ``a_b`` by underscores), or a name
    that a scheme writes with the reserved ``__`` prefix (``名前`` is ``__`` by underscores,
    ``1st`` is ``__st`` by dots), which Prometheus' parsers refuse. Legacy names are unchanged by
    every scheme, so a set of legacy names has no problem."""
    names = [pair[0] for pair in labels]
    if all(_LEGACY_LABEL.fullmatch(n) for n in names):
        return None
    for scheme in ESCAPING_SCHEMES:
        seen: dict[str, str] = {}
        for name in names:
            escaped = escape_label_name(name, scheme)  # as the writers escape label names
            if escaped[:2] == "__" and name[:2] != "__":
                return (f"label name '{name}' would be written '{escaped}' for a scraper asking "
                        f"escaping={scheme}{_default(scheme)}, a reserved name (the '__' "
                        "prefix): rename it (start it with a letter)")
            other = seen.get(escaped)
            if other is not None:
                return (f"label names '{other}' and '{name}' would both be written '{escaped}' "
                        f"for a scraper asking escaping={scheme}{_default(scheme)}: rename one")
            seen[escaped] = name
    return None


def _default(scheme: str) -> str:
    return " (the default when a scraper names none)" if scheme == UNDERSCORES else ""


def escaped_exposures(name: str, exposed: tuple) -> set[tuple[str, str]]:
    """``(scheme, sample name)`` for every name a family ``name`` whose samples are ``exposed``
    (``x``, ``x_total``...) may be written as by a scraper asking for an escaping scheme: the
    whole sample name escaped (``escape(x_total)``, as the writers do for ``_total``), the family
    name escaped then suffixed (``escape(x) + _bucket``), and the OpenMetrics family name left
    once the suffix is taken off the escaped whole (``# TYPE req_dot_count_ counter`` under dots),
    so that the store's check holds for every writer."""
    out = set()
    for scheme in ESCAPING_SCHEMES:
        base = escape_name(name, scheme)
        for sample in exposed:
            suffix = sample[len(name):]
            escaped = escape_name(sample, scheme)
            out.add((scheme, escaped))
            out.add((scheme, base + suffix))
            if suffix and escaped.endswith(suffix):  # the OpenMetrics family name of an escaped
                out.add((scheme, escaped[:-len(suffix)]))  # x_total: req_dot_count_ (dots)
    return out
