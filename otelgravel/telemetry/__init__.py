"""The gateway's own telemetry (SPEC 7).

``counters``: what the edges bump on the request path (plain integers, a pre-bucketed histogram,
the ring of the last refusals): no clock, no I/O, no SDK. ``meter``: the one ``MeterProvider``
that reads them at collection time, and the ``GET /metrics`` route of
``service.telemetry.metrics.address``.
"""
