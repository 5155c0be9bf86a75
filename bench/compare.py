"""Push throughput of a few gateways compared in one run: the same wrk push load on each, in
rotating order, repetition after repetition, so that load from other processes spreads over all."""

from __future__ import annotations

from common import disturbed, log, median, pick_runs


def alternate(bench, servers: dict, label: str, groups: int, auth: dict | None = None,
              reps: int | None = None, cpu: bool = False) -> dict:
    """``{mode: {"runs", "rps", "p99_ms", "disturbed_runs_in_median"}}`` for ``{mode: server}``;
    ``auth``: ``{mode: Authorization header value}`` for the gateways that ask for credentials.
    ``cpu``: each run also has ``cpu_us`` (the server's CPU time, its process group's, per
    request answered) and each mode ``cpu_us`` (their median), which the load of other
    processes changes far less than the throughput."""
    from servers import cpu_seconds
    from workload import VARYING_VALUE

    runs: dict[str, list] = {mode: [] for mode in servers}
    order = list(servers)
    for rep in range(reps or max(2, bench.args.reps)):
        shift = rep % len(order)
        for mode in order[shift:] + order[:shift]:
            before = cpu_seconds(servers[mode]) if cpu else 0.0
            res = bench.wrk(servers[mode], f"{label}-{mode}",
                            [str(bench.body_file), str(groups), "", "", "", VARYING_VALUE,
                             (auth or {}).get(mode, "")],
                            bench.args.connections, bench.args.wrk_threads)
            # (the runs discarded as disturbed, and redone, used the CPU time too)
            answered = res["requests"] + sum(d["requests"] for d in res["discarded_disturbed"])
            if cpu and answered:
                res["cpu_us"] = round((cpu_seconds(servers[mode]) - before) * 1e6 / answered, 2)
            runs[mode].append(res)
            log(f"{label} {mode} rep {rep + 1}: {res['rps']:.0f} pushes/s, p99 {res['p99_ms']:.1f} ms"
                f"{'' if res['ok'] else ' (ERRORS)'}")
    out = {}
    for mode, mode_runs in runs.items():
        good = pick_runs(mode_runs)
        out[mode] = {"runs": mode_runs, "rps": median([r["rps"] for r in good]),
                     "p99_ms": median([r["p99_ms"] for r in good]),
                     "disturbed_runs_in_median": sum(1 for r in good if disturbed(r))}
        if cpu:
            out[mode]["cpu_us"] = median([r["cpu_us"] for r in mode_runs if "cpu_us" in r])
    return out


def push_table(label: str, push: dict) -> list[str]:
    """Markdown rows of ``alternate``'s result: each mode's median, its runs, its p99."""
    lines = [f"| {label} | pushes/s (runs) | p99 ms |", "|---|---|---|"]
    for mode, r in push.items():
        spread = ", ".join(f"{x['rps']:.0f}" for x in r["runs"])
        lines.append(f"| {mode} | {r['rps']:.0f} ({spread}) | {r['p99_ms']:.1f} |")
    return lines
