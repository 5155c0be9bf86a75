"""Apply records to the state (the store and the OTLP per-source memory), in log order.

``apply(record)`` is deterministic given the state and the record: time comes from
``record.time``, never from a clock, so a replay (or another replica) reaches the same state and
the same answer. A refusal raises the usual GravelError, having changed nothing but the group's
push_failure_time (which is the same on a replay). Records from a log carry no ``parsed`` value
and are parsed here. A record with an idempotency key is decided by the key table first
(``keys.py``): applied once, answered the same on a retry, 422 for the key reused.
"""
from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import \
    ExportMetricsServiceRequest

from ..errors import GravelError
from ..formats.openmetrics import parse_openmetrics
from ..formats.prom_protobuf import parse_prom_protobuf
from ..formats.prom_text import parse_prom_text
from ..processor import GravelProcessor
from ..translate.otlp import OtlpTranslator
from ..translate.sources import SourceMemory
from .keys import KeyTable
from .record import DELETE, EXPIRE, FAILURE, OTLP, PUSH, WIPE, Record

PARSERS = {"text": parse_prom_text, "openmetrics": parse_openmetrics,
           "protobuf": parse_prom_protobuf}
_MAX_ERRORS = 10


class OtlpResult:
    """An export's partial success: points refused and (the first few) reasons; for the
    telemetry, the points accepted and each refused family's (group, error)."""

    __slots__ = ("rejected", "errors", "accepted", "refusals")

    def __init__(self, rejected: int, errors: list[str], accepted: int = 0,
                 refusals: list | None = None):
        self.rejected = rejected
        self.errors = errors
        self.accepted = accepted
        self.refusals = refusals if refusals is not None else []


class Applier:
    def __init__(self, processor: GravelProcessor, translator: OtlpTranslator | None = None,
                 keys: KeyTable | None = None):
        self.processor = processor
        self.store = processor.store
        self.translator = translator
        self.memory: SourceMemory | None = translator.memory if translator is not None else None
        self.keys = keys if keys is not None else KeyTable()
        self.applied_time = 0.0  # the latest record time applied (the expiry tick reads it)

    def apply(self, record: Record):
        if record.key is not None:
            return self._keyed(record)
        return self._apply(record)

    def _keyed(self, record: Record):
        keys = self.keys
        replayed = keys.seen(record.key, record.fingerprint, record.time)
        if replayed is not None:
            if record.kind == OTLP:
                rejected, errors = replayed.result
                replayed.result = OtlpResult(rejected, errors)
            return replayed
        result = self._apply(record)  # a refusal raises: no key is remembered
        outcome = [result.rejected, result.errors] if record.kind == OTLP else result
        keys.remember(record.key, record.fingerprint, record.time, outcome)
        return result

    def restore(self, snap) -> None:
        """The state of a snapshot (``snapshot.Snapshot``), instead of what was here."""
        self.store.restore(snap.store)
        if self.memory is not None:
            if snap.otlp is not None:
                self.memory.restore(snap.otlp)
            else:
                self.memory.reset()
        self.keys.restore(snap.keys)

    def _apply(self, record: Record):
        time = record.time
        if time > self.applied_time:
            self.applied_time = time
        kind = record.kind
        if kind == PUSH:
            return self._push(record)
        if kind == OTLP:
            return self._otlp(record)
        if kind == FAILURE:
            self.processor.refused(record.group, time)
        elif kind == DELETE:
            return self.processor.delete(record.group)
        elif kind == WIPE:
            self.processor.wipe()
            if self.memory is not None:
                self.memory.reset()
        elif kind == EXPIRE:
            return self._expire(time)
        return None

    def _push(self, record: Record) -> None:
        group, now = record.group, record.time
        try:
            batch = record.parsed
            if batch is None:
                batch = PARSERS[record.fmt](record.body)
            self.processor.push(group, batch, now)
        except GravelError:
            self.processor.refused(group, now)
            raise

    def _otlp(self, record: Record) -> OtlpResult:
        now = record.time
        message = record.parsed
        if message is None:
            message = ExportMetricsServiceRequest.FromString(record.body)
        if self.translator is None:  # a log written with the OTLP receiver on, read without it
            return OtlpResult(0, [])
        processor = self.processor
        translation = self.translator.translate(message, now)
        # the whole export waits when it would pass the series limit (LimitError: 429, nothing
        # applied, the SDK retries it later)
        processor.check_capacity(translation.groups)
        rejected = translation.rejected
        errors = list(translation.errors)
        accepted = 0
        refusals = []
        for group, families in translation.groups:
            refused = processor.push_each(group, families, now)
            refused_ids = {id(family) for family, _ in refused}
            for family in families:
                if id(family) not in refused_ids:
                    translation.commit(family)
                    accepted += len(family.points)
            for family, exc in refused:
                rejected += len(family.points)
                refusals.append((group, exc))
                if len(errors) < _MAX_ERRORS:
                    errors.append(str(exc))
        for group, name, labels in translation.removals:
            processor.remove_series(group, name, labels)
        return OtlpResult(rejected, errors, accepted, refusals)

    def _expire(self, now: float) -> int:
        dropped = self.processor.expire(now)
        if self.memory is not None:
            for group, families in self.memory.expire(now):
                self.processor.push_each(group, families, now)
        return dropped

    def expiry_due(self, now: float) -> bool:
        """Whether an EXPIRE record at ``now`` could change anything (so the tick may skip it)."""
        store = self.store
        if store._windowed or (store.expire_after > 0 and (store.series_count
                                                           or store._empty_groups)):
            return True
        memory = self.memory
        return memory is not None and bool(memory.sources or memory.corrections)

