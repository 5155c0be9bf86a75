"""The snapshot codec: the whole state at one log position, in a format of our own.

A snapshot is a sequence of frames (``framing.py``: length, CRC32, header CRC). A frame's payload
is ``u32 n, n bytes of JSON, then binary columns``: the JSON says what the frame is and lists its
columns (``"b": [[name, typecode, count], ...]``, in the order they follow: ``I`` u32, ``d`` f64,
little-endian), which are read with ``array.frombytes`` (no parsing). JSON because its C decoder
builds only dicts, lists, strings and numbers, and the columns because they are only numbers:
reading a snapshot runs no code whatever the file holds. Objects are rebuilt from a fixed table
of our own classes by setting their slots. Frames:

``head``    ``{"format": "otelgravel-snapshot", "version": 2, "position": N, "point": [slots],
            "classes": {name: [slots]}}``: the log position the snapshot includes (replay skips
            records at or before it) and the slot names each class had when it was written.
``groups``  grouping keys with their push and failure times, up to ``CHUNK`` per frame.
``family``  a family's name, type, help and unit, and up to ``CHUNK`` of its series.
``otlp``    the OTLP per-source memory (sources in LRU order, pending corrections).
``keys``    idempotency keys (``keys.py``), up to ``CHUNK`` per frame, in table order: the
            table's clock ``now`` and rows of key, fingerprint (hex), time, outcome. Absent
            when the table is empty (a snapshot of a gateway that never saw a key is unchanged).
``end``     how many groups and series came before: a snapshot without it is not whole.

Tables are shared by the whole file: each frame adds the strings (``s``), label pairs (``p``: two
string indexes each) and clear modes (``m``) it uses first, so a label pair (an ``instance``
value, say) is written once however many families it appears in, and read into one tuple that
every series key holding it shares. A set of labels is a column of pair indexes: ``k`` with a
constant length per frame (``kn``), else with a column of lengths. Series keys of one length are
rebuilt by ``zip`` over the columns, points by ``map(Point, ...)`` and series by the store's
``restore`` from columns (``Store.snapshot`` is its plain-data form): a million series are a few
C-level passes, not a Python loop of lookups per series.

Generic over the model: a series is its key, group, times, window, then the stored ``Point``'s
slots in the order ``head.point`` names them, each through the column codec of its slot in
``POINT_SLOTS`` (clear modes, numbers, bucket and quantile pairs) or, for a slot without an entry
there, the generic tagged codec (``_enc``/``_dec``: lists, tuples, dicts, arrays and the classes
of ``CLASSES``; a sparse list of the series that have a value). A field added to ``Point`` (or to
a window, a sketch, an OTLP source) is therefore written and read with no change here; an entry
in ``POINT_SLOTS`` only makes it smaller. Reading a snapshot written before a slot existed
leaves that slot None; a snapshot naming a slot this gateway does not have is refused (it was
written by a newer gateway). Version 1 snapshots (frames of JSON only, tables per frame) are
refused with a message saying so: none was released.
"""
from __future__ import annotations

import inspect
import json
import struct
import sys
from array import array
from itertools import islice, repeat

from ..core import windows
from ..core.store import SNAPSHOT_VERSION, Store
from ..model import ClearMode, Exemplar, NativeHistogram, Point
from ..translate.sources import SourceMemory, _Source
from .framing import DamagedFile, frame, read_frames

FORMAT = "otelgravel-snapshot"
VERSION = 2
CHUNK = 10000  # series (or groups) per frame

# Our classes the generic codec may build, by a stable name (never a module path).
CLASSES = {"exemplar": Exemplar, "clearmode": ClearMode, "otlp.source": _Source,
           "nativehistogram": NativeHistogram,
           "sketch": windows._Sketch,
           **{f"window.{agg}": cls for agg, cls in windows._BY_AGG.items()}}
_NAME_OF = {cls: name for name, cls in CLASSES.items()}

_U32 = "I" if array("I").itemsize == 4 else "L"
_TYPECODES = {"I": _U32, "d": "d"}  # as written -> this platform's array typecode
_BIG_ENDIAN = sys.byteorder == "big"
_JSON_LEN = struct.Struct("<I")
_NONE = 0xFFFFFFFF  # a pair column's "no value" layout


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


# ---- writing ------------------------------------------------------------------------------------

class _Writer:
    """The file's tables (strings, label pairs, modes) and the frame being written."""

    def __init__(self):
        self.strings: dict[str, int] = {}
        self.pairs: dict[tuple, int] = {}
        self.modes: dict[ClearMode, int] = {}
        self._start()

    def _start(self) -> None:
        self.new_strings: list[str] = []
        self.new_pairs = array(_U32)
        self.new_modes: list = []
        self.columns: list[tuple[str, array]] = []

    def _string(self, text: str) -> int:
        i = self.strings.get(text)
        if i is None:
            i = self.strings[text] = len(self.strings)
            self.new_strings.append(text)
        return i

    def pair(self, pair: tuple) -> int:
        i = self.pairs.get(pair)
        if i is None:
            name, value = pair
            self.new_pairs.append(self._string(name))
            self.new_pairs.append(self._string(value))
            i = self.pairs[pair] = len(self.pairs)
        return i

    def mode(self, mode: ClearMode) -> int:
        i = self.modes.get(mode)
        if i is None:
            i = self.modes[mode] = len(self.modes)
            self.new_modes.append([mode.kind, mode.text, mode.agg, mode.quantile, mode.seconds])
        return i

    def column(self, name: str, typecode: str, values) -> str:
        self.columns.append((name, array(_TYPECODES[typecode], values)))
        return name

    def labels(self, name: str, column: list) -> dict:
        """A column of label sets: ``{"kn": length}`` or ``{"kl": lengths column}``, and ``k``."""
        pair = self.pair
        pairs = self.pairs
        flat = array(_U32)
        lengths = set()
        for labels in column:
            lengths.add(len(labels))
            for p in labels:
                i = pairs.get(p)
                flat.append(pair(p) if i is None else i)
        self.columns.append((name, flat))
        if len(lengths) <= 1:
            return {"kn": lengths.pop() if lengths else 0}
        return {"kl": self.column(name + ".n", "I", map(len, column))}

    def numbers(self, name: str, values: list):
        """A column of floats (binary) or, with anything else in it, a JSON list."""
        if all(type(v) is float for v in values):
            return self.column(name, "d", values)
        return ["json", list(values)]

    def dump(self, doc: dict) -> bytes:
        """The frame of ``doc`` with the tables' additions and the columns added since the last."""
        doc["s"], doc["m"] = self.new_strings, self.new_modes
        self.columns.insert(0, ("p", self.new_pairs))
        doc["b"] = [[name, "d" if col.typecode == "d" else "I", len(col)]
                    for name, col in self.columns]
        head = json.dumps(doc, separators=(",", ":")).encode()
        parts = [_JSON_LEN.pack(len(head)), head]
        for _, col in self.columns:
            if _BIG_ENDIAN:
                col.byteswap()
            parts.append(col.tobytes())
        self._start()
        return frame(b"".join(parts))


def _pairs_column(w: _Writer, name: str, values: list):
    """Bucket or quantile lists of ``(bound, value)``: one JSON list of bounds per distinct
    layout, a layout index per series (``_NONE`` for None) and the values in one float column."""
    layouts: dict[tuple, int] = {}
    index = array(_U32)
    flat: list = []
    for v in values:
        if v is None:
            index.append(_NONE)
            continue
        bounds = tuple(b for b, _ in v)
        i = layouts.get(bounds)
        if i is None:
            i = layouts[bounds] = len(layouts)
        index.append(i)
        flat += (x for _, x in v)
    if not all(type(x) is float for x in flat) or not all(type(b) is float for lay in layouts
                                                          for b in lay):
        return _generic_column(w, name, values)
    w.columns.append((name + ".l", index))
    return ["pairs", [list(lay) for lay in layouts], w.column(name, "d", flat)]


def _generic_column(w: _Writer, name: str, values: list):
    return ["gen", [[i, _enc(v)] for i, v in enumerate(values) if v is not None]]


# slot -> column writer (writer, name, values of the series) -> JSON spec; "labels" is the key.
POINT_SLOTS = {
    "mode": lambda w, name, vs: ["mode", w.column(name, "I", map(w.mode, vs))],
    "value": lambda w, name, vs: w.numbers(name, vs),
    "sum": lambda w, name, vs: w.numbers(name, vs),
    "count": lambda w, name, vs: w.numbers(name, vs),
    "buckets": _pairs_column,
    "quantiles": _pairs_column,
}


def _point_slots() -> list[str]:
    return [slot for slot in Point.__slots__ if slot != "labels"]


def encode_snapshot(store: Store, memory: SourceMemory | None, position: int, keys=None):
    """Yield the frames of a snapshot of ``store``, ``memory`` and the idempotency ``keys``
    (a ``KeyTable``, or None) at log ``position``."""
    slots = _point_slots()
    writers = [(slot, POINT_SLOTS.get(slot, _generic_column)) for slot in slots]
    w = _Writer()
    yield w.dump({"format": FORMAT, "version": VERSION, "store": SNAPSHOT_VERSION,
                  "position": position, "point": slots,
                  "classes": {name: list(_slots(cls)) for name, cls in CLASSES.items()}})
    group_index = {}
    groups = list(store.groups.values())
    for start in range(0, len(groups), CHUNK):
        part = groups[start:start + CHUNK]
        for g in part:
            group_index[g.labels] = len(group_index)
        yield w.dump({"t": "groups", "n": len(part), **w.labels("k", [g.labels for g in part]),
                      "push": w.numbers("push", [g.push_time for g in part]),
                      "failure": w.numbers("failure", [g.failure_time for g in part])})
    count = 0
    for f in store.families.values():
        series = list(f.series.values())
        for start in range(0, len(series), CHUNK):
            part = series[start:start + CHUNK]
            points = [s.point for s in part]
            columns = {}
            for slot, write in writers:
                values = [getattr(p, slot) for p in points]
                columns[slot] = (write(w, slot, values) if any(v is not None for v in values)
                                 else None)
            count += len(part)
            yield w.dump({"t": "family", "name": f.name, "type": f.type, "help": f.help,
                          "unit": f.unit, "n": len(part), **w.labels("k", [s.key for s in part]),
                          "groups": w.column("g", "I", [group_index[s.group.labels] for s in part]),
                          "created": w.numbers("created", [s.created for s in part]),
                          "updated": w.numbers("updated", [s.updated for s in part]),
                          "windows": _generic_column(w, "", [s.window for s in part]),
                          "point": columns})
    if memory is not None:
        yield w.dump({"t": "otlp",
                      "sources": [[_enc(k), _enc(v)] for k, v in memory.sources.items()],
                      "corrections": [_enc(v) for v in memory.corrections]})
    if keys is not None and len(keys):
        now, rows = keys.dump()
        for start in range(0, len(rows), CHUNK):
            yield w.dump({"t": "keys", "now": now, "rows": [
                [k, fp.hex(), at, o] for k, fp, at, o in rows[start:start + CHUNK]]})
    yield w.dump({"t": "end", "groups": len(groups), "series": count})


# ---- reading ------------------------------------------------------------------------------------

class Snapshot:
    __slots__ = ("position", "store", "otlp", "keys")

    def __init__(self, position: int, store: dict, otlp: tuple | None, keys: tuple | None = None):
        self.position = position
        self.store = store  # Store.restore's input
        self.otlp = otlp    # SourceMemory.restore's input, or None
        self.keys = keys    # KeyTable.restore's input, or None


class _Tables:
    """The file's tables as read so far, and the frame being read (its JSON and columns)."""

    def __init__(self, dec):
        self.dec = dec
        self.strings: list[str] = []
        self.pairs: list[tuple] = []
        self.modes: list[ClearMode] = []
        self.doc: dict = {}
        self.cols: dict[str, array] = {}

    def read(self, payload: bytes) -> dict:
        (size,) = _JSON_LEN.unpack_from(payload)
        at = _JSON_LEN.size + size
        doc = self.doc = json.loads(payload[_JSON_LEN.size:at])
        if type(doc) is not dict:
            raise SnapshotError("a frame that is not an object")
        cols = self.cols = {}
        view = memoryview(payload)
        for name, code, count in doc.get("b", ()):
            if type(count) is not int or count < 0:
                raise SnapshotError(f"column {name!r} of {count!r} values")
            col = array(_TYPECODES[code])
            end = at + count * col.itemsize
            if end > len(payload):
                raise SnapshotError(f"column {name!r} runs past the end of its frame")
            col.frombytes(view[at:end])
            if _BIG_ENDIAN:
                col.byteswap()
            cols[name] = col
            at = end
        if at != len(payload):
            raise SnapshotError(f"{len(payload) - at} bytes after the frame's columns")
        new = doc.get("s", [])
        if type(new) is not list or not all(type(s) is str for s in new):
            raise SnapshotError("a string table entry that is not a string")
        strings = self.strings
        strings += new
        new = cols.get("p", ())
        if len(new) % 2:
            raise SnapshotError("a label pair table of odd length")
        get = strings.__getitem__
        it = map(get, new)
        self.pairs += zip(it, it)
        self.modes += [ClearMode(k, text, agg, float(q), float(sec))
                       for k, text, agg, q, sec in doc.get("m", ())]
        return doc

    def column(self, name, n: int, typecode: str = None) -> array:
        col = self.cols[name]
        if len(col) != n:
            raise SnapshotError(f"column {name!r} has {len(col)} values for {n}")
        if typecode is not None and col.typecode != _TYPECODES[typecode]:
            raise SnapshotError(f"column {name!r} is not of type {typecode}")
        return col

    def labels(self, n: int) -> list:
        """The frame's column of label sets (``k``), as tuples of shared pairs."""
        doc, get = self.doc, self.pairs.__getitem__
        flat = self.cols["k"]
        if "kl" in doc:
            lengths = self.column(doc["kl"], n, "I")
            if sum(lengths) != len(flat):
                raise SnapshotError("label lengths do not add up to the labels")
            it = map(get, flat)
            return [tuple(islice(it, size)) for size in lengths]
        size = doc["kn"]
        if type(size) is not int or len(flat) != n * size:
            raise SnapshotError(f"{len(flat)} label pairs for {n} sets of {size}")
        if size == 0:
            return [()] * n
        return list(zip(*[map(get, flat[j::size]) for j in range(size)]))

    def numbers(self, spec, n: int) -> list:
        if type(spec) is str:
            return self.column(spec, n, "d").tolist()
        if type(spec) is not list or len(spec) != 2 or spec[0] != "json":
            raise SnapshotError(f"a number column of kind {spec!r}")
        values = spec[1]
        if len(values) != n or not all(v is None or type(v) in (float, int) for v in values):
            raise SnapshotError("a number column of other lengths or types")
        return values

    def generic(self, spec, n: int) -> list:
        if type(spec) is not list or len(spec) != 2 or spec[0] != "gen":
            raise SnapshotError(f"a column of kind {spec!r}")
        out = [None] * n
        dec = self.dec
        for i, v in spec[1]:
            if type(i) is not int or i < 0:
                raise SnapshotError(f"a column index {i!r}")
            out[i] = dec(v)
        return out

    def point_column(self, slot: str, spec, n: int) -> list:
        kind = spec[0] if type(spec) is list else "numbers"
        if kind == "mode":
            return list(map(self.modes.__getitem__, self.column(spec[1], n, "I")))
        if kind == "numbers" or kind == "json":
            return self.numbers(spec, n)
        if kind == "pairs":
            layouts = [list(map(float, lay)) for lay in spec[1]]
            index = self.column(spec[2] + ".l", n, "I")
            flat = self.cols[spec[2]].tolist()
            size = len(layouts[0]) if len(layouts) == 1 else 0
            if size and len(flat) == n * size and not any(index):
                # one layout (every series has a value): each series its list, built in C
                return list(map(list, zip(*[zip(repeat(b, n), flat[j::size])
                                            for j, b in enumerate(layouts[0])])))
            out = []
            at = 0
            for i in index:
                if i == _NONE:
                    out.append(None)
                    continue
                bounds = layouts[i]
                end = at + len(bounds)
                out.append(list(zip(bounds, flat[at:end])))
                at = end
            if at != len(flat):
                raise SnapshotError(f"column {slot!r} has {len(flat)} values, its layouts {at}")
            return out
        return self.generic(spec, n)


def decode_snapshot(data, path: str) -> Snapshot:
    """Read a whole snapshot; DamagedFile (file and offset) for anything but one we wrote."""
    frames = read_frames(data, path, torn_ok=False)
    offset = 0
    try:
        offset, payload = next(frames)
        (size,) = _JSON_LEN.unpack_from(payload)
        head = json.loads(payload[_JSON_LEN.size:_JSON_LEN.size + size])
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise SnapshotError("not an otelgravel snapshot")
        if head.get("version") != VERSION or head.get("store") != SNAPSHOT_VERSION:
            raise SnapshotError(f"snapshot version {head.get('version')}/{head.get('store')} "
                                f"(this gateway reads {VERSION}/{SNAPSHOT_VERSION}; remove the "
                                "snapshot and the log to start empty)")
        t = _Tables(_Reader(head["classes"]).dec)
        t.read(payload)
        have = set(Point.__slots__)
        point_slots = head["point"]
        for slot in point_slots:
            if slot not in have:
                raise SnapshotError(f"series have field {slot!r} this gateway does not know")
        groups = []
        families: dict = {}
        otlp = None
        idempotency = None
        end = None
        for offset, payload in frames:
            if end is not None:
                raise SnapshotError("frames after the end")
            doc = t.read(payload)
            kind = doc["t"]
            if kind == "end":
                end = doc
            elif kind == "otlp":
                otlp = ([(t.dec(k), t.dec(v)) for k, v in doc["sources"]],
                        [t.dec(v) for v in doc["corrections"]])
            elif kind == "keys":
                rows = [] if idempotency is None else idempotency[1]
                rows += [(str(k), bytes.fromhex(fp), float(at), o) for k, fp, at, o in doc["rows"]]
                idempotency = (float(doc["now"]), rows)
            elif kind == "groups":
                n = doc["n"]
                groups += zip(t.labels(n), t.numbers(doc["push"], n),
                              t.numbers(doc["failure"], n))
            elif kind == "family":
                _family(t, doc, point_slots, groups, families)
            else:
                raise SnapshotError(f"unknown frame type {kind!r}")
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
            RecursionError, struct.error) as exc:
        raise DamagedFile(path, offset, f"{type(exc).__name__}: {exc}") from None
    return Snapshot(head["position"],
                    {"version": SNAPSHOT_VERSION, "groups": groups,
                     "families": list(families.values())}, otlp, idempotency)


def _family(t: _Tables, doc: dict, point_slots: list, groups: list, families: dict) -> None:
    """Add a family frame's series to ``families`` (name -> Store.restore's columns)."""
    n = doc["n"]
    keys = t.labels(n)
    columns = {"labels": keys}
    specs = doc["point"]
    for slot in point_slots:
        spec = specs[slot]
        columns[slot] = None if spec is None else t.point_column(slot, spec, n)
    # Point(*columns): trailing columns of None only are left to Point's defaults (None)
    order = list(Point.__slots__)
    while order[-1] not in ("labels", "value") and columns.get(order[-1]) is None:
        order.pop()
    points = list(map(Point, *[repeat(None, n) if columns.get(slot) is None else columns[slot]
                               for slot in order]))
    windows = t.generic(doc["windows"], n)
    group_rows = t.column(doc["groups"], n, "I")
    if n and max(group_rows) >= len(groups):
        raise SnapshotError(f"a series of group {max(group_rows)}, of {len(groups)} groups")
    group_rows = group_rows.tolist()
    created, updated = t.numbers(doc["created"], n), t.numbers(doc["updated"], n)
    name = doc["name"]
    entry = families.get(name)
    if entry is None:
        families[name] = (name, doc["type"], doc["help"], doc["unit"], keys, group_rows,
                          points, windows, created, updated)
        return
    for have, more in zip(entry[4:], (keys, group_rows, points, windows, created, updated)):
        have += more
