"""What the edges count, as plain Python numbers: bumping one costs a dict update, never an SDK call.

``Stats`` is created once by the service and handed to the receivers, the exporter and the router.
The ``MeterProvider`` (``meter.py``) reads it when it is scraped; the status page reads it too, so
it exists whether or not ``service.telemetry.metrics.address`` is set.

Hooks for other parts of the gateway (bump them where the event happens, nothing else to wire):
- ``stats.count_request(receiver, outcome, points=0)``: a request answered before a receiver ran,
  e.g. ``"unauthorized"``/``"forbidden"`` from the authenticators;
- ``stats.auth_failures[(receiver, reason)] += 1`` via ``stats.auth_failed(receiver, reason)``;
- ``stats.state_sync_duration.observe((backend,), seconds)``: one durable-log sync (an fsync
  round, a Redis append round trip), exported as ``otelgravel_state_sync_duration_seconds{backend}``;
  the service hands it to the backend as ``StateBackend.observe_sync``.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import deque

from ..errors import AuthBusy, BodyTooLarge, Forbidden, LimitError, StateUnavailable, Unauthenticated

# SPEC 7: the outcomes of a receiver request (and ``unavailable``: 503, the state backend could
# not keep the record). Every (receiver, outcome) starts at 0, so that a rate() has a series to
# work on before the first refusal.
OUTCOMES = ("accepted", "refused", "limited", "too_large", "unauthorized", "forbidden",
            "unavailable", "replayed")
POINT_OUTCOMES = ("accepted", "refused", "limited")

# Seconds. The request buckets are the OTel semantic-convention defaults for
# http.server.request.duration; scrapes of a large store take longer; syncs are fsyncs.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SCRAPE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SYNC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

REFUSALS_KEPT = 100
_REASON_CHARS = 500


def outcome_of(exc: Exception) -> str:
    """The SPEC 7 outcome of a refusal: limited (series or group limit), too_large,
    unavailable (the state backend), or refused (bad input, conflict)."""
    if isinstance(exc, LimitError):
        return "limited"
    if isinstance(exc, BodyTooLarge):
        return "too_large"
    if isinstance(exc, (StateUnavailable, AuthBusy)):
        return "unavailable"
    if isinstance(exc, Unauthenticated):
        return "unauthorized"
    if isinstance(exc, Forbidden):
        return "forbidden"
    return "refused"


class BucketHistogram:
    """A histogram per label tuple as a list of per-bucket counts plus the sum, folded into
    Prometheus' cumulative buckets only when it is read (``rows``)."""

    __slots__ = ("bounds", "labelnames", "series")

    def __init__(self, bounds: tuple[float, ...], labelnames: tuple[str, ...]):
        self.bounds = bounds
        self.labelnames = labelnames
        self.series: dict[tuple, list] = {}  # labels -> [count per bucket..., +Inf count, sum]

    def observe(self, labels: tuple, value: float) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.series[labels] = [0] * (len(self.bounds) + 1) + [0.0]
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def rows(self):
        """``(labels, [(le, cumulative count)...], count, sum)`` per label tuple, sorted."""
        for labels, row in sorted(self.series.items()):
            total = 0
            buckets = []
            for bound, count in zip(self.bounds + (float("inf"),), row):
                total += count
                buckets.append((bound, total))
            yield labels, buckets, total, row[-1]


class Refusal:
    __slots__ = ("time", "receiver", "group", "client", "outcome", "reason")

    def __init__(self, time: float, receiver: str, group: tuple, client: str | None,
                 outcome: str, reason: str):
        self.time = time
        self.receiver = receiver
        self.group = group
        self.client = client
        self.outcome = outcome
        self.reason = reason


class Stats:
    def __init__(self, receivers: tuple[str, ...] = ("pushgateway", "otlp")):
        self.requests: dict[tuple[str, str], int] = {}
        self.points: dict[tuple[str, str], int] = {}
        for receiver in receivers:
            for outcome in OUTCOMES:
                self.requests[(receiver, outcome)] = 0
            for outcome in POINT_OUTCOMES:
                self.points[(receiver, outcome)] = 0
        self.scrapes: dict[str, int] = {"text": 0, "openmetrics": 0, "protobuf": 0}
        self.scrape_duration = BucketHistogram(SCRAPE_BUCKETS, ("format",))
        self.request_duration = BucketHistogram(
            HTTP_BUCKETS, ("http_route", "http_request_method", "http_response_status_code"))
        self.state_sync_duration = BucketHistogram(SYNC_BUCKETS, ("backend",))
        self.auth_failures: dict[tuple[str, str], int] = {}
        self.otlp_partial_success = 0  # OTLP exports answered 200 with rejected points
        # server (the component whose HTTP limits apply) -> its http_limits.ConnectionCount:
        # ``open``, ``shed``, ``limit`` and ``timed_out`` {timeout key: connections closed}
        self.connections: dict[str, object] = {}
        self.refusals: deque[Refusal] = deque(maxlen=REFUSALS_KEPT)

    # ---- the receivers ---------------------------------------------------------------------

    def accepted(self, receiver: str, points: int) -> None:
        key = (receiver, "accepted")
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        if points:
            self.points[key] = self.points.get(key, 0) + points

    def refused(self, receiver: str, exc: Exception, points: int, group: tuple,
                client: str | None, now: float) -> None:
        """A refused request: counted under its outcome and kept among the last refusals."""
        outcome = outcome_of(exc)
        self.count_request(receiver, outcome, points)
        self.refusal(receiver, exc, group, client, now, outcome)

    def refusal(self, receiver: str, exc: Exception, group: tuple, client: str | None,
                now: float, outcome: str | None = None) -> None:
        """Keep one refusal (also a family refused inside an accepted OTLP export)."""
        reason = str(exc)
        if len(reason) > _REASON_CHARS:
            reason = reason[:_REASON_CHARS - 3] + "..."
        self.refusals.append(Refusal(now, receiver, group, client, outcome or outcome_of(exc),
                                     reason))

    def count_request(self, receiver: str, outcome: str, points: int = 0) -> None:
        key = (receiver, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1
        if points:
            point_key = (receiver, "refused" if outcome not in POINT_OUTCOMES else outcome)
            self.points[point_key] = self.points.get(point_key, 0) + points

    def refused_points(self, receiver: str, outcome: str, points: int) -> None:
        key = (receiver, outcome)
        self.points[key] = self.points.get(key, 0) + points

    def auth_failed(self, receiver: str, reason: str) -> None:
        key = (receiver, reason)
        self.auth_failures[key] = self.auth_failures.get(key, 0) + 1

    # ---- the exporter ----------------------------------------------------------------------

    def scraped(self, format_: str, seconds: float) -> None:
        self.scrapes[format_] = self.scrapes.get(format_, 0) + 1
        self.scrape_duration.observe((format_,), seconds)


def batch_points(batch) -> int:
    """The series points of a parsed push (what ``otelgravel_receiver_points_total`` counts)."""
    n = 0
    for family in batch:
        n += len(family.points)
    return n
