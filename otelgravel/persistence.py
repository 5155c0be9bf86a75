"""Keep the store across restarts in one file, like the Pushgateway's ``--persistence.file``.

A save pickles the series a thousand at a time, yielding to the event loop in between, so pushes
are not stalled while a large store is written (pickling 100,000 series takes about a second);
each series is consistent, the file as a whole is the state over those milliseconds, which is what
a restart needs. The file is written to a temporary name and renamed over the old one, so a crash
mid-write never leaves a torn file. Loading resolves only the classes the gateway itself writes
(points, clear modes, exemplars, windows, OTLP sources): a pickle naming any other global, which
could run code, is refused.
"""
from __future__ import annotations

import array
import asyncio
import io
import os
import pickle

from .core import windows
from .core.store import SNAPSHOT_VERSION, Store, family_row, group_row, series_row
from .errors import GravelError
from .model import ClearMode, Exemplar, Point
from .translate.otlp import _Source

CHUNK = 1000  # series pickled between two yields to the event loop (about 10 ms of work)
FILE_VERSION = 1


class PersistenceError(GravelError):
    pass


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


# The globals a file of this gateway refers to; arrays are the quantile sketches' logs.
_OWN = {(c.__module__, c.__qualname__): c
        for c in (Point, ClearMode, Exemplar, _Source, windows._Sketch,
                  *_subclasses(windows.Window))}
_OWN[("array", "array")] = array.array
_OWN[("array", "_array_reconstructor")] = array._array_reconstructor


class _OwnFile(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        found = _OWN.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: not a class this "
                                         "gateway writes")
        return found


def _loads(blob: bytes):
    return _OwnFile(io.BytesIO(blob)).load()


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
            data = _OwnFile(fh).load()
        if not isinstance(data, dict) or data.get("file_version") != FILE_VERSION \
                or data.get("snapshot_version") != SNAPSHOT_VERSION:
            raise PersistenceError(f"persistence file {path} is not an otelgravel file of "
                                   f"version {FILE_VERSION}")
        families = [(name, type_, help_, unit, [row for blob in blobs for row in _loads(blob)])
                    for name, type_, help_, unit, blobs in data["families"]]
    except FileNotFoundError:
        return None
    except PersistenceError:
        raise
    except Exception as exc:  # a torn or foreign file: unpickling can raise nearly anything
        raise PersistenceError(f"cannot read persistence file {path}: {exc!r}") from exc
    return {"version": SNAPSHOT_VERSION, "groups": data["groups"], "families": families}, data["extra"]
