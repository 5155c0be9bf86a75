"""The scenarios a run measures, in this order. Adding one: a module (see README.md), one line here.

A scenario module has ``NAME`` (its key in the results JSON and its name for ``--only``),
``INITIAL`` (that key's value before it runs, e.g. ``[]`` or ``None``) and ``run(bench)``
(measures, writes ``bench.result[NAME]``); optionally ``add_args(parser)`` (its own flags) and
``markdown(result) -> str`` (its section of the printed report).
"""

import scenario_durable
import scenario_limits
import scenario_otlp
import scenario_prom3
import scenario_redis
import scenario_security
import scenario_stages
import scenario_telemetry
import scenario_utf8_parse

SCENARIOS = [
    scenario_stages,
    scenario_otlp,
    scenario_durable,
    scenario_redis,
    scenario_telemetry,
    scenario_prom3,
    scenario_security,
    scenario_limits,
    scenario_utf8_parse,
]
