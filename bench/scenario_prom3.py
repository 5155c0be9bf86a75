"""PrometheusProto vs text scrape cost, in the same run (target: protobuf at most 1.5x text).

In-process, on one store of ``SERIES`` series (quick: a tenth) shaped like the stages' pushes
(counters, gauges, a few classic histograms, 100 series per group): the text 0.0.4 writer
(``write_text(...).encode()``) and the PrometheusProto writer (``write_protobuf``) render it
``changed`` (every series' cached rendering dropped, as a push of every group does; label
renderings kept) and ``unchanged`` (the caches warm), alternating text and protobuf each
repetition so that load from other processes spreads over both; medians of the CPU time the
scrape takes (``process_time``: on a shared machine wall time measures the neighbours). HTTP
and gzip cost the same per byte for both (the bodies are within a few percent in size) and are
left out.
The escaping schemes (SPEC 10): the same legacy store scraped as text with ``escaping=values``
(a legacy name is the same in every scheme: it must cost what the default does), and a store of
the same shape whose family and label names are dotted (``http.req``, ``http.method``), scraped
as text with ``allow-utf-8`` and with ``underscores`` and as protobuf (a rendering per scheme).
Results: ``result["prom3"]``.
"""

from __future__ import annotations

import statistics
import time

from common import REPO_DIR

NAME = "prom3"
INITIAL = None
SERIES = 260_000


def _store(series: int, utf8: bool = False):
    import sys
    sys.path.insert(0, str(REPO_DIR))
    from otelgravel.core.store import Store
    from otelgravel.model import COUNTER, GAUGE, HISTOGRAM, INF, REPLACE, SUM, Family, Point

    dot = "http." if utf8 else ""
    store = Store(max_series=series * 2)
    for g in range(series // 100):
        store.apply([
            Family(dot + "req", COUNTER, "Requests.", points=[
                Point(((dot + "method", "get"), ("route", f"/r{i}")), SUM, i) for i in range(50)]),
            Family(dot + "lat", HISTOGRAM, points=[
                Point((("route", f"/r{i}"),), SUM, buckets=[(0.1, 1), (1.0, 2), (INF, 3)],
                      sum=1.5, count=3) for i in range(5)]),
            Family(dot + "temp", GAUGE, points=[Point(((dot + "k", f"v{i}"),), REPLACE, 1.5)
                                                for i in range(45)])], (("job", f"j{g}"),), 1.0)
    return store


def run(bench) -> None:
    try:
        bench.result[NAME] = _measure(SERIES // 10 if bench.args.quick else SERIES,
                                      1 if bench.args.quick else 3)
    except Exception as exc:
        bench.error("prom3 scrape", exc)


def _measure(series: int, reps: int) -> dict:
    store = _store(series)
    utf8 = _store(series, utf8=True)
    from otelgravel.formats.exposition import write_text
    from otelgravel.formats.protobuf_exposition import write_protobuf

    writers = {"text": lambda: write_text(store, 2.0).encode(),
               "protobuf": lambda: write_protobuf(store, 2.0),
               "text_values": lambda: write_text(store, 2.0, "values").encode(),
               "utf8_text": lambda: write_text(utf8, 2.0, "allow-utf-8").encode(),
               "utf8_text_underscores": lambda: write_text(utf8, 2.0).encode(),
               "utf8_protobuf": lambda: write_protobuf(utf8, 2.0, "allow-utf-8")}
    runs: dict = {f"{w}_{k}": [] for w in writers for k in ("changed", "unchanged")}
    sizes = {}
    for write in writers.values():
        write()  # each scheme's label renderings made once, as a first scrape makes them
    for _ in range(reps):
        for name, write in writers.items():
            for family in (utf8 if name.startswith("utf8") else store).families.values():
                for s in family.series.values():
                    s.text = s.om = s.pb = None
            start = time.process_time()
            sizes[name] = len(write())
            runs[f"{name}_changed"].append(time.process_time() - start)
            start = time.process_time()
            write()
            runs[f"{name}_unchanged"].append(time.process_time() - start)
    ms = {k: round(statistics.median(v) * 1000, 1) for k, v in runs.items()}
    return {"series": store.series_count, "reps": reps, "ms": ms, "bytes": sizes,
            "runs_ms": {k: [round(x * 1000, 1) for x in v] for k, v in runs.items()},
            "ratio_changed": round(ms["protobuf_changed"] / ms["text_changed"], 2),
            "ratio_unchanged": round(ms["protobuf_unchanged"] / ms["text_unchanged"], 2)}


def markdown(result: dict) -> str:
    d = result.get(NAME)
    if not d:
        return ""
    ms = d["ms"]
    return "\n".join([
        f"### PrometheusProto vs text scrape ({d['series']} series, in-process, {d['reps']} reps)", "",
        "| store | text ms | protobuf ms | protobuf / text (target <= 1.5) |", "|---|---|---|---|",
        f"| every series changed | {ms['text_changed']} | {ms['protobuf_changed']} | {d['ratio_changed']} |",
        f"| unchanged | {ms['text_unchanged']} | {ms['protobuf_unchanged']} | {d['ratio_unchanged']} |",
        "", f"Bodies: text {d['bytes']['text']} bytes, protobuf {d['bytes']['protobuf']} bytes.",
        "", "Escaping schemes (text ms; a legacy store costs the same in every scheme):", "",
        "| store, scrape | changed | unchanged |", "|---|---|---|",
        *(f"| {label} | {ms[k + '_changed']} | {ms[k + '_unchanged']} |" for label, k in (
            ("legacy names, text (underscores)", "text"), ("legacy names, text escaping=values", "text_values"),
            ("dotted names, text allow-utf-8", "utf8_text"),
            ("dotted names, text underscores", "utf8_text_underscores"),
            ("dotted names, protobuf allow-utf-8", "utf8_protobuf")) if k + "_changed" in ms)])
