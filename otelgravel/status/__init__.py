"""The status page (``GET /``) and the JSON API (``/api/v1/status``, ``/api/v1/metrics``,
``/api/v1/refusals``) on the exporter's endpoint (SPEC 7)."""
