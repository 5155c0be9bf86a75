"""The cost of UTF-8 names to the push parsers: a body of ``LINES`` sample lines with legacy names
(the fast path, which quoted names must not slow down) and the same body with quoted names
(``{"req.total","url.path"="/p1"} 1``, the careful path), as text 0.0.4 and OpenMetrics.

In-process, each body parsed ``reps`` times with new values every time (so neither the text
parser's shape memory nor its line cache serves it: every line is read), the four kinds
alternating so that load from other processes spreads over all; medians.
Results: ``result["utf8_parse"]``.
"""

from __future__ import annotations

import statistics
import time

from common import REPO_DIR

NAME = "utf8_parse"
INITIAL = None
LINES = 10_000


def _body(lines: int, value: int, quoted: bool, om: bool) -> bytes:
    if quoted:
        head = ['# HELP "req.x" Requests.', '# TYPE "req.x" counter']
        rows = [f'{{"req.x_total",code="200","url.path"="/p{i}"}} {value + i}' for i in range(lines)]
    else:
        head = ["# HELP req_x Requests.", "# TYPE req_x counter"]
        rows = [f'req_x_total{{code="200",url_path="/p{i}"}} {value + i}' for i in range(lines)]
    return ("\n".join(head + rows + (["# EOF"] if om else [])) + "\n").encode()


def run(bench) -> None:
    try:
        bench.result[NAME] = _measure(LINES // 5 if bench.args.quick else LINES,
                                      3 if bench.args.quick else 9)
    except Exception as exc:
        bench.error("utf8 parse", exc)


def _measure(lines: int, reps: int) -> dict:
    import sys
    sys.path.insert(0, str(REPO_DIR))
    from otelgravel.formats.openmetrics import parse_openmetrics
    from otelgravel.formats.prom_text import parse_prom_text

    kinds = {f"{fmt}_{names}": (parse, names == "quoted", fmt == "openmetrics")
             for fmt, parse in (("text", parse_prom_text), ("openmetrics", parse_openmetrics))
             for names in ("legacy", "quoted")}
    runs: dict = {k: [] for k in kinds}
    for rep in range(reps):
        for kind, (parse, quoted, om) in kinds.items():
            body = _body(lines, rep * lines, quoted, om)
            start = time.perf_counter()
            parse(body)
            runs[kind].append(time.perf_counter() - start)
    ms = {k: round(statistics.median(v) * 1000, 1) for k, v in runs.items()}
    return {"lines": lines, "reps": reps, "ms": ms,
            "runs_ms": {k: [round(x * 1000, 1) for x in v] for k, v in runs.items()}}


def markdown(result: dict) -> str:
    d = result.get(NAME)
    if not d:
        return ""
    ms = d["ms"]
    return "\n".join([
        f"### Push parsers, legacy vs quoted UTF-8 names ({d['lines']} lines, {d['reps']} reps)", "",
        "| format | legacy names ms | quoted names ms |", "|---|---|---|",
        f"| text 0.0.4 | {ms['text_legacy']} | {ms['text_quoted']} |",
        f"| OpenMetrics | {ms['openmetrics_legacy']} | {ms['openmetrics_quoted']} |"])
