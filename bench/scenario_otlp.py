"""OTLP ingest (otelgravel only): wrk POSTs one protobuf ExportMetricsServiceRequest to /v1/metrics.

Results: ``result["otlp"]``: points per request, a probe's status and rejected points, the wrk runs,
the median data points/s and p99, and the series stored after.
"""

from __future__ import annotations

import asyncio
from typing import Any

from common import HOST, OG, disturbed, log, median, pick_runs
from loadgen import push_once, scrape

NAME = "otlp"
INITIAL = None


def run(bench) -> None:
    server = bench.usable(OG)
    if server is None:
        return
    from workload import OTLP_CONTENT_TYPE, otlp_request_points

    points = otlp_request_points(bench.otlp_body)
    base = f"http://{HOST}:{server.otlp_port}"
    out: dict[str, Any] = {"points_per_request": points, "request_bytes": len(bench.otlp_body),
                           "connections": bench.args.otlp_connections, "runs": []}
    bench.result["otlp"] = out
    try:
        status, body = asyncio.run(push_once(base, "/v1/metrics", bench.otlp_body, OTLP_CONTENT_TYPE,
                                             method="POST", timeout_s=30))
        out["probe_status"] = status
        out["probe_rejected_points"] = _rejected_points(body)
        if status != 200:
            bench.note(f"OTLP probe answered {status}: {body[:300]!r}")
    except Exception as exc:
        bench.error("otlp probe", exc)
        return
    for rep in range(bench.args.reps):
        try:
            res = bench.wrk(server, "otlp", [str(bench.otlp_file), "0", OTLP_CONTENT_TYPE, "POST", "/v1/metrics"],
                        bench.args.otlp_connections, 1, base=base)
        except Exception as exc:
            bench.error("wrk otlp", exc)
            continue
        res["points_per_s"] = round(res["rps"] * points, 0)
        out["runs"].append(res)
        log(f"otlp rep {rep + 1}: {res['rps']:.1f} req/s = {res['points_per_s']:.0f} points/s, "
            f"p99 {res['p99_ms']:.1f} ms{'' if res['ok'] else ' (ERRORS)'}")
    good = pick_runs(out["runs"])
    out["disturbed_runs_in_median"] = sum(1 for r in good if disturbed(r))
    out["points_per_s"] = median([r["points_per_s"] for r in good])
    out["p99_ms"] = median([r["p99_ms"] for r in good])
    out["runs_with_errors"] = sum(1 for r in out["runs"] if not r["ok"])
    try:
        meta, body = asyncio.run(scrape(server.base, "text/plain", bench.args.scrape_timeout))
        out["series_after"] = sum(1 for line in body.split(b"\n") if line.startswith(b"bench_requests"))
    except Exception as exc:
        bench.error("otlp scrape", exc)


def _rejected_points(body: bytes) -> int | None:
    try:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceResponse,
        )

        return ExportMetricsServiceResponse.FromString(body).partial_success.rejected_data_points
    except Exception:
        return None
