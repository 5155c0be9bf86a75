"""Keep the store across restarts in one file, like the Pushgateway's ``--persistence.file``.

A save pickles the series a thousand at a time, yielding to the event loop in between, so pushes
are not stalled while a large store is written (pickling 100,000 series takes about a second);
each series is consistent, the file as a whole is the state over those milliseconds, which is what
a restart needs. The file is written to a temporary name and renamed over the old one, so a crash
mid-write never leaves a torn file. Only load files this gateway wrote: unpickling runs code.
"""
from __future__ import annotations

import asyncio
import os
import pickle

from .core.store import SNAPSHOT_VERSION, Store, family_row, group_row, series_row
from .errors import GravelError

CHUNK = 1000  # series pickled between two yields to the event loop (about 10 ms of work)
FILE_VERSION = 1


class PersistenceError(GravelError):
    pass


async def save(store: Store, path: str, extra: object = None) -> int:
    """Write the store (and ``extra``, e.g. the OTLP source memory) to ``path``; series written."""
    families = []
    count = 0
    for family in list(store.families.values()):
        series = list(family.series.values())
        blobs = []
        for start in range(0, len(series), CHUNK):
            rows = [series_row(s) for s in series[start:start + CHUNK]]
            blobs.append(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
            count += len(rows)
            await asyncio.sleep(0)
        families.append(family_row(family, blobs))
    data = {"file_version": FILE_VERSION, "snapshot_version": SNAPSHOT_VERSION,
            "groups": [group_row(g) for g in store.groups.values()], "families": families,
            "extra": extra}
    await asyncio.get_running_loop().run_in_executor(None, _write, data, path)
    return count


def _write(data: dict, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path: str) -> tuple[dict, object] | None:
    """``(Store.snapshot(), extra)`` as saved in ``path``; None when there is no file yet."""
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)
        if not isinstance(data, dict) or data.get("file_version") != FILE_VERSION \
                or data.get("snapshot_version") != SNAPSHOT_VERSION:
            raise PersistenceError(f"persistence file {path} is not an otelgravel file of "
                                   f"version {FILE_VERSION}")
        families = [(name, type_, help_, unit, [row for blob in blobs for row in pickle.loads(blob)])
                    for name, type_, help_, unit, blobs in data["families"]]
    except FileNotFoundError:
        return None
    except PersistenceError:
        raise
    except Exception as exc:  # a torn or foreign file: unpickling can raise nearly anything
        raise PersistenceError(f"cannot read persistence file {path}: {exc!r}") from exc
    return {"version": SNAPSHOT_VERSION, "groups": data["groups"], "families": families}, data["extra"]
