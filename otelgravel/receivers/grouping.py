"""The grouping key of a push path: ``/metrics/job/fn/instance/x`` → ``(("instance", "x"), ("job", "fn"))``.

Pushgateway compatible. ``parse_grouping_key`` takes the still percent-encoded part of the path
after ``/metrics`` and splits it on ``/`` *before* decoding each component, so that ``%2F`` is a
slash inside a value rather than a separator.

- ``""`` (the bare ``/metrics``) is the empty grouping key; otherwise the first pair is the job:
  ``/job/<JOB>`` or ``/job@base64/<JOB>``, and it must not be empty.
- ``<label>@base64/<value>`` carries a URL-safe base64 value (RFC 4648 section 5, padding
  optional); ``=`` alone is the empty value.
- An empty last value (``/job/a/label/``, prom-client's way of sending ``""``) is the empty value.
  A lone slash right after the job (``/job/a/``) adds nothing, as in the Pushgateway.
- ``+`` stays a plus sign: this is a path, not a query string (the Pushgateway does the same).
- Label names may be UTF-8, as with the Pushgateway's ``--push.enable-utf8-names`` (always on
  here): a name is percent-decoded, its ``@base64`` suffix taken off, then, when it starts with
  ``U__``, decoded from the ``values`` escaping (``U__foo_2e_bar`` → ``foo.bar``, ``__`` → ``_``);
  a name that does not decode (``U__in_xxx_valid``) stays as written, as in the Pushgateway. Only
  names are decoded so, never values, and never the leading ``job``. A decoded name must not be
  empty nor start with ``__`` (the Pushgateway checks that on the escaped name only), and no two
  names may be written alike by an escaping scheme (``a.b`` and ``a_b``), nor may a scheme
  write one with the reserved ``__`` prefix.

Every problem raises ``GroupingKeyError`` with a message that names it.
"""
from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from ..errors import GroupingKeyError
from ..formats.escaping import label_problem, unescape_values

BASE64_SUFFIX = "@base64"

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def parse_grouping_key(tail: str) -> tuple[tuple[str, str], ...]:
    if tail == "" or tail == "/":
        return ()
    if not tail.startswith("/"):
        raise GroupingKeyError(f"grouping key {tail!r} must start with '/'")
    components = tail[1:].split("/")
    if len(components) == 3 and components[2] == "":
        del components[2]  # /job/<JOB>/ : the Pushgateway reads the trailing slash as no labels
    if len(components) % 2:
        raise GroupingKeyError(f"odd number of components in grouping key {tail!r}: expected "
                               "/job/<JOB>{/<LABEL>/<VALUE>}")
    labels: dict[str, str] = {}
    for i in range(0, len(components), 2):
        raw_name = _percent_decode(components[i], tail)
        value = _percent_decode(components[i + 1], tail)
        name = raw_name.removesuffix(BASE64_SUFFIX)
        base64_value = name != raw_name
        if i == 0 and name != "job":
            raise GroupingKeyError(f"grouping key {tail!r} must start with /job/<JOB> or "
                                   f"/job@base64/<JOB>, not {raw_name!r}")
        elif name[:3] == "U__":
            name = unescape_values(name)
        if not name:
            raise GroupingKeyError(f"empty label name {raw_name!r} in grouping key {tail!r}")
        if name.startswith("__"):
            raise GroupingKeyError(f"label name {name!r} in grouping key {tail!r} is reserved "
                                   "(starts with '__')")
        if base64_value:
            value = _base64_decode(value, name)
        if name in labels:
            raise GroupingKeyError(f"duplicate label name {name!r} in grouping key {tail!r}")
        labels[name] = value
    if not labels["job"]:
        raise GroupingKeyError(f"empty job name in grouping key {tail!r}")
    key = tuple(sorted(labels.items()))
    problem = label_problem(key)  # every group writes push_time_seconds with these labels
    if problem is not None:
        raise GroupingKeyError(f"grouping key {tail!r}: {problem}")
    return key


def _percent_decode(component: str, tail: str) -> str:
    if "%" not in component:
        return component
    if _BAD_PERCENT.search(component):
        raise GroupingKeyError(f"invalid percent-encoding in {component!r} of grouping key "
                               f"{tail!r}")
    try:
        return unquote(component, errors="strict")
    except UnicodeDecodeError as exc:
        raise GroupingKeyError(f"{component!r} in grouping key {tail!r} is not UTF-8 once "
                               "percent-decoded") from exc


def _base64_decode(value: str, name: str) -> str:
    """URL-safe base64 with optional padding, as the Pushgateway reads it."""
    data = value.rstrip("=")
    if _BASE64URL.fullmatch(data) is None or len(data) % 4 == 1:
        raise GroupingKeyError(f"invalid base64 value {value!r} for label {name!r}: expected "
                               "URL-safe base64 (A-Z a-z 0-9 - _), padding optional")
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise GroupingKeyError(f"invalid base64 value {value!r} for label {name!r}: "
                               f"{exc}") from exc
