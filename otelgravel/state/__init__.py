"""The state layer: the log is the source of truth, the store a view of it.

Every change to the state is a ``Record`` (a push, an OTLP export, a DELETE, the wipe, a refusal,
the expiry tick), made by a receiver after its stateless checks and handed to
``await state.submit(record)``. A backend (``StateBackend``) makes the record durable as it
promises and applies it with the ``Applier``, in log order, so that the answer (200, or the 400
the log order decided) and the state are those a replay, or another replica, computes:

- ``MemoryBackend``: applies and answers (``storage.directory: ""``); nothing survives a restart.
- ``FileBackend`` (``file.py``): appends to a checksummed log in ``storage.directory`` under the
  ``sync`` policy, snapshots every ``snapshot_interval``, replays on start.
- the Redis backend (``redis_*.py``): a stream every replica reads.

Refinements of /work/coord/STATE_CONTRACT.md's proposal (same shape): two more record kinds,
``FAILURE`` (a push refused before it reached the store marks its group's push_failure_time; a
refusal by the store is recorded by the applier itself) and ``EXPIRE`` (the service's expiry
tick submits ``Record(EXPIRE, now)`` when ``Applier.expiry_due(now)``, so expiry happens in log
order and a replay, or a replica, expires exactly what the live gateway did, whatever its own
clock says); an OTLP record's result is an ``OtlpResult`` (rejected points, reasons). A record
may carry an idempotency key (``keys.py``): the key table is part of the state, decided at apply.

The log holds what came in (the grouping key and the body), not the resolved batch: a replay
decides clear modes, limits and conflicts under the configuration of the gateway that replays.

Time inside ``apply`` is ``record.time``, never a clock. Records are encoded by
``encode_record``/``decode_record`` (``record.py``), snapshots by ``snapshot.py``. A backend
that cannot make a record durable raises ``StateUnavailable`` (HTTP 503 with Retry-After) and
has not applied it.
"""
from ..errors import StateUnavailable
from .applier import Applier, OtlpResult
from .backend import MemoryBackend, StateBackend
from .keys import KeyTable, Replayed
from .record import (DELETE, EXPIRE, FAILURE, OTLP, PUSH, WIPE, Record, RecordError,
                     decode_record, encode_record)

__all__ = ["Applier", "OtlpResult", "MemoryBackend", "StateBackend", "StateUnavailable",
           "KeyTable", "Replayed",
           "Record", "RecordError", "decode_record", "encode_record",
           "PUSH", "OTLP", "DELETE", "WIPE", "FAILURE", "EXPIRE"]
