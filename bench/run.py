#!/usr/bin/env python3
"""otelgravel vs the Prometheus Pushgateway, side by side, in one run.

    python3 bench/run.py            # full run, about 6-8 minutes on 2 cores
    python3 bench/run.py --quick    # smoke run, about 1-2 minutes

It installs what is missing (Debian's ``prometheus-pushgateway`` and ``wrk``
with apt-get, Python packages with pip), starts on free 127.0.0.1 ports

  * the Pushgateway (persistence off),
  * otelgravel (``python -m otelgravel`` from this checkout, admin API on),
  * an empty aiohttp handler (bench/empty_app.py), the framework's ceiling,

and for each store size (1, 2,000, 20,000 groups) fills both gateways with a
bounded concurrent aiohttp loader, then, alternating between the targets and
repeating, measures scrape time (text 0.0.4 and OpenMetrics) and push
throughput and latency with wrk (16 connections, bench/push.lua). Then OTLP
ingest (otelgravel only) and resident memory per stored series. Medians of
the repetitions go to ``bench/results/<timestamp>.json``, a chart to
``bench/results/<timestamp>.png``, and a markdown table to stdout.

Everything is bounded: every request and subprocess has a timeout, fills
stop at a deadline and record the size they reached, and all started
processes (each in its own process group) are killed on exit, error or
Ctrl-C. Only loopback addresses are used.

The parts: cli.py (flags, lifecycle, output), harness.py (the run and its shared servers),
scenarios.py (what is measured, in order: scenario_*.py), servers.py (processes), loadgen.py
(aiohttp loader and wrk), report.py (targets, tables, chart), machine.py (machine, CPU load),
deps.py (installs), common.py (names and constants).
"""


import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
