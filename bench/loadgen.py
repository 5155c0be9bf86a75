"""Load: the bounded aiohttp loader (fills, single pushes, scrapes) and wrk runs with bench/push.lua."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from typing import Any

from common import PUSH_LUA

def _session(limit: int = 64):
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        auto_decompress=False,
    )


async def fill(base: str, first: int, last: int, body: bytes, concurrency: int,
               deadline_s: float, request_timeout: float) -> dict[str, Any]:
    """PUT the push body to groups first..last-1 with `concurrency` workers, until done or deadline."""
    import aiohttp

    from workload import PUSH_CONTENT_TYPE, push_path

    t0 = time.monotonic()
    deadline = t0 + deadline_s
    next_group = first
    ok: set[int] = set()
    failures: dict[str, int] = {}
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    headers = {"Content-Type": PUSH_CONTENT_TYPE}

    async with _session(concurrency) as session:
        async def worker() -> None:
            nonlocal next_group
            while next_group < last and time.monotonic() < deadline:
                group = next_group
                next_group += 1
                try:
                    async with session.put(base + push_path(group), data=body, headers=headers,
                                           timeout=timeout) as resp:
                        await resp.read()
                        if 200 <= resp.status < 300:
                            ok.add(group)
                        else:
                            failures[f"HTTP {resp.status}"] = failures.get(f"HTTP {resp.status}", 0) + 1
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    key = type(exc).__name__
                    failures[key] = failures.get(key, 0) + 1

        if last > first:
            await asyncio.wait_for(
                asyncio.gather(*(worker() for _ in range(concurrency))),
                timeout=deadline_s + request_timeout + 5,
            )
    seconds = time.monotonic() - t0
    contiguous = first
    while contiguous in ok:
        contiguous += 1
    return {
        "first": first, "target": last, "pushed_ok": len(ok), "contiguous_to": contiguous,
        "failures": failures, "seconds": round(seconds, 3),
        "pushes_per_s": round(len(ok) / seconds, 1) if seconds > 0 else None,
        "hit_deadline": contiguous < last,
    }


async def push_once(base: str, path: str, body: bytes, content_type: str, method: str = "PUT",
                    timeout_s: float = 60.0) -> tuple[int, bytes]:
    import aiohttp

    async with _session(1) as session:
        async with session.request(method, base + path, data=body, headers={"Content-Type": content_type},
                                   timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return resp.status, await resp.read()


async def scrape(base: str, accept: str, timeout_s: float) -> tuple[dict[str, Any], bytes]:
    import aiohttp

    async with _session(1) as session:
        t0 = time.perf_counter()
        async with session.get(base + "/metrics", headers={"Accept": accept, "Accept-Encoding": "identity"},
                               timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            body = await resp.read()
            seconds = time.perf_counter() - t0
            return {
                "status": resp.status, "seconds": seconds, "bytes": len(body),
                "content_type": resp.headers.get("Content-Type", ""),
            }, body


def count_series(body: bytes, job: str) -> dict[str, int]:
    """Sample lines carrying job="<job>" (the stored series of the benchmark's groups), and groups."""
    needle = f'job="{job}"'.encode()
    series = groups = 0
    for line in body.split(b"\n"):
        if not line or line[:1] == b"#" or needle not in line:
            continue
        series += 1
        if line.startswith(b"push_time_seconds{"):
            groups += 1
    return {"series": series, "groups": groups}


# --------------------------------------------------------------------------- wrk


def run_wrk(url: str, lua_args: list[str], duration: float, connections: int, threads: int,
            timeout_s: float) -> dict[str, Any]:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", f"--timeout={timeout_s:g}s",
        "-s", str(PUSH_LUA), url, "--", *lua_args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    m = re.search(r"^WRK_JSON (\{.*\})$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}")
    data = json.loads(m.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    secs = data["duration_us"] / 1e6
    lat = data["latency_us"]
    errors = sum(data["errors"].values())
    return {
        "requests": data["requests"],
        "seconds": round(secs, 3),
        "rps": round(data["requests"] / secs, 1) if secs else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 3),
        "p90_ms": round(lat["p90"] / 1000, 3),
        "p99_ms": round(lat["p99"] / 1000, 3),
        "max_ms": round(lat["max"] / 1000, 3),
        "errors": data["errors"],
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "ok": errors == 0 and not non2xx,
    }

