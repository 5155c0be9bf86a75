"""The snapshot codec: the whole state at one log position, in a format of our own.

A snapshot is a sequence of frames (``framing.py``: length, CRC32, header CRC), each holding one
JSON document; JSON because its C codec is fast and its decoder builds only dicts, lists,
strings and numbers, so reading a snapshot runs no code whatever the file holds. Objects are
rebuilt from a fixed table of our own classes by setting their slots. Frames:

``head``    ``{"format": "otelgravel-snapshot", "version": 1, "position": N, "point": [slots],
            "classes": {name: [slots]}}``: the log position the snapshot includes (replay skips
            records at or before it) and the slot names each class had when it was written.
``groups``  grouping keys with their push and failure times, up to ``CHUNK`` per frame.
``family``  a family's name, type, help and unit, and up to ``CHUNK`` of its series.
``otlp``    the OTLP per-source memory (sources in LRU order, pending corrections).
``keys``    idempotency keys (``keys.py``), up to ``CHUNK`` per frame, in table order: the
            table's clock ``now`` and rows of key, fingerprint (hex), time, outcome. Absent
            when the table is empty (a snapshot of a gateway that never saw a key is unchanged).
``end``     how many groups and series came before: a snapshot without it is not whole.

Chunks are independent: each has its own string table (``s``: label names and values, so a
series' labels are a list of indexes) and clear-mode table (``m``).

Generic over the model: a series row is its key, group, times, window, then the stored
``Point``'s slots in the order ``head.point`` names them, each through the codec of its slot in
``POINT_SLOTS`` (pairs, modes, exemplars), or, for a slot without an entry there, the generic
tagged codec (``_enc``/``_dec``: lists, tuples, dicts, arrays and the classes of ``CLASSES``). A
field added to ``Point`` (or to a window, a sketch, an OTLP source) is therefore written and
read with no change here; an entry in ``POINT_SLOTS`` only makes it smaller. Reading a snapshot
written before a slot existed leaves that slot None; a snapshot naming a slot this gateway does
not have is refused (it was written by a newer gateway).
"""
from __future__ import annotations

import base64
import inspect
import json
import sys
from array import array
from itertools import repeat

from ..core import windows
from ..core.store import SNAPSHOT_VERSION, Store
from ..model import ClearMode, Exemplar, NativeHistogram, Point
from ..translate.sources import SourceMemory, _Source
from .framing import DamagedFile, frame, read_frames

FORMAT = "otelgravel-snapshot"
VERSION = 1
CHUNK = 5000  # series (or groups) per frame

# Our classes the generic codec may build, by a stable name (never a module path).
CLASSES = {"exemplar": Exemplar, "clearmode": ClearMode, "otlp.source": _Source,
           "nativehistogram": NativeHistogram,
           "sketch": windows._Sketch,
           **{f"window.{agg}": cls for agg, cls in windows._BY_AGG.items()}}
_NAME_OF = {cls: name for name, cls in CLASSES.items()}


def _slots(cls) -> tuple[str, ...]:
    return windows._all_slots(cls)


class SnapshotError(ValueError):
    pass


# Points are rebuilt by Point(*slot values): its parameters must be its slots, in their order.
if list(inspect.signature(Point).parameters) != list(Point.__slots__):
    raise TypeError("Point.__init__ must take its slots in __slots__ order "
                    "(state/snapshot.py rebuilds points so)")


# ---- the generic tagged codec -------------------------------------------------------------------

_SCALARS = (float, int, str, bool, type(None))


def _enc(v):
    t = type(v)
    if t in _SCALARS:
        return v
    if t is list:
        return ["L", *map(_enc, v)]
    if t is tuple:
        return ["T", *map(_enc, v)]
    if t is dict:
        out = ["D"]
        for k, x in v.items():
            out += (_enc(k), _enc(x))
        return out
    if t is array:
        return ["A", v.typecode, v.tolist()]
    name = _NAME_OF.get(t)
    if name is None:
        raise SnapshotError(f"cannot write a {t.__name__} into a snapshot")
    return ["O", name, *[_enc(getattr(v, s)) for s in _slots(t)]]


class _Reader:
    """Decodes with the slot lists the file was written with."""

    def __init__(self, classes: dict):
        self.layout = {}
        for name, slots in classes.items():
            cls = CLASSES.get(name)
            if cls is None:
                raise SnapshotError(f"unknown class {name!r}")
            have = set(_slots(cls))
            extra = [s for s in slots if s not in have]
            if extra:
                raise SnapshotError(f"{name} has fields {extra} this gateway does not know "
                                    "(a snapshot of a newer gateway?)")
            self.layout[name] = (cls, slots, [s for s in _slots(cls) if s not in slots])

    def dec(self, v):
        if type(v) is not list:
            return v
        tag = v[0]
        if tag == "L":
            return [self.dec(x) for x in v[1:]]
        if tag == "T":
            return tuple(self.dec(x) for x in v[1:])
        if tag == "D":
            it = iter(v[1:])
            return {self.dec(k): self.dec(x) for k, x in zip(it, it)}
        if tag == "A":
            if v[1] not in ("i", "I", "Q"):
                raise SnapshotError(f"array type {v[1]!r}")
            return array(v[1], v[2])
        if tag == "O":
            cls, slots, missing = self.layout[v[1]]
            obj = object.__new__(cls)
            setter = object.__setattr__  # frozen dataclasses too
            for slot, x in zip(slots, v[2:], strict=True):
                setter(obj, slot, self.dec(x))
            for slot in missing:
                setter(obj, slot, None)
            return obj
        raise SnapshotError(f"unknown tag {tag!r}")


# ---- per-slot codecs of a stored Point ---------------------------------------------------------

class _Chunk:
    """A frame's tables, while it is written: strings, label pairs (of string indexes) and modes."""

    def __init__(self):
        self.strings: dict[str, int] = {}
        self.pairs: dict[tuple, int] = {}
        self.modes: dict[ClearMode, int] = {}

    def _string(self, text: str) -> int:
        i = self.strings.get(text)
        if i is None:
            i = self.strings[text] = len(self.strings)
        return i

    def labels(self, labels) -> list:
        pairs = self.pairs
        out = []
        for pair in labels:
            i = pairs.get(pair)
            if i is None:
                i = pairs[pair] = len(pairs)
            out.append(i)
        return out

    def mode(self, mode: ClearMode) -> int:
        i = self.modes.get(mode)
        if i is None:
            i = self.modes[mode] = len(self.modes)
        return i

    def tables(self) -> dict:
        string = self._string
        pairs = [string(x) for pair in self.pairs for x in pair]  # fills the strings first
        return {"s": list(self.strings), "p": pairs,
                "m": [[m.kind, m.text, m.agg, m.quantile, m.seconds] for m in self.modes]}


def _pairs_out(c: _Chunk, v):
    return [x for pair in v for x in pair]


def _pairs_in(t, v):
    it = iter(v)
    return list(zip(it, it))


def _exemplar_out(c: _Chunk, e):
    return [c.labels(e.labels), e.value, e.timestamp]


def _exemplar_in(t, v):
    return Exemplar(t.labels(v[0]), v[1], v[2])


def _bucket_exemplars_out(c: _Chunk, d):
    return [x for le, e in d.items() for x in (le, _exemplar_out(c, e))]


def _bucket_exemplars_in(t, v):
    it = iter(v)
    return {le: _exemplar_in(t, e) for le, e in zip(it, it)}


# Column codecs: ``(encode(chunk, values) -> JSON, decode(tables, column) -> values)``; a
# column of Nones only is written as null by the caller.

def _each(enc, dec):
    """A column codec from a codec of one (non-None) value."""
    return (lambda c, vs: [None if v is None else enc(c, v) for v in vs],
            lambda t, col: [None if v is None else dec(t, v) for v in col])


def _numbers_out(c: _Chunk, vs):
    """Floats as little-endian doubles in base64 (parsed in C, 8 bytes a value); a column that
    is not floats only stays a JSON list."""
    if all(type(v) is float for v in vs):
        packed = array("d", vs)
        if _BIG_ENDIAN:
            packed.byteswap()
        return {"f8": base64.b64encode(packed).decode("ascii")}
    return list(vs)


def _numbers_in(t, col):
    if type(col) is dict:
        packed = array("d")
        packed.frombytes(base64.b64decode(col["f8"], validate=True))
        if _BIG_ENDIAN:
            packed.byteswap()
        return packed.tolist()
    return col


NUMBERS = (_numbers_out, _numbers_in)
_BIG_ENDIAN = sys.byteorder == "big"

# slot -> column codec; "labels" is the series key, not written. A slot of Point without an
# entry is written by the generic tagged codec.
POINT_SLOTS = {
    "mode": (lambda c, vs: [c.mode(m) for m in vs],
             lambda t, col: list(map(t.modes.__getitem__, col))),
    "value": NUMBERS, "sum": NUMBERS, "count": NUMBERS,
    "buckets": _each(_pairs_out, _pairs_in),
    "quantiles": _each(_pairs_out, _pairs_in),
    "exemplar": _each(_exemplar_out, _exemplar_in),
    "bucket_exemplars": _each(_bucket_exemplars_out, _bucket_exemplars_in),
}
_GENERIC = _each(lambda c, v: _enc(v), lambda t, v: t.dec(v))


class _Tables:
    __slots__ = ("pairs", "modes", "dec")

    def __init__(self, doc: dict, dec=None):
        self.dec = dec
        strings = doc["s"]
        it = iter(doc["p"])
        self.pairs = [(strings[a], strings[b]) for a, b in zip(it, it)]
        self.modes = [ClearMode(k, text, agg, float(q), float(sec))
                      for k, text, agg, q, sec in doc["m"]]

    def labels(self, idx: list) -> tuple:
        return tuple(map(self.pairs.__getitem__, idx))


# ---- writing ---------------------------------------------------------------------------------

def _point_writers():
    return [(slot, POINT_SLOTS.get(slot, _GENERIC)[0]) for slot in Point.__slots__
            if slot != "labels"]


def _dump(doc) -> bytes:
    return frame(json.dumps(doc, separators=(",", ":")).encode())


def encode_snapshot(store: Store, memory: SourceMemory | None, position: int, keys=None):
    """Yield the frames of a snapshot of ``store``, ``memory`` and the idempotency ``keys``
    (a ``KeyTable``, or None) at log ``position``."""
    writers = _point_writers()
    yield _dump({"format": FORMAT, "version": VERSION, "store": SNAPSHOT_VERSION,
                 "position": position, "point": [s for s, _ in writers],
                 "classes": {name: list(_slots(cls)) for name, cls in CLASSES.items()}})
    group_index = {}
    groups = list(store.groups.values())
    for start in range(0, len(groups), CHUNK):
        c = _Chunk()
        rows = []
        for g in groups[start:start + CHUNK]:
            group_index[g.labels] = len(group_index)
            rows.append([c.labels(g.labels), g.push_time, g.failure_time])
        yield _dump({"t": "groups", **c.tables(), "rows": rows})
    count = 0
    for f in store.families.values():
        series = list(f.series.values())
        for start in range(0, len(series), CHUNK):
            part = series[start:start + CHUNK]
            c = _Chunk()
            labels = c.labels
            windows = [None if s.window is None else _enc(s.window) for s in part]
            points = [s.point for s in part]
            columns = {}
            for slot, enc in writers:
                values = [getattr(p, slot) for p in points]
                columns[slot] = enc(c, values) if any(v is not None for v in values) else None
            count += len(part)
            yield _dump({"t": "family", "name": f.name, "type": f.type, "help": f.help,
                         "unit": f.unit, "keys": [labels(s.key) for s in part],
                         "groups": [group_index[s.group.labels] for s in part],
                         "created": _numbers_out(c, [s.created for s in part]),
                         "updated": _numbers_out(c, [s.updated for s in part]),
                         "windows": windows if any(w is not None for w in windows) else None,
                         "point": columns, **c.tables()})
    if memory is not None:
        yield _dump({"t": "otlp", "sources": [[_enc(k), _enc(v)] for k, v in memory.sources.items()],
                     "corrections": [_enc(v) for v in memory.corrections]})
    if keys is not None and len(keys):
        now, rows = keys.dump()
        for start in range(0, len(rows), CHUNK):
            yield _dump({"t": "keys", "now": now, "rows": [
                [k, fp.hex(), t, o] for k, fp, t, o in rows[start:start + CHUNK]]})
    yield _dump({"t": "end", "groups": len(groups), "series": count})


# ---- reading ---------------------------------------------------------------------------------

class Snapshot:
    __slots__ = ("position", "store", "otlp", "keys")

    def __init__(self, position: int, store: dict, otlp: tuple | None, keys: tuple | None = None):
        self.position = position
        self.store = store  # Store.restore's input
        self.otlp = otlp    # SourceMemory.restore's input, or None
        self.keys = keys    # KeyTable.restore's input, or None


def decode_snapshot(data, path: str) -> Snapshot:
    """Read a whole snapshot; DamagedFile (file and offset) for anything but one we wrote."""
    frames = read_frames(data, path, torn_ok=False)
    offset = 0
    try:
        offset, payload = next(frames)
        head = json.loads(payload)
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise SnapshotError("not an otelgravel snapshot")
        if head.get("version") != VERSION or head.get("store") != SNAPSHOT_VERSION:
            raise SnapshotError(f"snapshot version {head.get('version')}/{head.get('store')} "
                                f"(this gateway reads {VERSION}/{SNAPSHOT_VERSION})")
        reader = _Reader(head["classes"])
        dec = reader.dec
        readers = []
        have = set(Point.__slots__)
        for slot in head["point"]:
            if slot not in have:
                raise SnapshotError(f"series have field {slot!r} this gateway does not know")
            readers.append(POINT_SLOTS.get(slot, _GENERIC)[1])
        point_slots = head["point"]
        missing = [s for s in Point.__slots__ if s != "labels" and s not in point_slots]
        groups = []
        families: dict = {}
        otlp = None
        idempotency = None
        end = None
        for offset, payload in frames:
            if end is not None:
                raise SnapshotError("frames after the end")
            doc = json.loads(payload)
            kind = doc["t"]
            if kind == "end":
                end = doc
                continue
            if kind == "otlp":
                otlp = ([(dec(k), dec(v)) for k, v in doc["sources"]],
                        [dec(v) for v in doc["corrections"]])
                continue
            if kind == "keys":
                rows = [] if idempotency is None else idempotency[1]
                rows += [(str(k), bytes.fromhex(fp), float(t), o) for k, fp, t, o in doc["rows"]]
                idempotency = (float(doc["now"]), rows)
                continue
            t = _Tables(doc, dec)
            if kind == "groups":
                groups += [(t.labels(g), push, failure) for g, push, failure in doc["rows"]]
                continue
            if kind != "family":
                raise SnapshotError(f"unknown frame type {kind!r}")
            name = doc["name"]
            entry = families.get(name)
            if entry is None:
                entry = families[name] = (name, doc["type"], doc["help"], doc["unit"], [])
            pair = t.pairs.__getitem__
            keys = [tuple(map(pair, k)) for k in doc["keys"]]
            n = len(keys)
            columns = doc["point"]
            values = {"labels": keys}
            for slot, read in zip(point_slots, readers):
                column = columns[slot]
                if column is None:
                    column = repeat(None, n)
                else:
                    column = read(t, column)
                    if len(column) != n:
                        raise SnapshotError(f"column {slot!r} has {len(column)} values for "
                                            f"{n} series")
                values[slot] = column
            for slot in missing:
                values[slot] = repeat(None, n)
            points = list(map(Point, *(values[slot] for slot in Point.__slots__)))
            windows = doc["windows"]
            windows = repeat(None, n) if windows is None else [
                None if w is None else dec(w) for w in windows]
            group_labels = [groups[i][0] for i in doc["groups"]]
            created, updated = _numbers_in(t, doc["created"]), _numbers_in(t, doc["updated"])
            if not len(group_labels) == len(created) == len(updated) == n:
                raise SnapshotError("a family frame's columns differ in length")
            entry[4].extend(zip(keys, group_labels, points, windows, created, updated))
        if end is None:
            raise SnapshotError("the snapshot has no end frame (not written whole)")
        series = sum(len(f[4]) for f in families.values())
        if end["groups"] != len(groups) or end["series"] != series:
            raise SnapshotError(f"the end frame counts {end['groups']} groups and "
                                f"{end['series']} series, the file holds {len(groups)} and {series}")
    except StopIteration:
        raise DamagedFile(path, 0, "empty snapshot") from None
    except DamagedFile:
        raise
    except (SnapshotError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            RecursionError) as exc:
        raise DamagedFile(path, offset, f"{type(exc).__name__}: {exc}") from None
    return Snapshot(head["position"],
                    {"version": SNAPSHOT_VERSION, "groups": groups,
                     "families": list(families.values())}, otlp, idempotency)
